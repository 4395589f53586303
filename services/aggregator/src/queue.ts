/**
 * One remote_write endpoint's queue: samples are spread over `shards` FIFO shards by
 * series hash, so all samples of a series go through one shard, one request at a time,
 * in the order they were queued (Prometheus refuses a series going back in time).
 * Each shard cuts a request at `max_samples_per_send` or after `batch_deadline`.
 *
 * A request refused for good (4xx, or Prometheus' permanent 500s) is never retried
 * as is. It is split in halves and each half resent, down to single samples:
 * Prometheus rolls back the whole request on the first bad sample, so this is how one
 * bad series never takes the others down with it. Only the samples refused on their
 * own are dropped (counted by reason; a refused out-of-order/duplicate sample of a
 * redelivered message is counted as `duplicate`: it was written before by the
 * aggregator that did not ack it).
 *
 * The cost is bounded. On an out-of-order/duplicate refusal the derived samples
 * (histogram, jitter) of redelivered messages — the ones a redelivery rewrites with
 * other values, e.g. on the next owner of a prober after a hand-off — are dropped as
 * `duplicate` first and the rest resent once, without splitting. And one request
 * gets at most {@link MAX_SPLITS} splits: a part still refused after that is dropped
 * whole (`duplicate` for samples of redelivered messages, `split_limit` for others).
 *
 * Native histogram samples: a receiver without native histograms (Prometheus 2.42
 * without the feature flag: 500 "native histograms are disabled") refuses the whole
 * request; its histogram samples are dropped (counted) and the rest resent at once.
 * In `native_histograms: auto` the endpoint then stops sending them (logged once);
 * with `never` (or after that) they are skipped — done with, neither sent nor dropped.
 */
import { AggregatorMetrics } from './metrics';
import { RemoteWriteClient, snappyCompress } from './remote-write';
import { encodeGrouped, groupedCount, groupSamples, QueuedSample, SeriesRef } from './write-request';
import { Logger } from '@probemesh/common';

/** What a queue reports back about a sample's owner (a delivery tracker). */
export interface SampleOwner {
  /** True when the owning message was delivered before (another holder did not ack). */
  readonly redelivered: boolean;
  /** One of the owner's samples is done with on `endpoint` (sent or dropped for good). */
  sampleDone(endpoint: number): void;
}

/** Options of a {@link RemoteWriteQueue}. */
export interface RemoteWriteQueueOptions {
  /** Index of this endpoint (reported to owners). */
  index: number;
  /** The endpoint's client. */
  client: RemoteWriteClient;
  /** Metrics. */
  metrics: AggregatorMetrics;
  /** Logger. */
  log: Logger;
  /** Monotonic ms clock. */
  nowMs: () => number;
}

type Sample = QueuedSample<SampleOwner>;

interface Shard {
  queue: Sample[];
  head: number;
  inFlight: boolean;
  timer?: NodeJS.Timeout;
  firstQueuedMs: number;
}

const DUPLICATE_REASONS = new Set(['out_of_order', 'duplicate_timestamp']);
/** Rejections caused by some samples of a request (worth splitting it); others (401, 404, ...) hit every request alike. */
const BISECT_REASONS = new Set(['out_of_order', 'too_old', 'duplicate_timestamp', 'native_histograms_disabled', 'empty_labelset', 'http_400', 'http_413', 'http_422']);

/** Most splits of one request (and its parts) after permanent refusals; see the file comment. */
export const MAX_SPLITS = 32;

/** Sharded, ordered sending queue of one endpoint; see the file comment. */
export class RemoteWriteQueue {
  private readonly shards: Shard[];
  private buffered = 0;
  private readonly abort = new AbortController();
  private idleWaiters: (() => void)[] = [];
  private roomWaiters: (() => void)[] = [];
  private flushing = false;
  /** Native histogram samples are skipped (mode `never`, or `auto` after a refusal). */
  private nativeOff: boolean;
  /** Newest timestamp queued per native histogram series (Prometheus 2.42 has no out-of-order window for them). */
  private readonly nativeNewest = new WeakMap<SeriesRef, number>();
  readonly endpoint: string;

  constructor(private readonly o: RemoteWriteQueueOptions) {
    this.endpoint = o.client.endpoint;
    this.nativeOff = o.client.settings.native_histograms === 'never';
    o.metrics.nativeHistograms.set({ endpoint: this.endpoint }, this.nativeOff ? 0 : 1);
    this.shards = Array.from({ length: o.client.settings.shards }, () => ({ queue: [], head: 0, inFlight: false, firstQueuedMs: 0 }));
  }

  /** True while native histogram samples are sent to this endpoint. */
  get sendsNativeHistograms(): boolean {
    return !this.nativeOff;
  }

