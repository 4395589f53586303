/**
 * Collects probe results into `ResultBatch`es and publishes them to JetStream
 * (`pm.results.<prober>`), one batch in flight at a time so batches land in order.
 *
 * A batch is sealed (gets its seq and epoch) when `maxBatch` results are waiting or
 * `maxDelayMs` after its first result. A failed publish (NATS down, no ack) keeps the
 * batch and retries it with exponential backoff under the SAME msgID
 * (`<prober>-<bootid>-<seq>`), so a publish that did land but lost its ack is
 * deduplicated by the stream. Buffered results are bounded: past `maxBufferedResults`
 * the oldest are dropped, counted and logged.
 */
import { Clock, Logger, resultsSubject, toULong } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import { systemTimers, TimerHandle, Timers } from './timers';

/** Publishes one encoded batch and resolves once JetStream acknowledged it. */
export type PublishFn = (subject: string, data: Uint8Array, msgID: string) => Promise<void>;

/** Hooks for metrics. */
export interface PublisherObserver {
  /** `count` results were acknowledged. */
  published?(count: number): void;
  /** A publish attempt failed (it will be retried). */
  publishError?(): void;
  /** `count` results were dropped. */
  dropped?(count: number): void;
  /** Results buffered now. */
  buffered?(count: number): void;
}

/** Publisher settings and dependencies. */
export interface PublisherOptions {
  /** Prober id (batch field, subject and msgID). */
  prober: string;
  /** Prober zone (batch field). */
  zone: string;
  /** Unique id of this prober process start (msgID part). */
  bootId: string;
  /** Results per batch at most. @default 500 */
  maxBatch: number;
  /** Longest a result waits before its batch is sealed, ms. @default 200 */
  maxDelayMs: number;
  /** Most results held (waiting or unacknowledged) before the oldest are dropped. */
  maxBufferedResults: number;
  /** The JetStream publish. */
  publish: PublishFn;
  /** The assignment epoch held now (stamped on each batch when sealed). */
  epoch: () => bigint;
  /** Time source (batch sentUnixNano). */
  clock: Clock;
  /** Timer source. @default Node's timers */
  timers?: Timers;
  /** Logger. */
  log: Logger;
  /** Metric hooks. */
  observer?: PublisherObserver;
  /** First retry delay, ms. @default 100 */
  retryInitialMs?: number;
  /** Largest retry delay, ms. @default 5000 */
  retryMaxMs?: number;
}

interface SealedBatch {
  seq: bigint;
  epoch: bigint;
  results: probemesh.v1.IProbeResult[];
}

/** The result publisher of one prober. */
export class ResultPublisher {
  private pending: probemesh.v1.IProbeResult[] = [];
  private readonly outbox: SealedBatch[] = [];
  private buffered = 0;
  private seq = 0n;
  private sending = false;
  private attempts = 0;
  private flushTimer: TimerHandle | undefined;
  private retryTimer: TimerHandle | undefined;
  private closed = false;
  private emptyWaiters: (() => void)[] = [];
  private dropLog = { count: 0, lastMs: -Infinity };
  private readonly timers: Timers;

  constructor(private readonly opts: PublisherOptions) {
    this.timers = opts.timers ?? systemTimers;
  }

  /** Results held now (waiting to be sealed or to be acknowledged). */
  get bufferedResults(): number {
    return this.buffered;
  }

  /** Sequence number of the last sealed batch. */
  get lastSeq(): bigint {
    return this.seq;
  }

  /** Queues one result. */
  add(result: probemesh.v1.IProbeResult): void {
    if (this.closed) {
      this.drop(1, 'publisher closed');
      return;
    }
    this.pending.push(result);
    this.setBuffered(this.buffered + 1);
    this.enforceBound();
    if (this.pending.length >= this.opts.maxBatch) this.seal();
    else if (this.flushTimer === undefined && this.pending.length > 0) {
      this.flushTimer = this.timers.set(() => {
        this.flushTimer = undefined;
        this.seal();
      }, this.opts.maxDelayMs);
    }
  }

