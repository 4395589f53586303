/**
 * Assignment publishing (leader only): after any change of targets or membership
 * (debounced by `rebalanceDelayMs`), recompute the placement and write, under a new
 * epoch and the leader's term, an `Assignment` to KV `pm_assignments` for every prober
 * whose target set changed — including an empty one for a prober that lost everything
 * (dead, leaving) and a fresh one for every prober that (re)joined. Probers apply an
 * assignment only when its (term, epoch) is newer than theirs; epochs continue from the
 * stored maximum after a restart or a change of leader.
 *
 * Writes are compare-and-set on each key's revision: a deposed leader whose write
 * races a newer term's finds the key changed, sees the higher term and stops
 * ({@link StaleLeaderError}); its late writes can never overwrite a newer term's.
 *
 * Drain (two-phase, see drain.ts): a draining prober is left out of the placement;
 * its targets go to their new owners at once while it keeps probing them
 * (`draining: true`) until every new owner has reported the new epoch as applied and
 * one interval of the target has passed since; then they leave its list.
 */
import { Clock, Logger, toBigInt, toULong } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import { CoverageTracker } from './coverage';
import { drainKeepList, DrainProgress } from './drain';
import { PlacementNode } from './membership';
import { CoordinatorCounters } from './metrics';
import { AssignmentStore, StaleLeaderError } from './store';

export { openAssignmentStore, StaleLeaderError } from './store';
export type { AssignmentStore } from './store';
import { countMoves, Placement, placeTargets } from './placement';
import { Target } from './targets';

/** Options of {@link AssignmentPublisher}. */
export interface AssignmentPublisherOptions {
  /** Written into every assignment (`Assignment.coordinator`). */
  coordinatorId: string;
  /** Leadership term written into every assignment. @default 0n */
  term?: bigint;
  /** Hash-ring virtual nodes per unit of capacity. */
  vnodesPerCapacity: number;
  /** Debounce of recomputation after a change. @default 200 */
  rebalanceDelayMs: number;
  /**
   * No placement before this long after start, so that live probers are heard from
   * first (otherwise a restarted coordinator would briefly empty every assignment).
   * Normally `dead_after` minus how long membership has already been followed.
   */
  startupGraceMs: number;
  /** Retry delay after a failed write. @default 1000 */
  retryDelayMs?: number;
  /** Current targets. */
  targets: () => readonly Target[];
  /** Current placement candidates (alive probers, draining ones included). */
  probers: () => readonly PlacementNode[];
  /** Monotonic ns of a prober's last heartbeat (coverage gaps start there). */
  lastSeenNs?: (prober: string) => bigint | undefined;
  /** False when this coordinator may no longer write (lease lost): the round is skipped. @default always true */
  canPublish?: () => boolean;
  /** Called once when a write found a newer term (this publisher then stops). */
  onStale?: (err: StaleLeaderError) => void;
  store: AssignmentStore;
  clock: Clock;
  log: Logger;
  counters?: CoordinatorCounters;
  /** Coverage-gap tracking. */
  coverage?: CoverageTracker;
}

interface Published {
  fingerprint: string;
  targetIds: Set<string>;
  epoch: bigint;
  term: bigint;
  draining: boolean;
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

function fingerprint(targets: readonly Target[], draining: boolean): string {
  return (draining ? 'D;' : '') + targets.map((t) => `${t.id}@${toBigInt(t.updatedUnixNano)}`).join(',');
}

const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
/** Re-check period of a drain hand-off in progress. */
const DRAIN_RECHECK_MS = 250;

/** Recomputes placement on change and publishes assignments with epochs. */
export class AssignmentPublisher {
  private epochValue = 0n;
  private readonly term: bigint;
  private readonly published = new Map<string, Published>();
  private owners = new Map<string, string[]>();
  private readonly joined = new Set<string>();
  private readonly drainingSet = new Set<string>();
  private readonly progress: DrainProgress = new Map();
  private readonly reasons = new Set<string>();
  private cache: { placement: Placement<Target>; nodes: PlacementNode[] } | undefined;
  private dirty = true;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private rerun = false;
  private stopped = false;
  private readonly notBeforeNs: bigint;

  private constructor(private readonly opts: AssignmentPublisherOptions) {
    this.term = opts.term ?? 0n;
    this.notBeforeNs = opts.clock.monoNs() + BigInt(Math.max(0, Math.round(opts.startupGraceMs))) * 1_000_000n;
  }

  /** Loads stored assignments (epoch, drains and per-prober state) and schedules the first placement. */
  static async start(opts: AssignmentPublisherOptions): Promise<AssignmentPublisher> {
    const p = new AssignmentPublisher(opts);
    for (const a of await opts.store.load()) {
      const epoch = toBigInt(a.epoch);
      if (epoch > p.epochValue) p.epochValue = epoch;
      const targets = ([...a.targets] as Target[]).sort(byId);
      const ids = targets.map((t) => t.id);
      p.published.set(a.prober, { fingerprint: fingerprint(targets, a.draining), targetIds: new Set(ids), epoch, term: toBigInt(a.term), draining: a.draining });
      if (a.draining) p.drainingSet.add(a.prober);
      else for (const id of ids) p.owners.set(id, [...(p.owners.get(id) ?? []), a.prober]);
    }
    opts.log.info({ epoch: String(p.epochValue), term: String(p.term), probers: p.published.size, draining: [...p.drainingSet] }, 'assignments loaded');
    p.schedule('start');
    return p;
  }

