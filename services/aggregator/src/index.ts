/** @probemesh/aggregator: results stream → Prometheus remote_write. */
export { aggregatorConfigSchema, AggregatorConfig, RemoteWriteSettings, RESERVED_REMOTE_WRITE_HEADERS, DEFAULT_REMOTE_WRITE_URL } from './config';
export { startAggregator, RunningAggregator, AggregatorDeps } from './aggregator';
export * from './series';
export * from './remote-write';
export { ResultsConsumer, ResultDelivery, ResultSource, ConsumerSettings, ResultsConsumerOptions } from './consumer';
export { ResultPipeline, ResultPipelineOptions } from './pipeline';
export { createAggregatorMetrics, recordAttempt, AggregatorMetrics } from './metrics';
