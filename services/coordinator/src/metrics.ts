/** The coordinator's own metrics, on a Registry it is given (never the global one). */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { ProberState } from './membership';

/** Read-only views the gauges are computed from at scrape time. */
export interface CoordinatorView {
  /** Number of probers per state. */
  proberStates(): Record<ProberState, number>;
  /** Number of targets. */
  targetCount(): number;
  /** Targets assigned per prober in the current epoch. */
  targetsPerProber(): ReadonlyMap<string, number>;
  /** Current placement epoch. */
  epoch(): bigint;
  /** Whether this coordinator leads (publishes assignments). */
  isLeader(): boolean;
}

/** The counters the assignment publisher increments. */
export interface CoordinatorCounters {
  /** Placement recomputations that issued a new epoch. */
  rebalances: Counter;
  /** Target-owner changes (a target gaining an owner it did not have). */
  movedTargets: Counter;
}

/** Registers every coordinator metric on `registry`; gauges read `view` when scraped. */
export function registerCoordinatorMetrics(registry: Registry, view: CoordinatorView): CoordinatorCounters {
  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: 'probemesh_coordinator_probers',
    help: 'Probers known to the coordinator, by state (alive, dead, leaving).',
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
  return {
    rebalances: new Counter({ name: 'probemesh_coordinator_rebalances_total', help: 'Placement recomputations that issued a new epoch.', registers: [registry] }),
    movedTargets: new Counter({ name: 'probemesh_coordinator_moved_targets_total', help: 'Targets that gained an owner they did not have (moves between probers).', registers: [registry] }),
  };
}