  /** The current (last issued) epoch. */
  get epoch(): bigint {
    return this.epochValue;
  }

  /** Targets in each prober's current assignment. */
  assignedCounts(): Map<string, number> {
    return new Map([...this.published].map(([p, v]) => [p, v.targetIds.size]));
  }

  /** Probers being drained (or drained and still held out of placement). */
  draining(): ReadonlySet<string> {
    return this.drainingSet;
  }

  /** The placement candidates of the last round (ring nodes), sorted by id. */
  ringNodes(): readonly PlacementNode[] {
    return this.cache?.nodes ?? [];
  }

  /** Owners of a target in the last placement, plus draining probers still holding it. */
  ownersOf(id: string): { owners: string[]; handingOver: string[] } {
    const handingOver = [...this.drainingSet].filter((p) => this.published.get(p)?.targetIds.has(id));
    return { owners: [...(this.owners.get(id) ?? [])], handingOver };
  }

  /**
   * Starts draining `prober` (true) or ends it (false). Returns how many targets move
   * (its current ones when draining; its share under the new ring when undraining).
   */
  setDraining(prober: string, draining: boolean): number {
    const had = this.drainingSet.has(prober);
    if (draining) this.drainingSet.add(prober);
    else this.drainingSet.delete(prober);
    let moving = this.published.get(prober)?.targetIds.size ?? 0;
    if (!draining) {
      const nodes = this.opts.probers().filter((n) => !this.drainingSet.has(n.id));
      moving = placeTargets(nodes, this.opts.targets(), { vnodesPerCapacity: this.opts.vnodesPerCapacity }).byProber.get(prober)?.length ?? 0;
    }
    if (had !== draining) {
      this.joined.add(prober);
      this.dirty = true;
      this.schedule(`${draining ? 'drain' : 'undrain'} ${prober}`);
    }
    return moving;
  }

  /** Records that `prober` (re)joined: it gets a fresh assignment in the next round. */
  noteJoin(prober: string): void {
    this.joined.add(prober);
    this.schedule(`join ${prober}`);
  }

  /** `prober` reports `epoch` applied (heartbeat): advances drains and coverage. */
  noteApplied(prober: string, epoch: bigint): void {
    const pub = this.published.get(prober);
    if (pub && epoch >= pub.epoch) {
      const c = this.progress.get(prober);
      if (!c || c.epoch < pub.epoch) this.progress.set(prober, { epoch: pub.epoch, atNs: this.opts.clock.monoNs() });
    }
    this.opts.coverage?.applied(prober, epoch);
  }

