/** The canary judge: statistics, Prometheus reader, config, verdicts, attribution, continuous runs. */
export * from './stats';
export { SeededRandom } from './random';
export * from './selector';
export * from './config';
export * from './prometheus';
export * from './metric-tests';
export * from './judge';
export * from './attribution';
export * from './analysis';
export * from './webhook';
export * from './run-config';
export * from './runner';
export * from './server';
export * from './start';