  /** Samples queued or in flight. */
  get size(): number {
    return this.buffered;
  }

  /** Samples that still fit under `max_buffered_samples` (negative when over). */
  get room(): number {
    return this.o.client.settings.max_buffered_samples - this.buffered;
  }

  /** True while more samples fit under `max_buffered_samples`. */
  get hasRoom(): boolean {
    return this.buffered < this.o.client.settings.max_buffered_samples;
  }

  /** Resolves when there is room (or the queue is stopped). */
  waitForRoom(): Promise<void> {
    if (this.hasRoom || this.abort.signal.aborted) return Promise.resolve();
    return new Promise((r) => this.roomWaiters.push(r));
  }

  /** Queues samples (each goes to its series' shard). */
  push(samples: readonly Sample[]): void {
    const n = this.shards.length;
    const touched = new Set<Shard>();
    let skipped = 0;
    let behind: Sample[] | undefined;
    for (const x of samples) {
      if (x.s.native && this.nativeOff) {
        skipped++;
        continue;
      }
      if (x.s.native) {
        // A histogram sample at or before one already queued for its series (a redelivered
        // message) would be refused as out of order, costing a bisection per sample.
        if (x.t <= (this.nativeNewest.get(x.s) ?? -Infinity)) {
          (behind ??= []).push(x);
          continue;
        }
        this.nativeNewest.set(x.s, x.t);
      }
      const sh = this.shards[x.s.hash % n]!;
      if (sh.queue.length === sh.head) sh.firstQueuedMs = this.o.nowMs();
      sh.queue.push(x);
      touched.add(sh);
    }
    this.buffered += samples.length - skipped - (behind?.length ?? 0);
    this.o.metrics.queueSamples.set({ endpoint: this.endpoint }, this.buffered);
    for (const sh of touched) this.maybeSend(sh);
    // Done with the skipped ones only now: an owner may finish (and ack) on the last of them.
    if (skipped > 0) for (const x of samples) if (x.s.native) x.owner?.sampleDone(this.o.index);
    if (behind) {
      const dup = behind.filter((x) => x.owner?.redelivered);
      if (dup.length > 0) this.drop(dup, 'duplicate');
      if (dup.length < behind.length) this.drop(behind.filter((x) => !x.owner?.redelivered), 'out_of_order');
    }
  }

  /** Sends everything queued now, without waiting for deadlines. */
  flush(): void {
    this.flushing = true;
    for (const sh of this.shards) this.maybeSend(sh);
  }

