/**
 * Which aggregator consumes which prober's results. JetStream delivers a consumer's
 * messages in stream order, but two aggregators pulling one consumer would interleave
 * a prober's batches and write a series out of order. So every prober subject
 * `pm.results.<prober>` has its own durable consumer, and exactly one live aggregator
 * pulls it: the winner of rendezvous hashing (highest hash of aggregator id + prober)
 * over the aggregators alive now. Aggregators announce themselves on core NATS
 * (`pm.aggregators.<id>`, every `heartbeat_interval`); one silent for `dead_after` is
 * dead, and one that stops says so, so its probers move at once.
 *
 * Handoff keeps a prober's series in order: a new owner first waits until the
 * consumer has no delivered-unacked messages (the previous owner finished them), or
 * until ack_wait has passed (the previous owner died or let them go; JetStream then
 * redelivers them before newer messages). Probers are found by listing the stream's
 * subjects every `discovery_interval`.
 */
import { JetStreamManager, NatsConnection, Subscription } from 'nats';
import { describeError, Logger, STREAM_RESULTS, SUBJECT_RESULTS } from '@probemesh/common';
import { hash32 } from './write-request';
import { realSleep } from './remote-write';

/** Core NATS subject prefix of aggregator heartbeats. */
export const SUBJECT_AGGREGATORS = 'pm.aggregators';
/** Core NATS subject on which an aggregator says it let a prober go (payload: prober id). */
export const SUBJECT_HANDOFF = 'pm.aggregator_handoff';

/** Rendezvous-hashing owner of `prober` among `members` (undefined when none). */
export function ownerOf(prober: string, members: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = -1;
  for (const m of members) {
    // FNV-1a then a murmur3 finaliser: FNV alone is too weak for rendezvous scores.
    let h = hash32(`${m}\n${prober}`);
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    h = (h ^ (h >>> 16)) >>> 0;
    if (h > bestScore || (h === bestScore && best !== undefined && m < best)) {
      best = m;
      bestScore = h;
    }
  }
  return best;
}

/** Settings of {@link AggregatorMembership} (ms). */
export interface MembershipSettings {
  heartbeat_interval: number;
  dead_after: number;
}

/** The set of live aggregators, from their heartbeats on core NATS. */
export class AggregatorMembership {
  private readonly lastSeen = new Map<string, number>();
  private sub?: Subscription;
  private timer?: NodeJS.Timeout;
  private listeners: (() => void)[] = [];
  private lastMembers = '';

  constructor(
    private readonly nc: NatsConnection,
    readonly id: string,
    private readonly s: MembershipSettings,
    private readonly log: Logger,
    private readonly nowMs: () => number = () => performance.now(),
  ) {}

  /** Subscribes and starts announcing this aggregator. */
  start(): void {
    this.sub = this.nc.subscribe(`${SUBJECT_AGGREGATORS}.*`, {
      callback: (err, msg) => {
        if (err) return;
        const id = msg.subject.slice(SUBJECT_AGGREGATORS.length + 1);
        if (id === this.id) return;
        if (new TextDecoder().decode(msg.data) === 'leaving') this.lastSeen.delete(id);
        else this.lastSeen.set(id, this.nowMs());
        this.check();
      },
    });
    const beat = () => {
      this.nc.publish(`${SUBJECT_AGGREGATORS}.${this.id}`, new TextEncoder().encode('alive'));
      this.check();
    };
    beat();
    this.timer = setInterval(beat, this.s.heartbeat_interval);
    this.timer.unref();
  }

  /** Calls `fn` whenever the member set changes. */
  onChange(fn: () => void): void {
    this.listeners.push(fn);
  }

  /** Live aggregator ids, this one included, sorted. */
  members(): string[] {
    const now = this.nowMs();
    const out = [this.id];
    for (const [id, t] of this.lastSeen) if (now - t < this.s.dead_after) out.push(id);
    return out.sort();
  }

  private check(): void {
    const key = this.members().join(',');
    if (key === this.lastMembers) return;
    this.log.info({ aggregators: this.members(), was: this.lastMembers.split(',').filter(Boolean) }, 'aggregator membership changed');
    this.lastMembers = key;
    for (const fn of this.listeners) fn();
  }

  /** Announces leaving (the others take over at once) and stops. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.sub?.unsubscribe();
    if (!this.nc.isClosed()) {
      this.nc.publish(`${SUBJECT_AGGREGATORS}.${this.id}`, new TextEncoder().encode('leaving'));
      await this.nc.flush().catch(() => undefined);
    }
  }

  /** Says that this aggregator holds nothing of `prober` any more. */
  announceReleased(prober: string): void {
    if (!this.nc.isClosed()) this.nc.publish(SUBJECT_HANDOFF, new TextEncoder().encode(prober));
  }

