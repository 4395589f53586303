/**
 * Prober clock skew as the aggregator sees it: a ResultBatch's `sent_unix_nano` (the
 * prober's clock) minus the time the NATS server stored the message (the server's
 * clock, from the JetStream message metadata). Network and publish latency add a few
 * ms; a skew of seconds means the prober's clock is off and its sample timestamps too.
 */
import { toBigInt, Logger } from '@probemesh/common';
import { ResultDelivery } from './consumer';
import { AggregatorMetrics } from './metrics';

/** Tracks per-prober skew into a gauge and warns (at most once a minute per prober) above a threshold. */
export class SkewMonitor {
  private readonly warned = new Map<string, number>();

  constructor(
    private readonly metrics: AggregatorMetrics,
    private readonly log: Logger,
    private readonly thresholdMs: number,
    private readonly monoMs: () => number = () => performance.now(),
    private readonly warnEveryMs = 60_000,
  ) {}

  /** Records the skew of one delivery; returns it in seconds (undefined when unknown). */
  observe(d: ResultDelivery): number | undefined {
    const sent = toBigInt(d.batch.sentUnixNano);
    const prober = d.batch.prober ?? '';
    if (sent === 0n || d.arrivalNs === 0n || !prober || d.redelivered) return undefined;
    const skewS = Number(sent - d.arrivalNs) / 1e9;
    this.metrics.proberClockSkew.set({ prober }, skewS);
    if (Math.abs(skewS) * 1000 > this.thresholdMs) {
      const now = this.monoMs();
      const last = this.warned.get(prober);
      if (last === undefined || now - last >= this.warnEveryMs) {
        this.warned.set(prober, now);
        this.log.warn({ prober, skew_seconds: skewS, threshold_seconds: this.thresholdMs / 1000 }, 'prober clock skew above threshold: its sample timestamps are off');
      }
    }
    return skewS;
  }
}
