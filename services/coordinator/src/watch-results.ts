/**
 * `WatchResults`: a live tail of probe results for operators (`probemesh watch`). Result
 * batches are published on `pm.results.<prober>`, so a plain core-NATS subscription sees
 * each one as it is published, with no consumer state on the server; it acknowledges
 * nothing and so cannot take results away from the aggregators. Filters: target (id or
 * URL), prober, failure code, failures only.
 */
import { NatsConnection } from 'nats';
import { InvalidArgumentError, Logger, SUBJECT_RESULTS } from '@probemesh/common';
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

/** Subscribes to new result batches and calls `emit` for each matching result, in order. */
export async function watchResults(nc: NatsConnection, filter: ResultFilter, emit: (r: probemesh.v1.ProbeResult) => void, log: Logger): Promise<ResultWatch> {
  validateFilter(filter);
  const subject = filter.prober ? `${SUBJECT_RESULTS}.${filter.prober}` : `${SUBJECT_RESULTS}.>`;
  const sub = nc.subscribe(subject);
  const done = (async () => {
    for await (const m of sub) {
      let batch: probemesh.v1.ResultBatch;
      try {
        batch = probemesh.v1.ResultBatch.decode(m.data);
      } catch (err) {
        log.warn({ err: (err as Error).message, subject: m.subject }, 'watch: undecodable result batch skipped');
        continue;
      }
      for (const r of batch.results) if (matches(r, filter)) emit(r as probemesh.v1.ProbeResult);
    }
  })();
  return { stop: () => sub.unsubscribe(), done };
}
