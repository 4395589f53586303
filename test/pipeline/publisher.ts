/**
 * A test publisher of ResultBatches: `probers` probers, each publishing one batch of
 * `perBatch` results every `everyMs` (like a prober's publisher: JetStream, msgID
 * dedup), every result a distinct (target, timestamp). Counts exactly what JetStream
 * acknowledged.
 */
import { JetStreamClient } from 'nats';
import { resultsSubject, toULong } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';

/** Options of {@link startPublisher}. */
export interface PublisherOptions {
  js: JetStreamClient;
  /** Prober ids. */
  probers: string[];
  /** Targets per prober (each result of a batch probes another target). */
  perBatch: number;
  /** Batch interval per prober, ms. */
  everyMs: number;
  /** Value of the target label `run` (to select this test's series). */
  run: string;
  /** Zone label. @default 'z1' */
  zone?: string;
}

/** A running publisher. */
export interface Publisher {
  /** Results acknowledged by JetStream so far. */
  readonly published: number;
  /** Publish errors (each retried on the next tick with a new batch). */
  readonly errors: number;
  /** Stops publishing; resolves once in-flight publishes settled. */
  stop(): Promise<void>;
}

/** One batch of `n` results of `prober` probed at `startMs`. */
export function makeBatch(prober: string, seq: number, startMs: number, n: number, run: string, zone = 'z1'): Uint8Array {
  const results = Array.from({ length: n }, (_, i) => ({
    target: `https://${prober}-t${i}.example/`,
    targetId: `${run}-${prober}-t${i}`,
    module: 'http_2xx',
    prober,
    zone,
    startUnixNano: toULong(BigInt(startMs) * 1_000_000n),
    success: true,
    durationNs: toULong(BigInt(1_000_000 + ((seq * 7919 + i * 104729) % 50_000_000))),
    httpStatusCode: 200,
    httpVersion: 1.1,
    labels: { run },
  }));
  return probemesh.v1.ResultBatch.encode({ prober, zone, seq: toULong(BigInt(seq)), sentUnixNano: toULong(BigInt(Date.now()) * 1_000_000n), results }).finish();
}

/** Starts publishing; see the file comment. */
export function startPublisher(o: PublisherOptions): Publisher {
  let published = 0;
  let errors = 0;
  let seq = 0;
  let lastMs = 0;
  const inflight = new Set<Promise<void>>();
  const tick = () => {
    // Strictly increasing probe timestamps, one ms apart at least.
    const startMs = Math.max(Date.now(), lastMs + 1);
    lastMs = startMs;
    seq++;
    for (const p of o.probers) {
      const s = seq;
      const pr = o.js
        .publish(resultsSubject(p), makeBatch(p, s, startMs, o.perBatch, o.run, o.zone), { msgID: `${o.run}-${p}-${s}` })
        .then(
          () => void (published += o.perBatch),
          () => void errors++,
        );
      inflight.add(pr);
      void pr.finally(() => inflight.delete(pr));
    }
  };
  const timer = setInterval(tick, o.everyMs);
  return {
    get published() {
      return published;
    },
    get errors() {
      return errors;
    },
    async stop() {
      clearInterval(timer);
      await Promise.all([...inflight]);
    },
  };
}

/** Reads one metric's value (summed over label sets matching `labelRe`) from a /metrics text. */
export function metricValue(text: string, name: string, labelRe = /.*/): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name && labelRe.test(m[2] ?? '')) sum += Number(m[3]);
  }
  return sum;
}
