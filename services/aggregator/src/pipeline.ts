/**
 * The result pipeline: pulls deliveries from the results consumer, turns them into
 * samples, cuts batches (max samples or deadline), writes each batch to every
 * remote_write endpoint and acknowledges its messages only when every endpoint
 * accepted it or refused it for good. Memory is bounded: one batch in flight, one
 * filling, and pulling stops while the filling batch is full.
 */
import { Clock, describeError, Logger } from '@probemesh/common';
import { ResultDelivery, ResultSource } from './consumer';
import { AggregatorMetrics } from './metrics';
import { RemoteWriteClient } from './remote-write';
import { batchSamples, chunkSeries, groupSeries, SeriesSample, TimeSeries } from './series';

/** Options of a {@link ResultPipeline}. */
export interface ResultPipelineOptions {
  /** Where deliveries come from. */
  source: ResultSource;
  /** remote_write endpoints; each batch goes to all of them. */
  endpoints: readonly RemoteWriteClient[];
  /** `job` label value. */
  job: string;
  /** Messages asked for per pull. */
  fetchBatch: number;
  /** How often held messages get `working()` (keep below ack_wait). */
  workingIntervalMs: number;
  /** Metrics to update. */
  metrics: AggregatorMetrics;
  /** Logger. */
  log: Logger;
  /** Clock (batch deadlines use its monotonic time). */
  clock: Clock;
}

/** A delivery held in memory with its samples. */
interface Held {
  d: ResultDelivery;
  samples: SeriesSample[];
  arrivedMs: number;
}

/** How a batch ended for one endpoint. */
type EndpointResult = 'done' | 'aborted';

/** Batches results and writes them to the remote_write endpoints; see the file comment. */
export class ResultPipeline {
  private readonly cutSamples: number;
  private readonly deadlineMs: number;
  private filling: Held[] = [];
  private fillingSamples = 0;
  private inFlight?: Promise<void>;
  private inFlightBatch: Held[] = [];
  private inFlightSamples = 0;
  private deadlineTimer?: NodeJS.Timeout;
  private workingTimer?: NodeJS.Timeout;
  private roomWaiters: (() => void)[] = [];
  private running?: Promise<void>;
  private flushing = false;
  private readonly fetchAbort = new AbortController();
  private readonly sendAbort = new AbortController();

  constructor(private readonly o: ResultPipelineOptions) {
    if (o.endpoints.length === 0) throw new Error('ResultPipeline needs at least one endpoint');
    // With several endpoints a batch is shared: cut at the smallest size and deadline;
    // each endpoint then splits by its own max_samples_per_send.
    this.cutSamples = Math.min(...o.endpoints.map((e) => e.settings.max_samples_per_send));
    this.deadlineMs = Math.min(...o.endpoints.map((e) => e.settings.batch_deadline));
  }

  /** Starts pulling and sending. */
  start(): void {
    if (this.running) return;
    this.workingTimer = setInterval(() => this.touchHeld(), this.o.workingIntervalMs);
    this.workingTimer.unref();
    this.running = this.run();
  }

  /** Samples held in memory now (filling + in flight). */
  get heldSamples(): number {
    return this.fillingSamples + this.inFlightSamples;
  }

  /**
   * Stops pulling, lets the current pull end, then flushes what is held for up to
   * `graceMs`; whatever is not accepted by then is nak'ed (redelivered, not lost).
   */
  async stop(graceMs: number): Promise<void> {
    this.fetchAbort.abort();
    this.wakeRoomWaiters();
    await this.running;
    const t = setTimeout(() => this.sendAbort.abort(), graceMs);
    this.flushing = true;
    this.maybeCut();
    while (this.inFlight) await this.inFlight;
    clearTimeout(t);
    clearInterval(this.workingTimer);
    clearTimeout(this.deadlineTimer);
    for (const h of this.filling) h.d.nak();
    this.filling = [];
    this.fillingSamples = 0;
    this.updateQueueGauge();
  }

  private async run(): Promise<void> {
    const signal = this.fetchAbort.signal;
    while (!signal.aborted) {
      if (this.fillingSamples >= this.cutSamples) {
        await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
        continue;
      }
      try {
        for await (const d of this.o.source.pull(this.o.fetchBatch, signal)) this.add(d);
      } catch (err) {
        this.o.log.error({ err: describeError(err) }, 'result source failed');
      }
    }
  }

  private nowMs(): number {
    return Number(this.o.clock.monoNs() / 1_000_000n);
  }