  /** Resolves when another aggregator announces it released `prober` (or `signal` aborts). */
  waitReleased(prober: string, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const sub = this.nc.subscribe(SUBJECT_HANDOFF, {
        callback: (err, msg) => {
          if (!err && new TextDecoder().decode(msg.data) === prober) done();
        },
      });
      const done = () => {
        sub.unsubscribe();
        signal.removeEventListener('abort', done);
        resolve();
      };
      signal.addEventListener('abort', done, { once: true });
    });
  }
}

/** Lists the probers that have messages in the results stream. */
export async function streamProbers(jsm: JetStreamManager): Promise<string[]> {
  const info = await jsm.streams.info(STREAM_RESULTS, { subjects_filter: `${SUBJECT_RESULTS}.>` });
  return Object.keys(info.state.subjects ?? {}).map((s) => s.slice(SUBJECT_RESULTS.length + 1));
}

/** How a {@link ProberAssignments} acquires and releases one prober. */
export interface PartitionHandlers {
  /** Take `prober` over: wait for the handoff barrier, then start pulling. Rejects/returns when `signal` aborts. */
  acquire(prober: string, signal: AbortSignal): Promise<void>;
  /** Stop pulling `prober`. */
  release(prober: string): Promise<void>;
}

/** Keeps the set of probers this aggregator consumes equal to what rendezvous hashing assigns it. */
export class ProberAssignments {
  private readonly known = new Set<string>();
  private readonly owned = new Map<string, AbortController>();
  private timer?: NodeJS.Timeout;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly membership: AggregatorMembership,
    private readonly discover: () => Promise<string[]>,
    private readonly handlers: PartitionHandlers,
    private readonly discoveryMs: number,
    private readonly log: Logger,
  ) {}

  /** Probers consumed now (acquiring included). */
  ownedProbers(): string[] {
    return [...this.owned.keys()].sort();
  }

  /** Discovers probers now and every discovery interval; rebalances on membership changes. */
  async start(): Promise<void> {
    this.membership.onChange(() => this.schedule());
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.discoveryMs);
    this.timer.unref();
  }

  private async refresh(): Promise<void> {
    try {
      for (const p of await this.discover()) this.known.add(p);
    } catch (err) {
      this.log.warn({ err: describeError(err) }, 'listing prober subjects failed');
    }
    this.schedule();
  }

  private schedule(): void {
    this.running = this.running.then(() => this.rebalance()).catch((err) => this.log.error({ err: describeError(err) }, 'rebalance failed'));
  }

  private async rebalance(): Promise<void> {
    if (this.stopped) return;
    const members = this.membership.members();
    for (const p of this.known) {
      const mine = ownerOf(p, members) === this.membership.id;
      if (mine && !this.owned.has(p)) {
        const ac = new AbortController();
        this.owned.set(p, ac);
        this.log.info({ prober: p }, 'taking over prober results');
        void this.handlers.acquire(p, ac.signal).catch((err) => this.log.warn({ err: describeError(err), prober: p }, 'acquiring prober failed'));
      } else if (!mine && this.owned.has(p)) {
        this.owned.get(p)!.abort();
        this.owned.delete(p);
        this.log.info({ prober: p, owner: ownerOf(p, members) }, 'handing prober results over');
        await this.handlers.release(p);
      }
    }
  }

  /** Stops rebalancing (what is owned stays attached; the caller flushes and announces). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
    for (const ac of this.owned.values()) ac.abort();
  }
}

/**
 * The handoff barrier: resolves once `ackPending()` reports 0, `released` resolves
 * (the previous owner nak'ed what it held), or `ackWaitMs` (+1 s) has passed (it died:
 * its messages are redelivered first), polling every 250 ms; `signal` ends it early.
 */
export async function handoffBarrier(ackPending: () => Promise<number>, ackWaitMs: number, signal: AbortSignal, released?: Promise<void>): Promise<'clear' | 'released' | 'expired' | 'aborted'> {
  const deadline = performance.now() + ackWaitMs + 1000;
  let wasReleased = false;
  void released?.then(() => (wasReleased = true));
  for (;;) {
    if (signal.aborted) return 'aborted';
    if (wasReleased) return 'released';
    const n = await ackPending().catch(() => -1);
    if (n === 0) return 'clear';
    if (performance.now() >= deadline) return 'expired';
    const wake = new AbortController();
    const onAbort = () => wake.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    void released?.then(() => wake.abort());
    await realSleep(250, wake.signal);
    signal.removeEventListener('abort', onAbort);
  }
}
