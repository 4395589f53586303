/**
 * The result pipeline: pull loops (one per attached source, i.e. per owned prober
 * subject) hand deliveries to the series model, whose samples go to every endpoint's
 * {@link RemoteWriteQueue}. A message is acknowledged once each endpoint has sent its
 * samples or refused them for good; until then it is held (and kept alive with
 * `working()`). Memory is bounded: pulling waits while any endpoint queue is full or
 * `maxBufferedSamples` are held, so during an outage results wait in JetStream.
 *
 * Endpoints run independently: a slow endpoint only holds the others back once its own
 * queue (`max_buffered_samples`) is full, because a message can only be acked when
 * every endpoint has it.
 *
 * Repeats: a message delivered again while its first delivery is still held here
 * (ack_wait expired under load) joins that delivery and is acked with it; one
 * delivered again after it was done with produces no samples (the series model
 * recognises its results, see series-model.ts) and is acked at once. Both count as
 * `messages_dropped_total{reason="duplicate"}`.
 */
import { Clock, describeError, Logger } from '@probemesh/common';
import { ResultDelivery, ResultSource } from './consumer';
import { AggregatorMetrics } from './metrics';
import { RemoteWriteQueue, SampleOwner } from './queue';
import { RemoteWriteClient } from './remote-write';
import { ConversionDrops } from './series';
import { ModelSample, SeriesModel } from './series-model';
import { QueuedSample } from './write-request';

/** Options of a {@link ResultPipeline}. */
export interface ResultPipelineOptions {
  /** remote_write endpoints; each message goes to all of them. */
  endpoints: readonly RemoteWriteClient[];
  /** The series model (conversion, histograms, jitter). */
  model: SeriesModel;
  /** Messages asked for per pull. */
  fetchBatch: number;
  /** Most samples held over all endpoints before pulling waits. */
  maxBufferedSamples: number;
  /** How often held messages get `working()` (keep below ack_wait). */
  workingIntervalMs: number;
  /** Metrics to update. */
  metrics: AggregatorMetrics;
  /** Logger. */
  log: Logger;
  /** Clock (monotonic batch deadlines). */
  clock: Clock;
  /** Called with every delivery before conversion (clock skew). */
  onDelivery?: (d: ResultDelivery) => void;
}

/** Tracks one held message until every endpoint is done with its samples. */
class Tracker implements SampleOwner {
  readonly remaining: number[];
  /** Later deliveries of the same message (acked or nak'ed with this one). */
  readonly repeats: ResultDelivery[] = [];
  endpointsLeft: number;
  released = false;
  constructor(readonly d: ResultDelivery, readonly source: string, readonly samples: number, endpoints: number, private readonly done: (t: Tracker) => void) {
    this.remaining = new Array<number>(endpoints).fill(samples);
    this.endpointsLeft = endpoints;
  }
  get redelivered(): boolean {
    return this.d.redelivered;
  }
  sampleDone(ep: number): void {
    if (--this.remaining[ep]! === 0 && --this.endpointsLeft === 0) this.done(this);
  }
}

interface Attached {
  abort: AbortController;
  loop: Promise<void>;
}

/** Pulls, converts, queues and acknowledges; see the file comment. */
export class ResultPipeline {
  readonly queues: RemoteWriteQueue[];
  private readonly held = new Set<Tracker>();
  /** Held trackers by stream sequence (a redelivery of a held message joins it). */
  private readonly heldBySeq = new Map<number, Tracker>();
  private readonly sources = new Map<string, Attached>();
  private readonly workingTimer: NodeJS.Timeout;
  private heldSamples = 0;
  /** Running average of samples per message (sizes pulls); 0 until the first message. */
  private avgSamples = 0;
  private roomWaiters: (() => void)[] = [];
  private stopped = false;

  constructor(private readonly o: ResultPipelineOptions) {
    if (o.endpoints.length === 0) throw new Error('ResultPipeline needs at least one endpoint');
    const nowMs = () => Number(o.clock.monoNs() / 1_000_000n);
    this.queues = o.endpoints.map((client, index) => new RemoteWriteQueue({ index, client, metrics: o.metrics, log: o.log, nowMs }));
    this.workingTimer = setInterval(() => {
      for (const t of this.held) {
        if (t.released) continue;
        t.d.working();
        for (const r of t.repeats) r.working();
      }
    }, o.workingIntervalMs);
    this.workingTimer.unref();
  }

  /** Messages held now. */
  get heldMessages(): number {
    return this.held.size;
  }

  /** Starts a pull loop on `source` under `name` (a prober subject). */
  attach(name: string, source: ResultSource): void {
    if (this.stopped || this.sources.has(name)) return;
    const abort = new AbortController();
    const loop = this.pullLoop(name, source, abort.signal);
    this.sources.set(name, { abort, loop });
  }

  /**
   * Stops pulling from `name` and naks its held messages so the prober's new owner
   * gets them at once (their samples still queued here may be written twice: harmless).
   * Returns how many were nak'ed.
   */
  async detach(name: string): Promise<number> {
    const a = this.sources.get(name);
    if (!a) return 0;
    this.sources.delete(name);
    a.abort.abort();
    this.wakeRoom();
    await a.loop;
    let n = 0;
    for (const t of this.held) {
      if (t.source !== name || t.released) continue;
      t.released = true;
      t.d.nak();
      for (const r of t.repeats) r.nak();
      n++;
    }
    this.o.metrics.messagesAcked.inc({ outcome: 'nak' }, n);
    return n;
  }

  /** Names of the attached sources. */
  attached(): string[] {
    return [...this.sources.keys()];
  }

