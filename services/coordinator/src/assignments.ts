/**
 * Assignment publishing: after any change of targets or membership (debounced by
 * `rebalanceDelayMs`), recompute the placement and write, under a new epoch, an
 * `Assignment` to KV `pm_assignments` for every prober whose target set changed —
 * including an empty one for a prober that lost everything (dead, leaving) and a fresh
 * one for every prober that (re)joined. Probers apply an assignment only when its
 * epoch is newer than theirs, so epochs continue from the stored maximum after a
 * restart.
 */
import { Clock, KV_ASSIGNMENTS, Logger, openKv, toBigInt, toULong } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import type { KV, NatsConnection } from 'nats';
import { PlacementNode } from './membership';
import { CoordinatorCounters } from './metrics';
import { countMoves, placeTargets } from './placement';
import { Target } from './targets';

/** Where assignments are stored (KV `pm_assignments`, or a fake in unit tests). */
export interface AssignmentStore {
  /** Every stored assignment. */
  load(): Promise<probemesh.v1.Assignment[]>;
  /** Stores `a` under its prober's id. */
  put(a: probemesh.v1.Assignment): Promise<void>;
}

/** The KV-backed {@link AssignmentStore}. */
export async function openAssignmentStore(nc: NatsConnection, log: Logger): Promise<AssignmentStore> {
  const kv: KV = await openKv(nc, KV_ASSIGNMENTS, { history: 1 });
  return {
    async load() {
      const out: probemesh.v1.Assignment[] = [];
      for await (const k of await kv.keys()) {
        const e = await kv.get(k);
        if (!e || e.operation !== 'PUT') continue;
        try {
          out.push(probemesh.v1.Assignment.decode(e.value));
        } catch (err) {
          log.warn({ err, key: k }, 'undecodable assignment in pm_assignments ignored');
        }
      }
      return out;
    },
    async put(a) {
      await kv.put(a.prober, probemesh.v1.Assignment.encode(a).finish());
    },
  };
}

/** Options of {@link AssignmentPublisher}. */
export interface AssignmentPublisherOptions {
  /** Written into every assignment (`Assignment.coordinator`). */
  coordinatorId: string;
  /** Hash-ring virtual nodes per unit of capacity. */
  vnodesPerCapacity: number;
  /** Debounce of recomputation after a change. @default 200 */
  rebalanceDelayMs: number;
  /**
   * No placement before this long after start, so that live probers are heard from
   * first (otherwise a restarted coordinator would briefly empty every assignment).
   * Normally `dead_after`.
   */
  startupGraceMs: number;
  /** Retry delay after a failed write. @default 1000 */
  retryDelayMs?: number;
  /** Current targets. */
  targets: () => readonly Target[];
  /** Current placement candidates (alive probers). */
  probers: () => readonly PlacementNode[];
  store: AssignmentStore;
  clock: Clock;
  log: Logger;
  counters?: CoordinatorCounters;
}

interface Published {
  fingerprint: string;
  targetIds: string[];
}

/** A summary of one placement round, for logs and tests. */
export interface RebalanceOutcome {
  /** The epoch issued (unchanged when nothing changed). */
  epoch: bigint;
  /** Probers that got a new assignment. */
  published: string[];
  /** Target-owner changes against the previous placement. */
  moved: number;
}

function fingerprint(targets: readonly Target[]): string {
  return targets.map((t) => `${t.id}@${toBigInt(t.updatedUnixNano)}`).join(',');
}

/** Recomputes placement on change and publishes assignments with epochs. */
export class AssignmentPublisher {
  private epochValue = 0n;
  private readonly published = new Map<string, Published>();
  private owners = new Map<string, string[]>();
  private readonly joined = new Set<string>();
  private readonly reasons = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private rerun = false;
  private stopped = false;
  private readonly notBeforeNs: bigint;

  private constructor(private readonly opts: AssignmentPublisherOptions) {
    this.notBeforeNs = opts.clock.monoNs() + BigInt(opts.startupGraceMs) * 1_000_000n;
  }

  /** Loads stored assignments (epoch and per-prober state) and schedules the first placement. */
  static async start(opts: AssignmentPublisherOptions): Promise<AssignmentPublisher> {
    const p = new AssignmentPublisher(opts);
    for (const a of await opts.store.load()) {
      const epoch = toBigInt(a.epoch);
      if (epoch > p.epochValue) p.epochValue = epoch;
      const targets = ([...a.targets] as Target[]).sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
      p.published.set(a.prober, { fingerprint: fingerprint(targets), targetIds: targets.map((t) => t.id) });
      for (const t of targets) p.owners.set(t.id, [...(p.owners.get(t.id) ?? []), a.prober]);
    }
    opts.log.info({ epoch: String(p.epochValue), probers: p.published.size }, 'assignments loaded');
    p.schedule('start');
    return p;
  }

