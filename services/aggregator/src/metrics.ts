/**
 * The aggregator's own metrics, in a Registry owned by one aggregator (never the
 * prom-client global registry), served on its /metrics.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { Clock } from '@probemesh/common';
import type { AttemptObservation } from './remote-write';

/** The aggregator's metric families. */
export interface AggregatorMetrics {
  /** The registry holding them (plus default process metrics). */
  readonly registry: Registry;
  /** ProbeResults decoded from the stream. */
  readonly resultsReceived: Counter;
  /** Samples produced from those results. */
  readonly samplesIn: Counter;
  /** Samples accepted by an endpoint. */
  readonly samplesSent: Counter<'endpoint'>;
  /** Samples re-sent after a retryable failure. */
  readonly samplesRetried: Counter<'endpoint'>;
  /** Samples given up on (non-retryable rejection), by reason. */
  readonly samplesDropped: Counter<'endpoint' | 'reason'>;
  /** JetStream messages dropped before any sample was made (e.g. undecodable). */
  readonly messagesDropped: Counter<'reason'>;
  /** Labels dropped while building series (reserved name, invalid name, empty value). */
  readonly labelsDropped: Counter<'reason'>;
  /** remote_write HTTP attempts by status ("2xx" code, or "network"). */
  readonly requests: Counter<'endpoint' | 'status'>;
  /** Duration of one remote_write HTTP attempt. */
  readonly sendDuration: Histogram<'endpoint'>;
  /** Samples queued or in flight per endpoint. */
  readonly queueSamples: Gauge<'endpoint'>;
  /** 1 while native histogram samples are sent to the endpoint, 0 when not (`never`, or `auto` after a refusal). */
  readonly nativeHistograms: Gauge<'endpoint'>;
  /** Requests split in two after a permanent rejection, by reason. */
  readonly bisections: Counter<'endpoint' | 'reason'>;
  /** Result stream messages held (pulled, not yet acked). */
  readonly heldMessages: Gauge;
  /** Stale markers queued, by cause. */
  readonly staleMarkers: Counter<'cause'>;
  /** Series interned (with histogram/jitter state). */
  readonly series: Gauge;
  /** Prober subjects this aggregator consumes. */
  readonly ownedProbers: Gauge;
  /** Live aggregators seen (self included). */
  readonly aggregators: Gauge;
  /** ResultBatch sent time minus NATS arrival time, per prober. */
  readonly proberClockSkew: Gauge<'prober'>;
  /** Messages acked / nak'ed. */
  readonly messagesAcked: Counter<'outcome'>;
  /** JetStream `num_pending` summed over this aggregator's consumers (refreshed every few seconds). */
  readonly pendingMessages: Gauge;
  /** Records the newest sample timestamp (ms) an endpoint accepted, for the lag gauge. */
  markSent(endpoint: string, newestTimestampMs: number): void;
}

/** Creates the aggregator's metrics in a new Registry; `clock` feeds the lag gauge at scrape time. */
export function createAggregatorMetrics(clock: Clock, opts: { defaultMetrics?: boolean } = {}): AggregatorMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const newestSent = new Map<string, number>();
  const p = 'probemesh_aggregator_';
  const registers = [registry];
  new Gauge({
    name: `${p}remote_storage_lag_seconds`,
    help: 'Now minus the timestamp of the newest sample the endpoint accepted.',
    labelNames: ['endpoint'],
    registers,
    collect() {
      const now = clock.nowMs();
      for (const [endpoint, ts] of newestSent) this.set({ endpoint }, Math.max(0, now - ts) / 1000);
    },
  });
  return {
    registry,
    resultsReceived: new Counter({ name: `${p}results_received_total`, help: 'Probe results decoded from the results stream.', registers }),
    samplesIn: new Counter({ name: `${p}samples_in_total`, help: 'Samples produced from received probe results.', registers }),
    samplesSent: new Counter({ name: `${p}samples_sent_total`, help: 'Samples accepted by a remote_write endpoint.', labelNames: ['endpoint'], registers }),
    samplesRetried: new Counter({ name: `${p}samples_retried_total`, help: 'Samples re-sent after a retryable remote_write failure.', labelNames: ['endpoint'], registers }),
    samplesDropped: new Counter({ name: `${p}samples_dropped_total`, help: 'Samples dropped after a non-retryable rejection, by reason.', labelNames: ['endpoint', 'reason'], registers }),
    messagesDropped: new Counter({ name: `${p}messages_dropped_total`, help: 'Result stream messages dropped without producing samples, by reason.', labelNames: ['reason'], registers }),
    labelsDropped: new Counter({ name: `${p}labels_dropped_total`, help: 'Labels dropped while building series (reserved, invalid_name, empty_value).', labelNames: ['reason'], registers }),
    requests: new Counter({ name: `${p}remote_write_requests_total`, help: 'remote_write HTTP attempts by response status ("network" when none).', labelNames: ['endpoint', 'status'], registers }),
    sendDuration: new Histogram({
      name: `${p}send_duration_seconds`,
      help: 'Duration of one remote_write HTTP attempt.',
      labelNames: ['endpoint'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    queueSamples: new Gauge({ name: `${p}queue_samples`, help: 'Samples queued or in flight, per endpoint.', labelNames: ['endpoint'], registers }),
    nativeHistograms: new Gauge({ name: `${p}native_histograms_enabled`, help: '1 while native histogram samples are sent to the endpoint; 0 with native_histograms: never, or after the receiver refused them in auto mode.', labelNames: ['endpoint'], registers }),
    bisections: new Counter({ name: `${p}request_splits_total`, help: 'Requests split in two after a permanent rejection (to resend the good samples), by reason.', labelNames: ['endpoint', 'reason'], registers }),
    heldMessages: new Gauge({ name: `${p}held_messages`, help: 'Result stream messages pulled and not yet acknowledged.', registers }),
    staleMarkers: new Counter({ name: `${p}stale_markers_total`, help: 'Stale markers queued, by cause (target_removed, target_moved).', labelNames: ['cause'], registers }),
    series: new Gauge({ name: `${p}series`, help: 'Series with in-memory state (labels, histogram, jitter window).', registers }),
    ownedProbers: new Gauge({ name: `${p}owned_probers`, help: 'Prober result subjects this aggregator consumes.', registers }),
    aggregators: new Gauge({ name: `${p}aggregators`, help: 'Live aggregators seen, this one included.', registers }),
    proberClockSkew: new Gauge({ name: `${p}prober_clock_skew_seconds`, help: 'ResultBatch sent time (prober clock) minus its arrival time at the NATS server, per prober; positive = prober ahead.', labelNames: ['prober'], registers }),
    messagesAcked: new Counter({ name: `${p}messages_total`, help: 'Result stream messages done with, by outcome (ack, nak).', labelNames: ['outcome'], registers }),
    pendingMessages: new Gauge({ name: `${p}pending_messages`, help: 'Messages of the results stream not yet delivered to this aggregator\'s consumers (num_pending, backlog).', registers }),
    markSent(endpoint, ts) {
      if (ts > (newestSent.get(endpoint) ?? -Infinity)) newestSent.set(endpoint, ts);
    },
  };
}

/** Records one remote_write attempt of `endpoint` (requests, duration, retried samples). */
export function recordAttempt(m: AggregatorMetrics, endpoint: string, a: AttemptObservation): void {
  m.requests.inc({ endpoint, status: a.status === 0 ? a.reason : String(a.status) });
  m.sendDuration.observe({ endpoint }, a.durationS);
  if (!a.ok && a.retryable && a.reason !== 'aborted') m.samplesRetried.inc({ endpoint }, a.samples);
}