  /**
   * Seals what is waiting and waits up to `timeoutMs` for every batch to be
   * acknowledged; what is still unacknowledged then is dropped (counted, logged).
   * No timer is left behind.
   */
  async close(timeoutMs: number): Promise<void> {
    this.closed = true;
    this.seal();
    if (this.buffered > 0) {
      await new Promise<void>((resolve) => {
        const t = this.timers.set(() => resolve(), timeoutMs);
        this.emptyWaiters.push(() => {
          this.timers.clear(t);
          resolve();
        });
      });
    }
    if (this.retryTimer !== undefined) this.timers.clear(this.retryTimer);
    this.retryTimer = undefined;
    if (this.buffered > 0) {
      const n = this.buffered;
      this.outbox.length = 0;
      this.pending = [];
      this.setBuffered(0);
      this.opts.observer?.dropped?.(n);
      this.opts.log.error({ dropped: n }, 'results not acknowledged by JetStream before stop; dropped');
    }
  }

  private seal(): void {
    if (this.flushTimer !== undefined) this.timers.clear(this.flushTimer);
    this.flushTimer = undefined;
    while (this.pending.length > 0) {
      const results = this.pending.splice(0, this.opts.maxBatch);
      this.seq += 1n;
      this.outbox.push({ seq: this.seq, epoch: this.opts.epoch(), results });
    }
    this.pump();
  }

  private pump(): void {
    if (this.sending || this.retryTimer !== undefined) return;
    const batch = this.outbox[0];
    if (!batch) return;
    this.sending = true;
    const msgID = `${this.opts.prober}-${this.opts.bootId}-${batch.seq}`;
    const data = probemesh.v1.ResultBatch.encode({
      prober: this.opts.prober,
      zone: this.opts.zone,
      epoch: toULong(batch.epoch),
      seq: toULong(batch.seq),
      sentUnixNano: toULong(this.opts.clock.nowNs()),
      results: batch.results,
    }).finish();
    let p: Promise<void>;
    try {
      p = this.opts.publish(resultsSubject(this.opts.prober), data, msgID);
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      () => {
        this.sending = false;
        this.attempts = 0;
        // The batch may have been dropped from the outbox meanwhile (close timeout).
        if (this.outbox[0] === batch) {
          this.outbox.shift();
          this.setBuffered(this.buffered - batch.results.length);
          this.opts.observer?.published?.(batch.results.length);
        }
        this.pump();
      },
      (err) => {
        this.sending = false;
        this.attempts++;
        this.opts.observer?.publishError?.();
        const delay = Math.min(this.opts.retryMaxMs ?? 5_000, (this.opts.retryInitialMs ?? 100) * 2 ** Math.min(this.attempts - 1, 20));
        if (this.attempts === 1 || this.attempts % 10 === 0) this.opts.log.warn({ err: (err as Error)?.message ?? String(err), seq: String(batch.seq), attempts: this.attempts, retryInMs: delay }, 'publishing result batch failed; retrying');
        if (this.closed && this.buffered === 0) return;
        this.retryTimer = this.timers.set(() => {
          this.retryTimer = undefined;
          this.pump();
        }, delay);
      },
    );
  }

  private enforceBound(): void {
    let excess = this.buffered - this.opts.maxBufferedResults;
    while (excess > 0) {
      // Never drop the batch in flight: its ack may be on the way.
      const i = this.sending ? 1 : 0;
      const victim = this.outbox[i];
      if (victim) {
        this.outbox.splice(i, 1);
        this.drop(victim.results.length, 'publish buffer full');
        excess -= victim.results.length;
      } else {
        const n = Math.min(excess, this.pending.length);
        if (n === 0) break;
        this.pending.splice(0, n);
        this.drop(n, 'publish buffer full');
        excess -= n;
      }
    }
  }

  private drop(count: number, reason: string): void {
    if (reason !== 'publisher closed') this.setBuffered(this.buffered - count);
    this.opts.observer?.dropped?.(count);
    this.dropLog.count += count;
    const nowMs = this.opts.clock.nowMs();
    if (nowMs - this.dropLog.lastMs >= 10_000) {
      this.opts.log.error({ dropped: this.dropLog.count, reason, buffered: this.buffered, max: this.opts.maxBufferedResults }, 'dropping probe results');
      this.dropLog = { count: 0, lastMs: nowMs };
    }
  }

  private setBuffered(n: number): void {
    this.buffered = n;
    this.opts.observer?.buffered?.(n);
    if (n === 0 && this.emptyWaiters.length > 0) {
      const w = this.emptyWaiters;
      this.emptyWaiters = [];
      for (const f of w) f();
    }
  }
}
