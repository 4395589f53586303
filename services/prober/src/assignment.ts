/**
 * Follows this prober's assignment: watches KV `pm_assignments` under the prober id and
 * applies an `Assignment` only when its (term, epoch) is newer than the one held: a
 * higher leadership term wins, within a term a higher epoch (so a deposed leader's
 * late writes — lower term — are ignored). Deletes are ignored too: the coordinator
 * empties an assignment by publishing one with no targets under a newer epoch.
 *
 * {@link ConnectionFence} stops a prober that lost NATS from probing under a stale
 * assignment (see its doc).
 */
import { Clock, Logger, toBigInt } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import type { KV, KvEntry } from 'nats';

/** Receives applied assignments. */
export type AssignmentHandler = (assignment: probemesh.v1.Assignment, epoch: bigint) => void;

/** A source of KV entries for one key (the nats.js KV, or a fake in tests). */
export interface AssignmentFeed {
  /** Entries for `key`: the current value first, then every update. */
  watch(opts: { key: string }): Promise<AsyncIterable<KvEntry> & { stop(): void }>;
}

/** Applies newer assignments of one prober. */
export class AssignmentWatcher {
  private epochHeld = 0n;
  private termHeld = 0n;
  private drainingHeld = false;
  private iter: (AsyncIterable<KvEntry> & { stop(): void }) | undefined;
  private loop: Promise<void> | undefined;

  constructor(private readonly prober: string, private readonly feed: AssignmentFeed | KV, private readonly onApply: AssignmentHandler, private readonly log: Logger) {}

  /** Epoch of the applied assignment (0 = none yet). */
  get epoch(): bigint {
    return this.epochHeld;
  }

  /** Leadership term of the applied assignment (0 = none yet). */
  get term(): bigint {
    return this.termHeld;
  }

  /** Whether the applied assignment marks this prober as draining. */
  get draining(): boolean {
    return this.drainingHeld;
  }

  /** Starts watching (resolves once the watch is established). */
  async start(): Promise<void> {
    const iter = await (this.feed as AssignmentFeed).watch({ key: this.prober });
    this.iter = iter;
    this.loop = (async () => {
      try {
        for await (const e of iter) this.handle(e);
      } catch (err) {
        this.log.error({ err }, 'assignment watch ended with an error');
      }
    })();
  }

  /** Handles one KV entry (public for tests). */
  handle(e: Pick<KvEntry, 'operation' | 'value' | 'revision'>): void {
    if (e.operation !== 'PUT') {
      this.log.info({ op: e.operation, revision: e.revision }, 'assignment deleted; keeping the current targets until a newer epoch');
      return;
    }
    let a: probemesh.v1.Assignment;
    try {
      a = probemesh.v1.Assignment.decode(e.value);
    } catch (err) {
      this.log.error({ err: (err as Error).message, revision: e.revision }, 'undecodable assignment ignored');
      return;
    }
    const epoch = toBigInt(a.epoch);
    const term = toBigInt(a.term);
    if (a.prober && a.prober !== this.prober) {
      this.log.error({ for: a.prober, revision: e.revision }, 'assignment for another prober ignored');
      return;
    }
    if (term < this.termHeld || (term === this.termHeld && epoch <= this.epochHeld)) {
      this.log.debug({ epoch: String(epoch), term: String(term), held: String(this.epochHeld), heldTerm: String(this.termHeld) }, 'assignment not newer; ignored');
      return;
    }
    this.epochHeld = epoch;
    this.termHeld = term;
    this.drainingHeld = a.draining;
    this.log.info({ epoch: String(epoch), term: String(term), targets: a.targets.length, coordinator: a.coordinator, draining: a.draining || undefined }, 'assignment applied');
    try {
      this.onApply(a, epoch);
    } catch (err) {
      // One bad assignment must not end the watch.
      this.log.error({ err, epoch: String(epoch) }, 'applying the assignment failed');
    }
  }

  /** Stops watching. */
  async stop(): Promise<void> {
    this.iter?.stop();
    await this.loop;
  }
}

/** Options of {@link ConnectionFence}. */
export interface ConnectionFenceOptions {
  /**
   * Fenced after this long without a confirmed round trip to NATS. Keep it at or below
   * the coordinator's `dead_after`, so the prober stops before its targets' new owners
   * start. @default 3 × heartbeat interval
   */
  fenceAfterMs: number;
  /** Check period. @default heartbeat interval */
  checkEveryMs: number;
  /** One round trip to NATS (e.g. `nc.flush()`); rejects or hangs while cut off. */
  ping: () => Promise<void>;
  /** Re-reads and applies the stored assignment; awaited before the fence lifts. */
  resync: () => Promise<void>;
  clock: Clock;
  log: Logger;
  /** Fence state changes (metrics). */
  onChange?: (fenced: boolean) => void;
}

/**
 * Fencing: a prober cut off from NATS cannot know whether the coordinator has
 * declared it dead and given its targets to others. After `fenceAfterMs` without a
 * successful round trip to its NATS server it is *fenced*: it stops starting probes
 * (results of probes started before — while it still owned the targets as far as
 * anyone could know — are kept and published on reconnect; nothing is lost). When
 * round trips succeed again it first re-reads its assignment from KV and applies it
 * if newer (typically the empty one the coordinator wrote when it was declared dead),
 * and only then lifts the fence. So two probers report the same target only for the
 * short time between the coordinator's `dead_after` and the prober's `fence_after`.
 */
export class ConnectionFence {
  private lastOkNs: bigint;
  private fencedNow = false;
  private checking = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: ConnectionFenceOptions) {
    this.lastOkNs = opts.clock.monoNs();
  }

  /** True while probing must not start. */
  get fenced(): boolean {
    return this.fencedNow;
  }

  /** Starts periodic checks. */
  start(): void {
    this.timer = setInterval(() => void this.check(), this.opts.checkEveryMs);
    this.timer.unref();
  }

  /** Stops checking. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One check (public for tests): evaluates the silence, then starts a round trip unless one is pending. */
  async check(): Promise<void> {
    const silentMs = Number(this.opts.clock.monoNs() - this.lastOkNs) / 1e6;
    if (!this.fencedNow && silentMs > this.opts.fenceAfterMs) {
      this.fencedNow = true;
      this.opts.log.warn({ silent_ms: Math.round(silentMs), fence_after_ms: this.opts.fenceAfterMs }, 'fenced: no round trip to NATS; not starting probes until the assignment is re-read');
      this.opts.onChange?.(true);
    }
    if (this.checking) return;
    this.checking = true;
    try {
      await this.opts.ping();
      this.lastOkNs = this.opts.clock.monoNs();
      if (this.fencedNow) {
        await this.opts.resync();
        this.fencedNow = false;
        this.opts.log.info('fence lifted: NATS reachable again and the assignment re-read');
        this.opts.onChange?.(false);
      }
    } catch (err) {
      this.opts.log.debug({ err: (err as Error)?.message }, 'NATS round trip failed');
    } finally {
      this.checking = false;
    }
  }
}