  /** Schedules a placement round after the debounce delay (and not before the start-up grace). */
  schedule(reason: string, delayMs = this.opts.rebalanceDelayMs, recomputePlacement = true): void {
    if (this.stopped) return;
    if (recomputePlacement) this.dirty = true;
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
          this.schedule('changes during the last round', this.opts.rebalanceDelayMs, false);
        }
      });
    }, Math.max(delayMs, graceMs));
  }

  /** Waits for a running round to finish (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async round(): Promise<void> {
    try {
      const r = await this.rebalance(!this.dirty);
      if (r.drainPending) this.schedule('drain hand-off', DRAIN_RECHECK_MS, false);
    } catch (err) {
      if (err instanceof StaleLeaderError) return;
      this.opts.log.error({ err }, 'rebalance failed; retrying');
      this.retryLater('retry after failure');
    }
  }

  private retryLater(reason: string): void {
    if (this.stopped) return;
    const t = setTimeout(() => this.schedule(reason), this.opts.retryDelayMs ?? 1000);
    t.unref();
  }

  private place(all: readonly PlacementNode[], targets: readonly Target[]): { placement: Placement<Target>; nodes: PlacementNode[] } {
    const nodes = all.filter((n) => !this.drainingSet.has(n.id));
    const key = (ns: readonly PlacementNode[]) => ns.map((n) => `${n.id}/${n.zone}/${n.capacity}`).join(',');
    if (!this.dirty && this.cache && key(this.cache.nodes) === key(nodes)) return this.cache;
    this.dirty = false;
    this.cache = { placement: placeTargets(nodes, targets, { vnodesPerCapacity: this.opts.vnodesPerCapacity }), nodes };
    return this.cache;
  }

  /**
   * Computes the placement now and publishes what changed. Exposed for tests; normally
   * driven by {@link schedule}.
   */
  async rebalance(reusePlacement = false): Promise<RebalanceOutcome & { drainPending: boolean }> {
    if (!reusePlacement) this.dirty = true;
    if (this.opts.canPublish && !this.opts.canPublish()) {
      this.opts.log.warn('not publishing: leadership not held');
      return { epoch: this.epochValue, published: [], moved: 0, drainPending: false };
    }
    const reasons = [...this.reasons];
    this.reasons.clear();
    const all = this.opts.probers();
    const targets = [...this.opts.targets()].sort(byId);
    const { placement, nodes } = this.place(all, targets);
    const alive = new Set(all.map((n) => n.id));
    const targetById = new Map(targets.map((t) => [t.id, t]));
    this.trackLostCoverage(alive, targetById);

    const nowNs = this.opts.clock.monoNs();
    const lists = new Map(placement.byProber);
    let drainPending = false;
    for (const d of this.drainingSet) {
      if (!alive.has(d)) continue;
      const keep = drainKeepList(d, this.published.get(d)?.targetIds ?? new Set(), targetById, placement.owners, (o) => this.published.get(o), this.progress, nowNs);
      lists.set(d, keep);
      if (keep.length > 0) drainPending = true;
    }

    const changed: { prober: string; targets: Target[]; fp: string; draining: boolean }[] = [];
    for (const prober of new Set([...alive, ...this.published.keys()])) {
      const draining = this.drainingSet.has(prober);
      const list = alive.has(prober) ? (lists.get(prober) ?? []) : [];
      const fp = fingerprint(list, draining);
      const prev = this.published.get(prober);
      const fresh = alive.has(prober) && (this.joined.has(prober) || (prev !== undefined && prev.term < this.term));
      if (prev?.fingerprint === fp && !fresh) continue;
      if (!prev && list.length === 0 && !alive.has(prober)) continue;
      changed.push({ prober, targets: list, fp, draining });
    }
    for (const p of [...this.joined]) if (!alive.has(p)) this.joined.delete(p);
    const moved = countMoves(this.owners, placement.owners);
    if (changed.length === 0) {
      this.owners = placement.owners;
      return { epoch: this.epochValue, published: [], moved, drainPending };
    }
    const epoch = this.epochValue + 1n;
    const issued = toULong(this.opts.clock.nowNs());
    const results = await Promise.allSettled(
      changed.map((c) =>
        this.opts.store.put(
          probemesh.v1.Assignment.create({ prober: c.prober, epoch: toULong(epoch), term: toULong(this.term), targets: c.targets, issuedUnixNano: issued, coordinator: this.opts.coordinatorId, draining: c.draining }),
        ),
      ),
    );
    const ok: string[] = [];
    let stale: StaleLeaderError | undefined;
    results.forEach((r, i) => {
      const c = changed[i]!;
      if (r.status === 'fulfilled') {
        ok.push(c.prober);
        this.published.set(c.prober, { fingerprint: c.fp, targetIds: new Set(c.targets.map((t) => t.id)), epoch, term: this.term, draining: c.draining });
        this.joined.delete(c.prober);
      } else if (r.reason instanceof StaleLeaderError) stale = r.reason;
      else this.opts.log.error({ err: r.reason, prober: c.prober, epoch: String(epoch) }, 'assignment write failed');
    });
    // Epochs are never reused once anything was written under them.
    if (ok.length > 0) {
      this.epochValue = epoch;
      this.opts.counters?.rebalances.inc();
      this.opts.counters?.movedTargets.inc(moved);
    }
    this.owners = placement.owners;
    const cov = this.opts.coverage;
    if (cov) for (const id of [...cov.ids()]) cov.assign(id, placement.owners.get(id) ?? [], (o) => this.published.get(o)?.epoch ?? epoch);
    this.opts.log.info(
      { epoch: String(epoch), term: String(this.term), published: ok, probers: nodes.length, draining: [...this.drainingSet], targets: targets.length, moved, under_replicated: placement.underReplicated, reasons },
      'assignments published',
    );
    if (stale) {
      this.opts.log.error({ err: stale }, 'a newer leader wrote assignments; stopping');
      this.stopped = true;
      this.opts.onStale?.(stale);
      throw stale;
    }
    if (ok.length < changed.length) this.retryLater('retry failed assignment writes');
    return { epoch: this.epochValue, published: ok, moved, drainPending };
  }

  /** Marks the targets of probers lost since the last round (no other live owner) as uncovered. */
  private trackLostCoverage(alive: ReadonlySet<string>, targetById: ReadonlyMap<string, Target>): void {
    const cov = this.opts.coverage;
    if (!cov) return;
    for (const id of [...cov.ids()]) if (!targetById.has(id)) cov.forget(id);
    for (const [prober, pub] of this.published) {
      if (alive.has(prober) || pub.targetIds.size === 0) continue;
      const since = this.opts.lastSeenNs?.(prober) ?? this.opts.clock.monoNs();
      for (const id of pub.targetIds) {
        if (!targetById.has(id)) continue;
        const others = (this.owners.get(id) ?? []).filter((o) => o !== prober && alive.has(o) && !this.drainingSet.has(o));
        const holders = [...this.drainingSet].filter((d) => d !== prober && alive.has(d) && this.published.get(d)?.targetIds.has(id));
        if (others.length === 0 && holders.length === 0) cov.lose(id, since);
      }
    }
  }

  /** Cancels pending rounds and waits for a running one. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.idle();
  }
}
