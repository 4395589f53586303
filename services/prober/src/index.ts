/** @probemesh/prober: the edge prober service. */
export { proberConfigSchema } from './config';
export type { ProberConfig } from './config';
export { startProber, toScheduled } from './prober';
export type { RunningProber, ProberDeps } from './prober';
export { ProbeModules, builtinModules } from './modules';
export type { ModuleDefinition } from './modules';
export { Scheduler, phaseOffsetNs } from './scheduler';
export type { ScheduledTarget, ProbeRun, ProbeRunner, SchedulerObserver, SchedulerOptions } from './scheduler';
export { ResultPublisher } from './publisher';
export type { PublishFn, PublisherOptions, PublisherObserver } from './publisher';
export { HeartbeatSender } from './heartbeat';
export { AssignmentWatcher } from './assignment';
export { createProberMetrics } from './metrics';
export type { ProberMetrics } from './metrics';
export * from './probes';
