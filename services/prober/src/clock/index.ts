/** Clock truth: sync state (ptp / ntp / none) and the anchored clock with its error bound. */
export { parseChronyTracking, parsePmcTimeStatus, parseAdjtimexLine, statusFromAdjtimex, unsyncedStatus } from './sync';
export type { ClockSource, ClockSyncStatus, Adjtimex } from './sync';
export { ensureAdjtimexHelper, readAdjtimex, ADJTIMEX_C } from './adjtimex';
export { ClockSyncMonitor, runCommand } from './monitor';
export type { ClockSyncMonitorOptions, CommandRunner } from './monitor';
export { SyncedClock } from './synced-clock';
export { registerClockMetrics } from './metrics';