  private async pullLoop(name: string, source: ResultSource, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.waitForRoom(signal);
      if (signal.aborted) break;
      // Ask only for this loop's share of what fits (by the average message size so
      // far): all loops together overshoot the bound by at most one message each.
      // Until a message was seen, pull one at a time: a first pull sized on a guess can
      // bring far more than fits, and a pull whose messages arrive after its client-side
      // expiry (the event loop busy with the others) loses them until ack_wait.
      const share = this.room() / Math.max(1, this.sources.size);
      const max = this.avgSamples === 0 ? 1 : Math.max(1, Math.min(this.o.fetchBatch, Math.floor(share / this.avgSamples)));
      let n = 0;
      try {
        for await (const d of source.pull(max, signal)) {
          this.add(d, name);
          // Let timers (NATS heartbeats, deadlines, working()) run between messages.
          if (++n % 16 === 0) await new Promise((r) => setImmediate(r));
        }
      } catch (err) {
        this.o.log.error({ err: describeError(err), source: name }, 'result source failed');
      }
    }
  }

  private room(): number {
    let room = this.o.maxBufferedSamples - this.heldSamples;
    for (const q of this.queues) room = Math.min(room, q.room);
    return room;
  }

  private hasRoom(): boolean {
    return this.room() > 0;
  }

  private async waitForRoom(signal: AbortSignal): Promise<void> {
    while (!this.hasRoom() && !signal.aborted && !this.stopped) {
      await new Promise<void>((r) => {
        this.roomWaiters.push(r);
        for (const q of this.queues) if (!q.hasRoom) void q.waitForRoom().then(r);
      });
    }
  }

  private wakeRoom(): void {
    const w = this.roomWaiters;
    this.roomWaiters = [];
    for (const r of w) r();
  }

  /** Converts a delivery and queues its samples to every endpoint (acks at once when it has none). */
  add(d: ResultDelivery, source = ''): void {
    const { metrics: m, model } = this.o;
    const first = d.seq > 0 ? this.heldBySeq.get(d.seq) : undefined;
    if (first && !first.released) {
      // Still held here: acked (or nak'ed) together with the first delivery.
      first.repeats.push(d);
      m.messagesDropped.inc({ reason: 'duplicate' });
      return;
    }
    this.o.onDelivery?.(d);
    const drops: ConversionDrops = { labels: {}, samples: {} };
    const samples: ModelSample[] = [];
    model.convert(d.batch, drops, samples);
    m.resultsReceived.inc(d.batch.results?.length ?? 0);
    m.samplesIn.inc(samples.length);
    this.avgSamples = this.avgSamples === 0 ? Math.max(1, samples.length) : Math.max(1, this.avgSamples * 0.9 + samples.length * 0.1);
    m.series.set(model.seriesCount);
    for (const [reason, n] of Object.entries(drops.labels)) m.labelsDropped.inc({ reason }, n ?? 0);
    for (const [reason, n] of Object.entries(drops.samples)) m.samplesDropped.inc({ endpoint: '', reason }, n ?? 0);
    if (samples.length === 0) {
      const results = d.batch.results?.length ?? 0;
      if (results > 0 && drops.samples.duplicate_result === results) m.messagesDropped.inc({ reason: 'duplicate' });
      d.ack();
      m.messagesAcked.inc({ outcome: 'ack' });
      return;
    }
    const t = new Tracker(d, source, samples.length, this.queues.length, (tr) => this.finish(tr));
    this.held.add(t);
    if (d.seq > 0) this.heldBySeq.set(d.seq, t);
    this.heldSamples += samples.length;
    m.heldMessages.set(this.held.size);
    const queued: QueuedSample<SampleOwner>[] = samples.map((x) => (x.h ? { s: x.s, v: x.v, t: x.t, stale: false, owner: t, h: x.h } : { s: x.s, v: x.v, t: x.t, stale: false, owner: t }));
    for (const q of this.queues) q.push(queued);
  }

  /** Queues stale markers (not tied to a message) to every endpoint. */
  addStale(samples: readonly ModelSample[]): void {
    const queued: QueuedSample<SampleOwner>[] = samples.map((x) => ({ s: x.s, v: NaN, t: x.t, stale: true, owner: null }));
    for (const q of this.queues) q.push(queued);
  }

  private finish(t: Tracker): void {
    if (!this.held.delete(t)) return;
    if (this.heldBySeq.get(t.d.seq) === t) this.heldBySeq.delete(t.d.seq);
    this.heldSamples -= t.samples;
    if (!t.released) {
      t.d.ack();
      for (const r of t.repeats) r.ack();
      this.o.metrics.messagesAcked.inc({ outcome: 'ack' });
    }
    this.o.metrics.heldMessages.set(this.held.size);
    this.wakeRoom();
  }

  /**
   * Stops every pull loop, flushes the queues for up to `graceMs`, then aborts sends
   * and naks whatever is still held (redelivered, not lost).
   */
  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    for (const a of this.sources.values()) a.abort.abort();
    this.wakeRoom();
    await Promise.all([...this.sources.values()].map((a) => a.loop));
    this.sources.clear();
    for (const q of this.queues) q.flush();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(this.queues.map((q) => q.idle())), new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    clearInterval(this.workingTimer);
    for (const q of this.queues) q.stop();
    for (const t of this.held) {
      if (t.released) continue;
      t.d.nak();
      for (const r of t.repeats) r.nak();
      this.o.metrics.messagesAcked.inc({ outcome: 'nak' });
    }
    this.held.clear();
    this.heldBySeq.clear();
    this.heldSamples = 0;
    this.o.metrics.heldMessages.set(0);
    for (const c of this.o.endpoints) c.close();
  }
}
