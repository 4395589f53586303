import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { AnchoredClock, silentLogger, toULong } from '@probemesh/common';
import { probemesh, prometheus } from '@probemesh/proto';
import { ResultDelivery, ResultSource } from './consumer';
import { createAggregatorMetrics, recordAttempt } from './metrics';
import { ResultPipeline } from './pipeline';
import { RemoteWriteClient, snappyUncompress } from './remote-write';

/** A delivery that records what happened to it. */
class FakeDelivery implements ResultDelivery {
  acks = 0;
  naks = 0;
  workings = 0;
  readonly redelivered = false;
  constructor(readonly batch: probemesh.v1.IResultBatch, readonly seq: number) {}
  ack() {
    this.acks++;
  }
  nak() {
    this.naks++;
  }
  working() {
    this.workings++;
  }
}

/** Hands out queued deliveries; each pull "expires" after 10 ms. */
class FakeSource implements ResultSource {
  queue: FakeDelivery[] = [];
  async *pull(max: number, signal: AbortSignal): AsyncGenerator<ResultDelivery> {
    let n = 0;
    while (n < max && this.queue.length > 0 && !signal.aborted) {
      n++;
      yield this.queue.shift()!;
    }
    await delay(10);
  }
}

function delivery(seq: number, results: number): FakeDelivery {
  const start = 1_700_000_000_000_000_000n + BigInt(seq) * 1_000_000_000n;
  return new FakeDelivery(
    {
      prober: 'p1',
      zone: 'z1',
      results: Array.from({ length: results }, (_, i) => ({ target: `https://t${i}/`, module: 'http_2xx', startUnixNano: toULong(start), success: true, durationNs: toULong(1_000_000n) })),
    },
    seq,
  );
}

/** A fetch that answers from a script and counts the samples of each request. */
function scriptedFetch(script: number[], fallback = 204) {
  const requests: number[] = [];
  const fn = (async (_url: unknown, init?: RequestInit) => {
    const req = prometheus.WriteRequest.decode(snappyUncompress(init!.body as Uint8Array));
    requests.push(req.timeseries.reduce((n, ts) => n + (ts.samples?.length ?? 0), 0));
    const status = script.shift() ?? fallback;
    return new Response(status === 204 ? null : `status ${status}`, { status });
  }) as typeof fetch;
  return { fn, requests };
}

function setup(opts: { script?: number[]; fallback?: number; maxSamples?: number; sleepMs?: number }) {
  const source = new FakeSource();
  const f = scriptedFetch(opts.script ?? [], opts.fallback);
  const clock = new AnchoredClock();
  const metrics = createAggregatorMetrics(clock, { defaultMetrics: false });
  const client: RemoteWriteClient = new RemoteWriteClient(
    { url: 'http://127.0.0.1:1/api/v1/write', timeout: 1000, headers: {}, max_samples_per_send: opts.maxSamples ?? 1000, batch_deadline: 20, min_backoff: 1, max_backoff: 5 },
    {
      fetch: f.fn,
      sleep: (ms, signal) => delay(opts.sleepMs ?? ms, undefined, { signal }).catch(() => undefined),
      onAttempt: (a) => recordAttempt(metrics, client.endpoint, a),
    },
  );
  const pipeline = new ResultPipeline({ source, endpoints: [client], job: 'probemesh', fetchBatch: 8, workingIntervalMs: 15, metrics, log: silentLogger(), clock });
  return { source, f, metrics, pipeline };
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await delay(5);
  }
}

test('batches are cut at max samples and by deadline, and acked once accepted', async () => {
  const { source, f, metrics, pipeline } = setup({ maxSamples: 10 });
  // 3 results = 6 samples (success + duration) per delivery
  const ds = [1, 2, 3, 4, 5].map((i) => delivery(i, 3));
  source.queue.push(...ds);
  pipeline.start();
  await until(() => ds.every((d) => d.acks === 1));
  await pipeline.stop(1000);
  // whole messages per batch, never above 10 samples: 6 | 6 | 6 | 6 | 6
  assert.deepEqual(f.requests, [6, 6, 6, 6, 6]);
  assert.equal((await metrics.samplesSent.get()).values[0]!.value, 30);
  assert.equal((await metrics.samplesIn.get()).values[0]!.value, 30);
  assert.equal((await metrics.resultsReceived.get()).values[0]!.value, 15);
  assert.ok(ds.every((d) => d.naks === 0));
});

test('while retrying, messages stay unacked and are kept alive with working()', async () => {
  const { source, f, metrics, pipeline } = setup({ script: [503, 503, 503], sleepMs: 20 });
  const d = delivery(1, 2);
  source.queue.push(d);
  pipeline.start();
  await until(() => f.requests.length >= 2);
  assert.equal(d.acks, 0);
  await until(() => d.acks === 1);
  await pipeline.stop(1000);
  assert.equal(f.requests.length, 4);
  assert.ok(d.workings >= 1, `working() called ${d.workings} times`);
  // 2 results = 4 samples, re-sent after each of the 3 failures; 4 requests: 503 ×3, then 204
  assert.equal((await metrics.samplesRetried.get()).values[0]!.value, 12);
  assert.deepEqual(
    (await metrics.requests.get()).values.map((v) => [v.labels.status, v.value]),
    [['503', 3], ['204', 1]],
  );
});

test('a non-retryable rejection drops (counted) and acks, so the stream moves on', async () => {
  const { source, metrics, pipeline } = setup({ script: [400] });
  const d1 = delivery(1, 1);
  const d2 = delivery(2, 1);
  source.queue.push(d1);
  pipeline.start();
  await until(() => d1.acks === 1);
  source.queue.push(d2);
  await until(() => d2.acks === 1);
  await pipeline.stop(1000);
  const dropped = (await metrics.samplesDropped.get()).values;
  assert.deepEqual(
    dropped.map((v) => [v.labels.reason, v.value]),
    [['http_400', 2]],
  );
  assert.equal((await metrics.samplesSent.get()).values[0]!.value, 2);
});

test('stop while the endpoint keeps failing abandons the batch unacked (nak) within the grace time', async () => {
  const { source, pipeline } = setup({ fallback: 503, sleepMs: 10 });
  const ds = [delivery(1, 1), delivery(2, 1)];
  source.queue.push(...ds);
  pipeline.start();
  await delay(100);
  const t0 = Date.now();
  await pipeline.stop(50);
  assert.ok(Date.now() - t0 < 1000);
  assert.deepEqual(ds.map((d) => [d.acks, d.naks]), [[0, 1], [0, 1]]);
  assert.equal(pipeline.heldSamples, 0);
});