  /** Resolves when nothing is queued or in flight. */
  idle(): Promise<void> {
    if (this.buffered === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Aborts sends in progress (their samples stay undone, so their messages get nak'ed) and drops the queue. */
  stop(): void {
    this.abort.abort();
    for (const sh of this.shards) {
      clearTimeout(sh.timer);
      sh.queue = [];
      sh.head = 0;
    }
    this.buffered = 0;
    this.wake();
  }

  private maybeSend(sh: Shard): void {
    if (sh.inFlight || this.abort.signal.aborted) return;
    const queued = sh.queue.length - sh.head;
    if (queued === 0) return;
    const { max_samples_per_send: max, batch_deadline: deadline } = this.o.client.settings;
    const waited = this.o.nowMs() - sh.firstQueuedMs;
    if (queued < max && waited < deadline && !this.flushing) {
      sh.timer ??= setTimeout(() => {
        sh.timer = undefined;
        this.maybeSend(sh);
      }, deadline - waited + 1);
      return;
    }
    clearTimeout(sh.timer);
    sh.timer = undefined;
    const take = Math.min(max, queued);
    const batch = sh.queue.slice(sh.head, sh.head + take);
    sh.head += take;
    if (sh.head > 4096 && sh.head * 2 > sh.queue.length) {
      sh.queue = sh.queue.slice(sh.head);
      sh.head = 0;
    }
    sh.firstQueuedMs = this.o.nowMs();
    sh.inFlight = true;
    void this.sendSamples(batch)
      .catch((err: unknown) => this.o.log.error({ err: String(err), endpoint: this.endpoint }, 'send failed unexpectedly'))
      .finally(() => {
        sh.inFlight = false;
        if (this.abort.signal.aborted) return;
        this.buffered -= batch.length;
        this.o.metrics.queueSamples.set({ endpoint: this.endpoint }, this.buffered);
        this.wake();
        this.maybeSend(sh);
      });
  }

  private wake(): void {
    if (this.hasRoom || this.abort.signal.aborted) {
      const w = this.roomWaiters;
      this.roomWaiters = [];
      for (const r of w) r();
    }
    if (this.buffered === 0) {
      this.flushing = false;
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const r of w) r();
    }
  }

  /** Sends samples as one request; on a permanent rejection, bisects. Resolves when every sample is done (or aborted). */
  private async sendSamples(samples: Sample[], budget = { splits: MAX_SPLITS }): Promise<void> {
    const { metrics: m, client, index } = this.o;
    if (this.nativeOff && samples.some((x) => x.s.native)) {
      // Queued before native histograms were turned off for this endpoint.
      for (const x of samples) if (x.s.native) x.owner?.sampleDone(index);
      samples = samples.filter((x) => !x.s.native);
      if (samples.length === 0) return;
    }
    const { groups, duplicates } = groupSamples(samples);
    if (duplicates.length > 0) this.drop(duplicates, 'duplicate_in_request');
    const n = groupedCount(groups);
    const body = snappyCompress(encodeGrouped(groups));
    const o = await client.sendBody(body, n, { signal: this.abort.signal });
    if (o.ok) {
      m.samplesSent.inc({ endpoint: this.endpoint }, n);
      let newest = 0;
      for (const g of groups.values()) {
        for (const x of g) {
          if (x.t > newest) newest = x.t;
          x.owner?.sampleDone(index);
        }
      }
      m.markSent(this.endpoint, newest);
      return;
    }
    if (o.reason === 'aborted') return;
    const flat: Sample[] = [];
    for (const g of groups.values()) for (const x of g) flat.push(x);
    if (o.reason === 'native_histograms_disabled') {
      const rest = flat.filter((x) => !x.s.native);
      if (rest.length < flat.length) {
        this.drop(flat.filter((x) => x.s.native), o.reason);
        if (client.settings.native_histograms === 'auto' && !this.nativeOff) {
          this.nativeOff = true;
          m.nativeHistograms.set({ endpoint: this.endpoint }, 0);
          this.o.log.warn({ endpoint: this.endpoint, status: o.status, detail: o.detail }, 'remote_write receiver refuses native histograms; not sending them to this endpoint any more (native_histograms: auto; classic histograms continue)');
        }
        if (rest.length > 0) await this.sendSamples(rest, budget);
        return;
      }
    }
    if (flat.length > 1 && DUPLICATE_REASONS.has(o.reason)) {
      const rewritten = (x: Sample) => x.s.derived && x.owner?.redelivered === true;
      const repeat = flat.filter(rewritten);
      if (repeat.length > 0) {
        this.drop(repeat, 'duplicate');
        const rest = flat.filter((x) => !rewritten(x));
        if (rest.length > 0) await this.sendSamples(rest, budget);
        return;
      }
    }
    if (flat.length === 1 || !BISECT_REASONS.has(o.reason)) {
      const x = flat[0]!;
      const reason = flat.length === 1 && DUPLICATE_REASONS.has(o.reason) && x.owner?.redelivered ? 'duplicate' : o.reason;
      this.drop(flat, reason);
      if (reason !== 'duplicate') this.o.log.warn({ endpoint: this.endpoint, status: o.status, reason, samples: flat.length, series: x.s.key.replace(/\xff/g, '=').replace(/\xfe/g, ','), ts: x.t, detail: o.detail }, 'remote_write refused samples for good; dropped');
      return;
    }
    if (budget.splits <= 0) {
      const dup = DUPLICATE_REASONS.has(o.reason) ? flat.filter((x) => x.owner?.redelivered) : [];
      if (dup.length > 0) this.drop(dup, 'duplicate');
      if (dup.length < flat.length) {
        const others = dup.length > 0 ? flat.filter((x) => !x.owner?.redelivered) : flat;
        this.drop(others, 'split_limit');
        const x = others[0]!;
        this.o.log.warn({ endpoint: this.endpoint, status: o.status, reason: o.reason, samples: others.length, series: x.s.key.replace(/\xff/g, '=').replace(/\xfe/g, ','), ts: x.t, detail: o.detail }, `remote_write refused part of a request for good after ${MAX_SPLITS} splits; dropped that part`);
      }
      return;
    }
    budget.splits--;
    m.bisections.inc({ endpoint: this.endpoint, reason: o.reason });
    // Keep each series' samples in order: split the flat, series-grouped list in two.
    const mid = Math.ceil(flat.length / 2);
    await this.sendSamples(flat.slice(0, mid), budget);
    await this.sendSamples(flat.slice(mid), budget);
  }

  private drop(samples: readonly Sample[], reason: string): void {
    this.o.metrics.samplesDropped.inc({ endpoint: this.endpoint, reason }, samples.length);
    for (const x of samples) x.owner?.sampleDone(this.o.index);
  }
}
