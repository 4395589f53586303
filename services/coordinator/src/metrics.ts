/** The coordinator's own metrics, on a Registry it is given (never the global one). */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Read-only views the gauges are computed from at scrape time. */
export interface CoordinatorView {
  /** Number of probers per state (alive, draining, dead, leaving). */
  proberStates(): Record<string, number>;
  /** Number of targets. */
  targetCount(): number;
  /** Targets assigned per prober in the current epoch. */
  targetsPerProber(): ReadonlyMap<string, number>;
  /** Current placement epoch. */
  epoch(): bigint;
  /** Whether this coordinator leads (publishes assignments). */
  isLeader(): boolean;
  /** Current leadership term (ours when leading, else the leader's as last seen). */
  term(): bigint;
  /** Targets without a live owner now. */
  uncovered(): number;
}

/** The counters the assignment publisher increments. */
export interface CoordinatorCounters {
  /** Placement recomputations that issued a new epoch. */
  rebalances: Counter;
  /** Target-owner changes (a target gaining an owner it did not have). */
  movedTargets: Counter;
  /** Time targets had no live owner, per target and gap, seconds. */
  coverageGap: Histogram;
  /** Times this coordinator became leader. */
  elections: Counter;
}

/** Registers every coordinator metric on `registry`; gauges read `view` when scraped. */
export function registerCoordinatorMetrics(registry: Registry, view: CoordinatorView): CoordinatorCounters {
  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: 'probemesh_coordinator_probers',
    help: 'Probers known to the coordinator, by state (alive, draining, dead, leaving).',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      for (const [state, n] of Object.entries(view.proberStates())) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'probemesh_coordinator_targets',
    help: 'Targets in the registry.',
    registers: [registry],
    collect() {
      this.set(view.targetCount());
    },
  });
  new Gauge({
    name: 'probemesh_coordinator_targets_per_prober',
    help: 'Targets assigned to each prober in the current epoch.',
    labelNames: ['prober'],
    registers: [registry],
    collect() {
      // Reset so probers that disappeared do not keep their last value.
      this.reset();
      for (const [prober, n] of view.targetsPerProber()) this.set({ prober }, n);
    },
  });
  new Gauge({
    name: 'probemesh_coordinator_assignment_epoch',
    help: 'Current placement epoch.',
    registers: [registry],
    collect() {
      this.set(Number(view.epoch()));
    },
  });
  new Gauge({
    name: 'probemesh_coordinator_is_leader',
    help: '1 if this coordinator is the leader (publishes assignments), else 0.',
    registers: [registry],
    collect() {
      this.set(view.isLeader() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'probemesh_coordinator_term',
    help: 'Leadership term (this coordinator\'s while it leads, else the leader\'s as last seen).',
    registers: [registry],
    collect() {
      this.set(Number(view.term()));
    },
  });
  new Gauge({
    name: 'probemesh_coordinator_targets_uncovered',
    help: 'Targets without a live owner now (their owner died or left and no new owner has applied them yet). Leader only.',
    registers: [registry],
    collect() {
      this.set(view.uncovered());
    },
  });
  return {
    coverageGap: new Histogram({
      name: 'probemesh_coordinator_coverage_gap_seconds',
      help: "Per target and gap: time from its owner's last heartbeat (owner dead or leaving) until a new owner reported the assignment applied.",
      buckets: [0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 7.5, 10, 15, 30, 60],
      registers: [registry],
    }),
    elections: new Counter({ name: 'probemesh_coordinator_elections_total', help: 'Times this coordinator became the leader.', registers: [registry] }),
    rebalances: new Counter({ name: 'probemesh_coordinator_rebalances_total', help: 'Placement recomputations that issued a new epoch.', registers: [registry] }),
    movedTargets: new Counter({ name: 'probemesh_coordinator_moved_targets_total', help: 'Targets that gained an owner they did not have (moves between probers).', registers: [registry] }),
  };
}
