/**
 * Liveness and registration: a `Heartbeat` on core NATS `pm.heartbeat.<id>` every
 * interval, also put into KV `pm_probers` at start and every 10th beat (the coordinator
 * judges liveness from the subject with its own timers, never from KV TTLs). At stop one
 * last heartbeat with `leaving: true` lets the coordinator move the targets at once.
 */
import { Clock, heartbeatSubject, Logger, toULong, VERSION } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import { systemTimers, TimerHandle, Timers } from './timers';

/** Where heartbeats go (a NATS connection and the `pm_probers` bucket in production). */
export interface HeartbeatSink {
  /** Core NATS publish. */
  publish(subject: string, data: Uint8Array): void;
  /** KV put into `pm_probers` under the prober id. */
  register(key: string, data: Uint8Array): Promise<unknown>;
}

/** The prober's identity and live figures reported in each heartbeat. */
export interface HeartbeatSource {
  /** Prober id. */
  prober: string;
  /** Region. */
  region: string;
  /** Zone. */
  zone: string;
  /** Placement weight (>= 1). */
  capacity: number;
  /** Where /metrics is served. */
  httpUrl: string;
  /** Epoch of the applied assignment. */
  appliedEpoch(): bigint;
  /** Targets scheduled now. */
  targets(): number;
  /** Names of the loaded probe modules (Heartbeat.modules). @default none */
  modules?(): string[];
  /** The clock's sync state (Heartbeat.clock). @default absent */
  clock?(): { source: string; synced: boolean; offsetNs: bigint; errorBoundNs: bigint };
  /** The eBPF status (Heartbeat.ebpf). @default absent */
  ebpf?(): { up: boolean; reason: string };
  /** The loaded modules' configuration as JSON, sent only in KV registrations. @default absent */
  modulesJson?(): string;
  /** Probes started per second recently (Heartbeat.probes_per_second). @default 0 */
  probesPerSecond?(): number;
}

/** Every how many beats the registration in KV is refreshed. */
export const REGISTER_EVERY = 10;

/** Sends the prober's heartbeats. */
export class HeartbeatSender {
  private timer: TimerHandle | undefined;
  private beats = 0;
  private stopped = false;
  private readonly timers: Timers;

  constructor(
    private readonly source: HeartbeatSource,
    private readonly sink: HeartbeatSink,
    private readonly opts: { intervalMs: number; clock: Clock; log: Logger; timers?: Timers },
  ) {
    this.timers = opts.timers ?? systemTimers;
  }

  /** Registers in KV (awaited: start fails if NATS refuses), publishes, then beats on. */
  async start(): Promise<void> {
    await this.sink.register(this.source.prober, this.encode(false, true));
    this.sink.publish(heartbeatSubject(this.source.prober), this.encode(false));
    this.beats = 1;
    this.schedule();
  }

  /** Stops beating and sends the `leaving` heartbeat (publish and KV). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) this.timers.clear(this.timer);
    this.timer = undefined;
    const data = this.encode(true);
    try {
      this.sink.publish(heartbeatSubject(this.source.prober), data);
      await this.sink.register(this.source.prober, data);
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'could not send the leaving heartbeat');
    }
  }

  /** The heartbeat as sent now. */
  encode(leaving: boolean, registration = false): Uint8Array {
    const s = this.source;
    return probemesh.v1.Heartbeat.encode({
      prober: s.prober,
      region: s.region,
      zone: s.zone,
      capacity: s.capacity,
      version: VERSION,
      sentUnixNano: toULong(this.opts.clock.nowNs()),
      appliedEpoch: toULong(s.appliedEpoch()),
      targets: s.targets(),
      httpUrl: s.httpUrl,
      leaving,
      modules: s.modules?.() ?? [],
      clock: clockStatus(s),
      ebpf: s.ebpf ? { ...s.ebpf() } : undefined,
      probesPerSecond: s.probesPerSecond?.() ?? 0,
      modulesJson: registration ? (s.modulesJson?.() ?? '') : '',
    }).finish();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.timers.set(() => this.beat(), this.opts.intervalMs);
  }

  private beat(): void {
    this.timer = undefined;
    if (this.stopped) return;
    const data = this.encode(false);
    try {
      // Core publish never blocks: while NATS is down nats.js buffers it for the reconnect.
      this.sink.publish(heartbeatSubject(this.source.prober), data);
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'heartbeat publish failed');
    }
    this.beats++;
    if (this.beats % REGISTER_EVERY === 0) {
      this.sink.register(this.source.prober, this.encode(false, true)).catch((err) => this.opts.log.warn({ err: (err as Error).message }, 'refreshing the registration in KV failed'));
    }
    this.schedule();
  }
}

function clockStatus(s: HeartbeatSource): probemesh.v1.IClockStatus | undefined {
  const c = s.clock?.();
  return c ? { source: c.source, synced: c.synced, offsetNs: Number(c.offsetNs), errorBoundNs: toULong(c.errorBoundNs) } : undefined;
}