  /** The current (last issued) epoch. */
  get epoch(): bigint {
    return this.epochValue;
  }

  /** Targets in each prober's current assignment. */
  assignedCounts(): Map<string, number> {
    return new Map([...this.published].map(([p, v]) => [p, v.targetIds.length]));
  }

  /** Records that `prober` (re)joined: it gets a fresh assignment in the next round. */
  noteJoin(prober: string): void {
    this.joined.add(prober);
    this.schedule(`join ${prober}`);
  }

  /** Schedules a placement round after the debounce delay (and not before the start-up grace). */
  schedule(reason: string): void {
    if (this.stopped) return;
    this.reasons.add(reason);
    if (this.running) {
      this.rerun = true;
      return;
    }
    if (this.timer) return;
    const graceMs = Number(this.notBeforeNs - this.opts.clock.monoNs()) / 1e6;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.round().finally(() => {
        this.running = undefined;
        if (this.rerun) {
          this.rerun = false;
          this.schedule('changes during the last round');
        }
      });
    }, Math.max(this.opts.rebalanceDelayMs, graceMs));
  }

  /** Waits for a running round to finish (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async round(): Promise<void> {
    try {
      await this.rebalance();
    } catch (err) {
      this.opts.log.error({ err }, 'rebalance failed; retrying');
      this.retryLater('retry after failure');
    }
  }

  private retryLater(reason: string): void {
    if (this.stopped) return;
    const t = setTimeout(() => this.schedule(reason), this.opts.retryDelayMs ?? 1000);
    t.unref();
  }

  /**
   * Computes the placement now and publishes what changed. Exposed for tests; normally
   * driven by {@link schedule}.
   */
  async rebalance(): Promise<RebalanceOutcome> {
    const reasons = [...this.reasons];
    this.reasons.clear();
    const nodes = this.opts.probers();
    const targets = [...this.opts.targets()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const placement = placeTargets(nodes, targets, { vnodesPerCapacity: this.opts.vnodesPerCapacity });
    const alive = new Set(nodes.map((n) => n.id));
    const changed: { prober: string; targets: Target[]; fp: string }[] = [];
    for (const prober of new Set([...alive, ...this.published.keys()])) {
      const list = placement.byProber.get(prober) ?? [];
      const fp = fingerprint(list);
      const prev = this.published.get(prober);
      const rejoined = this.joined.has(prober) && alive.has(prober);
      if (prev?.fingerprint === fp && !rejoined) continue;
      if (!prev && list.length === 0 && !alive.has(prober)) continue;
      changed.push({ prober, targets: list, fp });
    }
    for (const p of [...this.joined]) if (!alive.has(p)) this.joined.delete(p);
    const moved = countMoves(this.owners, placement.owners);
    if (changed.length === 0) {
      this.owners = placement.owners;
      return { epoch: this.epochValue, published: [], moved };
    }
    const epoch = this.epochValue + 1n;
    const issued = toULong(this.opts.clock.nowNs());
    const results = await Promise.allSettled(
      changed.map((c) =>
        this.opts.store.put(
          probemesh.v1.Assignment.create({ prober: c.prober, epoch: toULong(epoch), targets: c.targets, issuedUnixNano: issued, coordinator: this.opts.coordinatorId }),
        ),
      ),
    );
    const ok: string[] = [];
    results.forEach((r, i) => {
      const c = changed[i]!;
      if (r.status === 'fulfilled') {
        ok.push(c.prober);
        this.published.set(c.prober, { fingerprint: c.fp, targetIds: c.targets.map((t) => t.id) });
        this.joined.delete(c.prober);
      } else {
        this.opts.log.error({ err: r.reason, prober: c.prober, epoch: String(epoch) }, 'assignment write failed');
      }
    });
    // Epochs are never reused once anything was written under them.
    if (ok.length > 0) {
      this.epochValue = epoch;
      this.opts.counters?.rebalances.inc();
      this.opts.counters?.movedTargets.inc(moved);
    }
    this.owners = placement.owners;
    this.opts.log.info(
      { epoch: String(epoch), published: ok, probers: nodes.length, targets: targets.length, moved, under_replicated: placement.underReplicated, reasons },
      'assignments published',
    );
    if (ok.length < changed.length) this.retryLater('retry failed assignment writes');
    return { epoch: this.epochValue, published: ok, moved };
  }

  /** Cancels pending rounds and waits for a running one. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.idle();
  }
}
