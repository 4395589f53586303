/**
 * `WatchResults`: a live tail of probe results for operators (`probemesh watch`), read
 * from the JetStream stream PM_RESULTS with an ordered consumer that starts at new
 * messages and lives as long as the gRPC stream. Filters: target (id or URL), prober,
 * failure code, failures only. It reads the stream; it never acknowledges anything, so
 * it cannot take results away from the aggregators.
 */
import { DeliverPolicy, NatsConnection } from 'nats';
import { InvalidArgumentError, Logger, STREAM_RESULTS, SUBJECT_RESULTS } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';

/** What a watcher wants to see (empty fields match everything). */
export interface ResultFilter {
  /** Target id. */
  targetId?: string;
  /** Target URL (exact). */
  url?: string;
  /** Prober id (narrows the JetStream subject). */
  prober?: string;
  /** Failure code (exact); implies failures only. */
  failureCode?: string;
  /** Only failed probes. */
  onlyFailures?: boolean;
}

const PROBER_ID_RE = /^[A-Za-z0-9_-]+$/;

/** Checks a filter, naming the bad field. */
export function validateFilter(f: ResultFilter): ResultFilter {
  if (f.prober && !PROBER_ID_RE.test(f.prober)) throw new InvalidArgumentError('prober', `invalid prober id ${JSON.stringify(f.prober)} (letters, digits, - and _)`);
  if (f.targetId && !/^[0-9a-f]{32}$/.test(f.targetId)) throw new InvalidArgumentError('target_id', 'must be 32 hex characters (see probemesh targets list --json)');
  if (f.failureCode && !/^[a-z0-9_]+$/.test(f.failureCode)) throw new InvalidArgumentError('failure_code', `invalid failure code ${JSON.stringify(f.failureCode)} (see docs/ERRORS.md)`);
  return f;
}

/** Whether `r` passes `f`. */
export function matches(r: probemesh.v1.IProbeResult, f: ResultFilter): boolean {
  if (f.targetId && r.targetId !== f.targetId) return false;
  if (f.url && r.target !== f.url) return false;
  if (f.prober && r.prober !== f.prober) return false;
  if ((f.onlyFailures || f.failureCode) && r.success) return false;
  if (f.failureCode && r.failureCode !== f.failureCode) return false;
  return true;
}

/** A running watch. */
export interface ResultWatch {
  /** Stops the consumer. */
  stop(): void;
  /** Resolves when the watch has ended (stopped or failed). */
  done: Promise<void>;
}

/**
 * Starts an ordered consumer on new results and calls `emit` for each matching result,
 * in stream order.
 */
export async function watchResults(nc: NatsConnection, filter: ResultFilter, emit: (r: probemesh.v1.ProbeResult) => void, log: Logger): Promise<ResultWatch> {
  validateFilter(filter);
  const js = nc.jetstream();
  const subject = filter.prober ? `${SUBJECT_RESULTS}.${filter.prober}` : `${SUBJECT_RESULTS}.>`;
  const consumer = await js.consumers.get(STREAM_RESULTS, { filterSubjects: [subject], deliver_policy: DeliverPolicy.New, name_prefix: 'pm_watch' });
  const messages = await consumer.consume({ max_messages: 256 });
  const done = (async () => {
    for await (const m of messages) {
      let batch: probemesh.v1.ResultBatch;
      try {
        batch = probemesh.v1.ResultBatch.decode(m.data);
      } catch (err) {
        log.warn({ err, seq: m.seq }, 'watch: undecodable result batch skipped');
        continue;
      }
      for (const r of batch.results) if (matches(r, filter)) emit(r as probemesh.v1.ProbeResult);
    }
  })();
  return { stop: () => messages.stop(), done };
}
