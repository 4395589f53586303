/**
 * Coverage gaps: how long a target had no live owner. A target becomes uncovered when
 * its last live owner is lost (dead or leaving) — from that owner's last heartbeat —
 * and covered again when a new owner's heartbeat reports an applied epoch at least
 * the one that gave it the target. The gap is observed into a histogram
 * (`probemesh_coordinator_coverage_gap_seconds`); the uncovered count is a gauge.
 */
import { Clock } from '@probemesh/common';

/** Receives finished gaps, in seconds. */
export type GapObserver = (seconds: number) => void;

interface Uncovered {
  sinceNs: bigint;
  /** New owners and the epoch each must apply. */
  awaiting?: Map<string, bigint>;
}

/** Tracks uncovered targets of the leader's placement. */
export class CoverageTracker {
  private readonly uncovered = new Map<string, Uncovered>();
  /** prober → targets waiting for it to apply an epoch. */
  private readonly byProber = new Map<string, Set<string>>();

  constructor(private readonly clock: Clock, private readonly observe: GapObserver) {}

  /** Targets without a live owner now. */
  get size(): number {
    return this.uncovered.size;
  }

  /** Whether `id` is uncovered. */
  has(id: string): boolean {
    return this.uncovered.has(id);
  }

  /** `id` lost its last live owner at `sinceNs` (monotonic); an earlier start is kept. */
  lose(id: string, sinceNs: bigint): void {
    const u = this.uncovered.get(id);
    if (!u) this.uncovered.set(id, { sinceNs });
    else if (sinceNs < u.sinceNs) u.sinceNs = sinceNs;
  }

  /** `id` was assigned to `owners`, each under `epochOf(owner)`. */
  assign(id: string, owners: readonly string[], epochOf: (prober: string) => bigint): void {
    const u = this.uncovered.get(id);
    if (!u) return;
    this.unlink(id, u);
    if (owners.length === 0) return;
    u.awaiting = new Map(owners.map((o) => [o, epochOf(o)]));
    for (const o of owners) {
      let s = this.byProber.get(o);
      if (!s) this.byProber.set(o, (s = new Set()));
      s.add(id);
    }
  }

  /** `prober` applied `epoch`: targets it was awaited for are covered again. */
  applied(prober: string, epoch: bigint): void {
    const ids = this.byProber.get(prober);
    if (!ids) return;
    const now = this.clock.monoNs();
    for (const id of [...ids]) {
      const u = this.uncovered.get(id);
      const need = u?.awaiting?.get(prober);
      if (!u || need === undefined || epoch < need) continue;
      this.unlink(id, u);
      this.uncovered.delete(id);
      this.observe(Number(now - u.sinceNs) / 1e9);
    }
  }

  /** Forgets a target (removed from the registry). */
  forget(id: string): void {
    const u = this.uncovered.get(id);
    if (!u) return;
    this.unlink(id, u);
    this.uncovered.delete(id);
  }

  /** Ids of uncovered targets (for pruning removed ones). */
  ids(): IterableIterator<string> {
    return this.uncovered.keys();
  }

  private unlink(id: string, u: Uncovered): void {
    if (!u.awaiting) return;
    for (const o of u.awaiting.keys()) {
      const s = this.byProber.get(o);
      s?.delete(id);
      if (s && s.size === 0) this.byProber.delete(o);
    }
    u.awaiting = undefined;
  }
}