  /** Converts a delivery and adds it to the filling batch. */
  private add(d: ResultDelivery): void {
    const { metrics: m } = this.o;
    const { samples, drops } = batchSamples(d.batch, { job: this.o.job });
    m.resultsReceived.inc(d.batch.results?.length ?? 0);
    m.samplesIn.inc(samples.length);
    for (const [reason, n] of Object.entries(drops.labels)) m.labelsDropped.inc({ reason }, n ?? 0);
    for (const [reason, n] of Object.entries(drops.samples)) m.samplesDropped.inc({ endpoint: '', reason }, n ?? 0);
    if (samples.length === 0) {
      d.ack();
      return;
    }
    this.filling.push({ d, samples, arrivedMs: this.nowMs() });
    this.fillingSamples += samples.length;
    this.updateQueueGauge();
    this.maybeCut();
  }

  /** Starts a send of the filling batch when none is in flight and it is full, overdue or flushing. */
  private maybeCut(): void {
    if (this.inFlight || this.filling.length === 0) return;
    const oldest = this.filling[0]!.arrivedMs;
    const due = this.flushing || this.fillingSamples >= this.cutSamples || this.nowMs() - oldest >= this.deadlineMs;
    if (!due) {
      this.scheduleDeadline(oldest);
      return;
    }
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    const batch: Held[] = [];
    let n = 0;
    while (this.filling.length > 0 && (batch.length === 0 || n + this.filling[0]!.samples.length <= this.cutSamples)) {
      const h = this.filling.shift()!;
      batch.push(h);
      n += h.samples.length;
    }
    this.fillingSamples -= n;
    this.inFlightBatch = batch;
    this.inFlightSamples = n;
    this.inFlight = this.sendBatch(batch)
      .catch((err) => {
        // Not expected (sends return values); keep the messages for redelivery.
        this.o.log.error({ err: describeError(err) }, 'sending a batch failed unexpectedly');
        for (const h of batch) h.d.nak();
      })
      .finally(() => {
        this.inFlight = undefined;
        this.inFlightBatch = [];
        this.inFlightSamples = 0;
        this.updateQueueGauge();
        this.maybeCut();
        if (this.fillingSamples < this.cutSamples) this.wakeRoomWaiters();
      });
  }

  private scheduleDeadline(oldestMs: number): void {
    if (this.deadlineTimer) return;
    const delay = Math.max(0, oldestMs + this.deadlineMs - this.nowMs());
    this.deadlineTimer = setTimeout(() => {
      this.deadlineTimer = undefined;
      this.maybeCut();
    }, delay);
  }

  private async sendBatch(batch: Held[]): Promise<void> {
    if (this.sendAbort.signal.aborted) {
      for (const h of batch) h.d.nak();
      return;
    }
    const series = groupSeries(batch.flatMap((h) => h.samples));
    const results = await Promise.all(this.o.endpoints.map((ep) => this.sendTo(ep, series)));
    if (results.includes('aborted')) for (const h of batch) h.d.nak();
    else for (const h of batch) h.d.ack();
  }

  private async sendTo(ep: RemoteWriteClient, series: TimeSeries[]): Promise<EndpointResult> {
    const { metrics: m, log } = this.o;
    for (const chunk of chunkSeries(series, ep.settings.max_samples_per_send)) {
      const o = await ep.send(chunk, { signal: this.sendAbort.signal });
      if (o.ok) {
        m.samplesSent.inc({ endpoint: ep.endpoint }, o.samples);
        let newest = 0;
        for (const s of chunk) for (const x of s.samples) if (x.timestampMs > newest) newest = x.timestampMs;
        m.markSent(ep.endpoint, newest);
      } else if (o.reason === 'aborted') {
        return 'aborted';
      } else {
        // Refused for good: retrying would block every series behind this request.
        m.samplesDropped.inc({ endpoint: ep.endpoint, reason: o.reason }, o.samples);
        log.warn({ endpoint: ep.endpoint, status: o.status, reason: o.reason, samples: o.samples, attempts: o.attempts }, 'remote_write rejected samples; dropping them');
      }
    }
    return 'done';
  }

  private touchHeld(): void {
    for (const h of this.inFlightBatch) h.d.working();
    for (const h of this.filling) h.d.working();
  }

  private wakeRoomWaiters(): void {
    const w = this.roomWaiters;
    this.roomWaiters = [];
    for (const r of w) r();
  }

  private updateQueueGauge(): void {
    this.o.metrics.queueSamples.set(this.heldSamples);
  }
}
