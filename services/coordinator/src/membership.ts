/**
 * Prober membership: who is alive, decided only by heartbeats on core NATS
 * (`pm.heartbeat.<prober>`) and the coordinator's own monotonic clock — never by KV
 * TTLs or the senders' clocks. A sweep declares a prober dead after `deadAfterMs` of
 * silence; a `leaving` heartbeat takes it out of placement at once.
 */
import { Clock, KV_PROBERS, Logger, openKv, SUBJECT_HEARTBEAT, toBigInt } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import type { NatsConnection, Subscription as NatsSubscription } from 'nats';
import { Feed, Subscription } from './feed';

/** A prober's state as reported by ListProbers. */
export type ProberState = 'alive' | 'dead' | 'leaving';

/** What the coordinator knows about one prober. */
export interface ProberRecord {
  /** Prober id. */
  id: string;
  /** Its last heartbeat (or its registration from KV `pm_probers` if none was heard yet). */
  heartbeat: probemesh.v1.Heartbeat;
  /** Current state. */
  state: ProberState;
  /** Monotonic ns of the last heartbeat received (undefined = never heard). */
  lastSeenMonoNs?: bigint;
  /** Realtime ns of the last heartbeat received (0n = never heard). */
  lastSeenUnixNs: bigint;
}

/** A prober eligible for placement. */
export interface PlacementNode {
  /** Prober id. */
  id: string;
  /** Its zone (owners of a replicated target are spread over zones). */
  zone: string;
  /** Relative capacity, >= 1. */
  capacity: number;
}

/**
 * A membership change. `update` = an alive prober changed zone or capacity;
 * `applied` = an alive prober reports a new applied assignment epoch.
 */
export type MembershipEvent =
  | { kind: 'join'; prober: string }
  | { kind: 'applied'; prober: string; epoch: bigint }
  | { kind: 'update'; prober: string }
  | { kind: 'leave'; prober: string }
  | { kind: 'dead'; prober: string };

/** Options of {@link Membership}. */
export interface MembershipOptions {
  /** Silence after which a prober is dead. @default 3000 */
  deadAfterMs: number;
  /** Liveness is measured on `clock.monoNs()`. */
  clock: Clock;
  log: Logger;
}

/** Tracks probers from their heartbeats. */
export class Membership {
  private readonly probers = new Map<string, ProberRecord>();
  private readonly feed = new Feed<MembershipEvent>();
  private readonly deadAfterNs: bigint;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sub: NatsSubscription | undefined;
  private startedMonoNs: bigint | undefined;

  constructor(private readonly opts: MembershipOptions) {
    this.deadAfterNs = BigInt(Math.round(opts.deadAfterMs * 1e6));
  }

  /**
   * Records a registration read from KV `pm_probers`: the prober becomes known (shown
   * as dead until a heartbeat is heard) but is not placed.
   */
  register(hb: probemesh.v1.Heartbeat): void {
    if (!hb.prober || this.probers.has(hb.prober)) return;
    this.probers.set(hb.prober, { id: hb.prober, heartbeat: hb, state: 'dead', lastSeenUnixNs: 0n });
  }

  /** Processes one heartbeat (from NATS, or fed directly by a test). */
  observe(hb: probemesh.v1.Heartbeat): void {
    const id = hb.prober;
    if (!id) return;
    const mono = this.opts.clock.monoNs();
    const prev = this.probers.get(id);
    const state: ProberState = hb.leaving ? 'leaving' : 'alive';
    this.probers.set(id, { id, heartbeat: hb, state, lastSeenMonoNs: mono, lastSeenUnixNs: this.opts.clock.nowNs() });
    const was = prev?.state;
    if (state === 'alive') {
      if (was !== 'alive') {
        this.opts.log.info({ prober: id, zone: hb.zone, capacity: hb.capacity, was: was ?? 'unknown' }, 'prober joined');
        this.feed.push({ kind: 'join', prober: id });
      } else if (prev && (prev.heartbeat.zone !== hb.zone || normCapacity(prev.heartbeat.capacity) !== normCapacity(hb.capacity))) {
        this.opts.log.info({ prober: id, zone: hb.zone, capacity: hb.capacity }, 'prober changed zone or capacity');
        this.feed.push({ kind: 'update', prober: id });
      }
      const applied = toBigInt(hb.appliedEpoch);
      if (was === 'alive' && prev && applied !== toBigInt(prev.heartbeat.appliedEpoch)) this.feed.push({ kind: 'applied', prober: id, epoch: applied });
    } else if (was !== 'leaving') {
      this.opts.log.info({ prober: id }, 'prober leaving');
      this.feed.push({ kind: 'leave', prober: id });
    }
  }

