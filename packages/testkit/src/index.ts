/**
 * Integration-test harness: real nats-server (single and cluster), Prometheus with the
 * remote-write receiver, and HTTP targets, on 127.0.0.1 random ports, in temp dirs,
 * stopped by PID. Nothing here touches a process it did not start.
 */
export { findBinary, MissingBinaryError } from './binaries';
export { ServerStartError } from './launch';
export { freePort, refusedUrl, tempDir, removeDir, waitFor, httpGet } from './net';
export type { WaitOptions } from './net';
export { pidAlive, Procs, spawnChild } from './procs';
export type { ChildProc, ExitInfo, SpawnOptions } from './procs';
export { startNats, startNatsCluster } from './nats';
export type { NatsServer, NatsCluster, StartNatsOptions, StartNatsClusterOptions } from './nats';
export { startPrometheus, DEFAULT_PROMETHEUS_CONFIG, PrometheusApiError, sampleValue, sampleTimeMs } from './prometheus';
export type { PrometheusServer, PromSample, PromSeries, PromTime, StartPrometheusOptions } from './prometheus';
export { startHttpTargets } from './http-targets';
export type { HttpTargets } from './http-targets';
