/**
 * The results consumers: one durable pull consumer per prober subject
 * (`pm.results.<prober>`, named `<durable>-<hash of prober>`), shared by all
 * aggregators but pulled by one at a time (see ownership.ts), turned into async
 * iterables of decoded {@link ResultDelivery}s. Undecodable messages are terminated
 * (never redelivered) so they cannot block the stream.
 */
import { createHash } from 'node:crypto';
import { AckPolicy, Consumer, DeliverPolicy, JetStreamClient, JetStreamManager, JsMsg, nanos } from 'nats';
import { probemesh } from '@probemesh/proto';
import { describeError, Logger, STREAM_RESULTS, SUBJECT_RESULTS } from '@probemesh/common';
import { realSleep } from './remote-write';

/** One decoded result batch, with the acknowledgement handles of its message. */
export interface ResultDelivery {
  /** The decoded batch. */
  readonly batch: probemesh.v1.IResultBatch;
  /** Stream sequence of the message (logs). */
  readonly seq: number;
  /** True when JetStream delivered it before (an earlier holder did not ack). */
  readonly redelivered: boolean;
  /** When the NATS server stored the message (ns since epoch, server clock); 0n when unknown. */
  readonly arrivalNs: bigint;
  /** Acknowledges: the batch is done with (sent or given up on). */
  ack(): void;
  /** Negative ack: redeliver now (to any aggregator). */
  nak(): void;
  /** Resets the ack_wait timer: we still legitimately hold it. */
  working(): void;
}

/** A source of result deliveries in bounded pulls (the pipeline asks only when it has room). */
export interface ResultSource {
  /**
   * Pulls up to `max` deliveries; the iterable ends when `max` arrived or the pull
   * expired (a short, fixed time). `signal` only stops waiting between pulls.
   */
  pull(max: number, signal: AbortSignal): AsyncIterable<ResultDelivery>;
}

/** Durable consumer settings (`consumer:` in the config, durations in ms). */
export interface ConsumerSettings {
  /** Durable name shared by all aggregators. */
  durable: string;
  /** Most delivered-unacked messages (over all aggregators). */
  max_ack_pending: number;
  /** Redelivery delay of an unacked message, ms. */
  ack_wait: number;
}

/** Name of the durable consumer of `prober`'s subject: `<durable>-<first 16 hex of sha256(prober)>`. */
export function proberConsumerName(durable: string, prober: string): string {
  return `${durable}-${createHash('sha256').update(prober).digest('hex').slice(0, 16)}`;
}

/** Options of {@link ResultsConsumer}. */
export interface ResultsConsumerOptions {
  /** How long one pull waits for messages, ms (>= 1000). @default 2000 */
  pullExpiresMs?: number;
  /** Called for every message dropped before decoding succeeded. */
  onDropped?: (reason: 'decode') => void;
  /** Subject the consumer filters on. @default `pm.results.>` */
  filterSubject?: string;
  /** Consumer name. @default settings.durable */
  name?: string;
}

/** A durable pull consumer on `PM_RESULTS`. */
export class ResultsConsumer implements ResultSource {
  private consumer?: Consumer;

  private constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly settings: ConsumerSettings,
    private readonly log: Logger,
    private readonly opts: ResultsConsumerOptions,
  ) {}

  /** Creates (or updates) the durable consumer and binds to it. */
  static async open(js: JetStreamClient, jsm: JetStreamManager, settings: ConsumerSettings, log: Logger, opts: ResultsConsumerOptions = {}): Promise<ResultsConsumer> {
    const c = new ResultsConsumer(js, jsm, settings, log, opts);
    await c.ensure();
    return c;
  }

  /** The consumer's name. */
  get name(): string {
    return this.opts.name ?? this.settings.durable;
  }

  /** Creates or updates the durable consumer, then looks it up. */
  async ensure(): Promise<void> {
    const cfg = {
      durable_name: this.name,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      max_ack_pending: this.settings.max_ack_pending,
      ack_wait: nanos(this.settings.ack_wait),
      filter_subject: this.opts.filterSubject ?? `${SUBJECT_RESULTS}.>`,
    };
    try {
      await this.jsm.consumers.add(STREAM_RESULTS, cfg);
    } catch (err) {
      // Another aggregator created it with other limits: adopt ours (last writer wins).
      if (!/already (in use|exists)|exists/i.test(describeError(err))) throw err;
      await this.jsm.consumers.update(STREAM_RESULTS, this.name, { max_ack_pending: cfg.max_ack_pending, ack_wait: cfg.ack_wait });
    }
    this.consumer = await this.js.consumers.get(STREAM_RESULTS, this.name);
  }

  /** Deletes the consumer (its prober's subject has no messages left in the stream). */
  async delete(): Promise<void> {
    await this.jsm.consumers.delete(STREAM_RESULTS, this.name);
  }

  /** JetStream's counts for the consumer: messages not yet delivered and delivered-unacked. */
  async pending(): Promise<{ numPending: number; numAckPending: number }> {
    const info = await this.jsm.consumers.info(STREAM_RESULTS, this.name);
    return { numPending: info.num_pending, numAckPending: info.num_ack_pending };
  }

  /** Decodes a message, or terminates it and returns undefined. */
  decode(m: JsMsg): ResultDelivery | undefined {
    let batch: probemesh.v1.ResultBatch;
    try {
      batch = probemesh.v1.ResultBatch.decode(m.data);
    } catch (err) {
      this.log.error({ err: describeError(err), subject: m.subject, seq: m.seq, bytes: m.data.length }, 'undecodable result batch dropped');
      this.opts.onDropped?.('decode');
      m.term();
      return undefined;
    }
    let arrivalNs = 0n;
    try {
      arrivalNs = BigInt(m.info.timestampNanos);
    } catch {
      // no reply-subject metadata (not a JetStream delivery)
    }
    return { batch, seq: m.seq, redelivered: m.redelivered, arrivalNs, ack: () => m.ack(), nak: () => m.nak(), working: () => m.working() };
  }

  /** One fetch of up to `max` messages (see {@link ResultSource.pull}); errors are logged, then the consumer is re-checked. */
  async *pull(max: number, signal: AbortSignal): AsyncGenerator<ResultDelivery> {
    if (signal.aborted) return;
    try {
      if (!this.consumer) await this.ensure();
      // Let each pull end by itself (short expiry) instead of stopping it: a stopped
      // pull leaves a server-side request that would swallow messages until ack_wait.
      const msgs = await this.consumer!.fetch({ max_messages: max, expires: this.opts.pullExpiresMs ?? 2000 });
      for await (const m of msgs) {
        const d = this.decode(m);
        if (d) yield d;
      }
    } catch (err) {
      this.log.warn({ err: describeError(err) }, 'pulling results failed; re-checking the consumer');
      this.consumer = undefined;
      await realSleep(1000, signal);
    }
  }
}