  /** Declares dead every prober silent for longer than `deadAfterMs`. */
  sweep(): void {
    const now = this.opts.clock.monoNs();
    for (const p of this.probers.values()) {
      if (p.state === 'dead' || p.lastSeenMonoNs === undefined) continue;
      const silentNs = now - p.lastSeenMonoNs;
      if (silentNs <= this.deadAfterNs) continue;
      const was = p.state;
      p.state = 'dead';
      this.opts.log.warn({ prober: p.id, silent_ms: Number(silentNs / 1_000_000n), was }, 'prober dead');
      this.feed.push({ kind: 'dead', prober: p.id });
    }
  }

  /** Probers eligible for placement (alive), sorted by id. */
  alive(): PlacementNode[] {
    const out: PlacementNode[] = [];
    for (const p of this.probers.values()) {
      if (p.state === 'alive') out.push({ id: p.id, zone: p.heartbeat.zone, capacity: normCapacity(p.heartbeat.capacity) });
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Every known prober, sorted by id. */
  list(): ProberRecord[] {
    return [...this.probers.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** One prober's record. */
  get(id: string): ProberRecord | undefined {
    return this.probers.get(id);
  }

  /**
   * How long heartbeats have been followed, ms (0 before {@link start}). A coordinator
   * that has listened for `dead_after` knows every live prober.
   */
  listeningMs(): number {
    return this.startedMonoNs === undefined ? 0 : Number(this.opts.clock.monoNs() - this.startedMonoNs) / 1e6;
  }

  /** Subscribes to membership changes from now on. */
  changes(): Subscription<MembershipEvent> {
    return this.feed.subscribe();
  }

  /**
   * Reads registrations from KV `pm_probers`, subscribes to `pm.heartbeat.*` and
   * starts the sweep timer.
   */
  async start(nc: NatsConnection, kvReplicas = 1): Promise<void> {
    this.startedMonoNs = this.opts.clock.monoNs();
    const kv = await openKv(nc, KV_PROBERS, { history: 1, replicas: kvReplicas });
    const keys = await kv.keys();
    for await (const k of keys) {
      const e = await kv.get(k);
      if (!e || e.operation !== 'PUT') continue;
      try {
        this.register(probemesh.v1.Heartbeat.decode(e.value));
      } catch (err) {
        this.opts.log.warn({ err, key: k }, 'undecodable registration in pm_probers ignored');
      }
    }
    this.sub = nc.subscribe(`${SUBJECT_HEARTBEAT}.*`, {
      callback: (err, msg) => {
        if (err) {
          this.opts.log.error({ err }, 'heartbeat subscription error');
          return;
        }
        let hb: probemesh.v1.Heartbeat;
        try {
          hb = probemesh.v1.Heartbeat.decode(msg.data);
        } catch (e) {
          this.opts.log.warn({ err: e, subject: msg.subject }, 'undecodable heartbeat ignored');
          return;
        }
        const fromSubject = msg.subject.slice(SUBJECT_HEARTBEAT.length + 1);
        if (hb.prober !== fromSubject) {
          this.opts.log.warn({ subject: msg.subject, prober: hb.prober }, 'heartbeat prober id does not match its subject; ignored');
          return;
        }
        this.observe(hb);
      },
    });
    // Sweep often enough that a death is noticed within ~10% of dead_after.
    const every = Math.min(500, Math.max(20, Math.floor(this.opts.deadAfterMs / 10)));
    this.sweepTimer = setInterval(() => this.sweep(), every);
    this.sweepTimer.unref();
  }

  /** Unsubscribes, stops the sweep and ends change subscriptions. */
  stop(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    this.sub?.unsubscribe();
    this.sub = undefined;
    this.feed.close();
  }
}

/** Capacity as a placement weight: at least 1. */
export function normCapacity(c: number | null | undefined): number {
  return Math.max(1, Math.floor(c ?? 1));
}

