/** @probemesh/aggregator: results stream → Prometheus remote_write. */
export { aggregatorConfigSchema, AggregatorConfig, RemoteWriteSettings, RESERVED_REMOTE_WRITE_HEADERS, DEFAULT_REMOTE_WRITE_URL, remoteWriteSettings } from './config';
export { startAggregator, RunningAggregator, AggregatorDeps } from './aggregator';
export * from './series';
export * from './remote-write';
export * from './write-request';
export { SeriesModel, SeriesModelOptions, ModelSample, NativeHistogramOptions } from './series-model';
export * from './native-histogram';
export { RemoteWriteQueue, RemoteWriteQueueOptions, SampleOwner } from './queue';
export { ResultsConsumer, ResultDelivery, ResultSource, ConsumerSettings, ResultsConsumerOptions, proberConsumerName } from './consumer';
export { ResultPipeline, ResultPipelineOptions } from './pipeline';
export { AggregatorMembership, ProberAssignments, ownerOf, streamProbers, handoffBarrier, SUBJECT_AGGREGATORS } from './ownership';
export { StaleMarkers } from './staleness';
export { SkewMonitor } from './skew';
export { createAggregatorMetrics, recordAttempt, AggregatorMetrics } from './metrics';
export * from './canary';
