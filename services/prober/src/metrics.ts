/** The prober's own metrics, on a prom-client Registry it owns (never the global one). */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The prober's metric handles. */
export interface ProberMetrics {
  /** The registry served on /metrics. */
  readonly registry: Registry;
  /** Probes run, by module and result ("success" or the failure code). */
  readonly probes: Counter<'module' | 'result'>;
  /** Start − due time of each probe. */
  readonly schedulerLag: Histogram<never>;
  /** Probes that waited for a concurrency slot. */
  readonly schedulerLate: Counter<never>;
  /** Probe slots not run (previous probe of the target still pending, or loop stalled). */
  readonly schedulerMissed: Counter<never>;
  /** Probes running now. */
  readonly inFlight: Gauge<never>;
  /** Targets scheduled. */
  readonly targets: Gauge<never>;
  /** Epoch of the applied assignment. */
  readonly assignmentEpoch: Gauge<never>;
  /** Results acknowledged by JetStream. */
  readonly resultsPublished: Counter<never>;
  /** Failed publish attempts of result batches. */
  readonly publishErrors: Counter<never>;
  /** Results dropped because the publish buffer was full (or at stop). */
  readonly resultsDropped: Counter<never>;
  /** Results waiting to be published. */
  readonly resultsBuffered: Gauge<never>;
}

/** Creates the prober metrics on a new Registry, with the default process metrics. */
export function createProberMetrics(labels: { prober: string; zone: string }): ProberMetrics {
  const registry = new Registry();
  registry.setDefaultLabels(labels);
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    probes: new Counter({ name: 'probemesh_prober_probes_total', help: 'Probes run, by module and result ("success" or the failure code).', labelNames: ['module', 'result'] as const, registers }),
    schedulerLag: new Histogram({
      name: 'probemesh_prober_scheduler_lag_seconds',
      help: 'Delay between the time a probe was due and the time it started.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    schedulerLate: new Counter({ name: 'probemesh_prober_scheduler_late_total', help: 'Probes that started late because max_concurrency probes were running.', registers }),
    schedulerMissed: new Counter({ name: 'probemesh_prober_scheduler_missed_total', help: 'Probe slots not run because the previous probe of the target was still pending or the event loop stalled.', registers }),
    inFlight: new Gauge({ name: 'probemesh_prober_probes_in_flight', help: 'Probes running now.', registers }),
    targets: new Gauge({ name: 'probemesh_prober_targets', help: 'Targets this prober probes.', registers }),
    assignmentEpoch: new Gauge({ name: 'probemesh_prober_assignment_epoch', help: 'Epoch of the assignment the prober applies (0 = none yet).', registers }),
    resultsPublished: new Counter({ name: 'probemesh_prober_results_published_total', help: 'Probe results acknowledged by JetStream.', registers }),
    publishErrors: new Counter({ name: 'probemesh_prober_publish_errors_total', help: 'Failed publish attempts of result batches (retried).', registers }),
    resultsDropped: new Counter({ name: 'probemesh_prober_results_dropped_total', help: 'Probe results dropped because the publish buffer was full or could not be flushed at stop.', registers }),
    resultsBuffered: new Gauge({ name: 'probemesh_prober_results_buffered', help: 'Probe results waiting to be published.', registers }),
  };
}
