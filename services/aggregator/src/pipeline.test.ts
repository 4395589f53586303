import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { AnchoredClock, Logger, silentLogger, toNumber, toULong } from '@probemesh/common';
import { probemesh, prometheus } from '@probemesh/proto';
import { remoteWriteSettings, RemoteWriteSettings } from './config';
import { ResultDelivery, ResultSource } from './consumer';
import { AggregatorMetrics, createAggregatorMetrics, recordAttempt } from './metrics';
import { ResultPipeline } from './pipeline';
import { MAX_SPLITS } from './queue';
import { RemoteWriteClient, snappyUncompress } from './remote-write';
import { SeriesModel } from './series-model';

/** A delivery that records what happened to it. */
class FakeDelivery implements ResultDelivery {
  acks = 0;
  naks = 0;
  workings = 0;
  readonly arrivalNs = 0n;
  constructor(readonly batch: probemesh.v1.IResultBatch, readonly seq: number, readonly redelivered = false) {}
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

/** Hands out queued deliveries; each pull "expires" after 5 ms. */
class FakeSource implements ResultSource {
  queue: FakeDelivery[] = [];
  pulled = 0;
  async *pull(max: number, signal: AbortSignal): AsyncGenerator<ResultDelivery> {
    let n = 0;
    while (n < max && this.queue.length > 0 && !signal.aborted) {
      n++;
      this.pulled++;
      yield this.queue.shift()!;
    }
    await delay(5);
  }
}

const T0 = 1_700_000_000_000;

/** `targets` results of prober p1, probe start T0 + seq s. */
function delivery(seq: number, targets: number, opts: { redelivered?: boolean; bad?: boolean } = {}): FakeDelivery {
  const startNs = BigInt(T0 + seq * 1000) * 1_000_000n;
  const results = Array.from({ length: targets }, (_, i) => ({ target: `https://t${i}/`, targetId: `id${i}`, module: 'http_2xx', startUnixNano: toULong(startNs), success: true, durationNs: toULong(1_000_000n) }));
  if (opts.bad) results.push({ target: 'https://bad/', targetId: 'idbad', module: 'http_2xx', startUnixNano: toULong(startNs), success: true, durationNs: toULong(1_000_000n) });
  return new FakeDelivery({ prober: 'p1', zone: 'z1', results }, seq, opts.redelivered);
}

/** A receiver: decodes every request; `answer` decides the status per request. */
function receiver(answer: (req: prometheus.WriteRequest) => { status: number; body?: string }) {
  const requests: prometheus.WriteRequest[] = [];
  const accepted: { name: string; instance: string; ts: number; value: number }[] = [];
  const fn = (async (_url: unknown, init?: RequestInit) => {
    const req = prometheus.WriteRequest.decode(snappyUncompress(init!.body as Uint8Array));
    requests.push(req);
    const a = answer(req);
    if (a.status < 300) {
      for (const ts of req.timeseries) {
        const l = Object.fromEntries((ts.labels ?? []).map((x) => [x.name, x.value]));
        for (const s of ts.samples ?? []) accepted.push({ name: l.__name__!, instance: l.instance!, ts: toNumber(s.timestamp), value: s.value ?? 0 });
      }
    }
    return new Response(a.status === 204 ? null : a.body ?? `status ${a.status}`, { status: a.status });
  }) as typeof fetch;
  return { fn, requests, accepted };
}

function client(metrics: AggregatorMetrics, fn: typeof fetch, over: Partial<RemoteWriteSettings> = {}): RemoteWriteClient {
  const c: RemoteWriteClient = new RemoteWriteClient(remoteWriteSettings('http://127.0.0.1:1/api/v1/write', { batch_deadline: 10, min_backoff: 1, max_backoff: 5, max_buffered_samples: 100_000, ...over }), {
    fetch: fn,
    sleep: (ms, signal) => delay(Math.min(ms, 10), undefined, { signal }).catch(() => undefined),
    onAttempt: (a) => recordAttempt(metrics, c.endpoint, a),
  });
  return c;
}

function setup(fns: (typeof fetch)[], over: Partial<RemoteWriteSettings>[] = [], maxBuffered = 1_000_000, extra: { native?: boolean; log?: Logger } = {}) {
  const source = new FakeSource();
  const clock = new AnchoredClock();
  const metrics = createAggregatorMetrics(clock, { defaultMetrics: false });
  const model = new SeriesModel({ job: 'probemesh', buckets: [0.1], jitterWindow: 5, maxSeries: 10_000, native: extra.native ? { schema: 3, zeroThreshold: 0, maxBuckets: 160 } : null });
  const endpoints = fns.map((fn, i) => client(metrics, fn, { name: `ep${i}`, ...over[i] }));
  const pipeline = new ResultPipeline({ endpoints, model, fetchBatch: 8, maxBufferedSamples: maxBuffered, workingIntervalMs: 15, metrics, log: extra.log ?? silentLogger(), clock });
  pipeline.attach('p1', source);
  return { source, metrics, pipeline, model };
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await delay(5);
  }
}

async function counter(c: { get(): Promise<{ values: { labels: Partial<Record<string, string | number>>; value: number }[] }> }): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await c.get()).values) out[Object.values(v.labels).join('/')] = v.value;
  return out;
}

test('every sample is sent, each series in timestamp order across shards and requests, then acked', async () => {
  const r = receiver(() => ({ status: 204 }));
  const { source, metrics, pipeline } = setup([r.fn], [{ shards: 3, max_samples_per_send: 7 }]);
  // 2 targets per message: success, duration, bucket{le=0.1}, bucket{le=+Inf}, sum, count (+ jitter from the 2nd message)
  const ds = Array.from({ length: 20 }, (_, i) => delivery(i + 1, 2));
  source.queue.push(...ds);
  await until(() => ds.every((d) => d.acks === 1));
  await pipeline.stop(1000);
  assert.equal(r.accepted.length, 20 * 2 * 6 + 19 * 2);
  assert.ok(r.requests.every((q) => q.timeseries.reduce((n, ts) => n + (ts.samples?.length ?? 0), 0) <= 7));
  const bySeries = new Map<string, number[]>();
  for (const a of r.accepted) bySeries.set(`${a.name}|${a.instance}|${a.value === a.value ? '' : ''}`, [...(bySeries.get(`${a.name}|${a.instance}`) ?? []), a.ts]);
  for (const [k, ts] of bySeries) assert.deepEqual(ts, [...ts].sort((a, b) => a - b), `series ${k} out of order`);
  // cumulative histogram counters per series
  const count = r.accepted.filter((a) => a.name === 'probemesh_probe_duration_seconds_count' && a.instance === 'https://t0/').map((a) => a.value);
  assert.deepEqual(count, Array.from({ length: 20 }, (_, i) => i + 1));
  assert.deepEqual(await counter(metrics.samplesSent), { ep0: 278 });
  assert.deepEqual(await counter(metrics.samplesIn), { '': 278 });
});

test('a sample refused for good is dropped and counted; the rest of its request and later batches are written', async () => {
  // Like Prometheus: one bad series makes the whole request fail (rolled back) with a 500.
  const r = receiver((req) => (req.timeseries.some((ts) => ts.labels!.some((l) => l.value === 'https://bad/') && ts.labels!.some((l) => l.value === 'probe_success')) ? { status: 500, body: 'out of order sample' } : { status: 204 }));
  const { source, metrics, pipeline } = setup([r.fn], [{ max_samples_per_send: 1000 }]);
  const d1 = delivery(1, 5, { bad: true });
  const d2 = delivery(2, 5);
  source.queue.push(d1, d2);
  await until(() => d1.acks === 1 && d2.acks === 1);
  await pipeline.stop(1000);
  assert.deepEqual(await counter(metrics.samplesDropped), { 'ep0/out_of_order': 1 });
  // d1: 6 targets × 6 samples − the bad one; d2: 5 × 6 + 5 jitter
  assert.equal(r.accepted.length, 35 + 35);
  assert.ok(!r.accepted.some((a) => a.instance === 'https://bad/' && a.name === 'probe_success'));
  assert.ok(r.accepted.some((a) => a.instance === 'https://bad/' && a.name === 'probe_duration_seconds'));
  assert.ok((await counter(metrics.bisections))['ep0/out_of_order']! >= 1);
});

test('an out-of-order refusal of a redelivered message counts as duplicate, not as lost', async () => {
  const r = receiver(() => ({ status: 400, body: 'out of order sample' }));
  const { source, metrics, pipeline } = setup([r.fn]);
  const d = delivery(1, 1, { redelivered: true });
  source.queue.push(d);
  await until(() => d.acks === 1);
  await pipeline.stop(1000);
  assert.deepEqual(await counter(metrics.samplesDropped), { 'ep0/duplicate': 6 });
});

test('two endpoints: acked only when both have it; the healthy one keeps sending while the other is down', async () => {
  let down = true;
  const up = receiver(() => ({ status: 204 }));
  const flaky = receiver(() => ({ status: down ? 503 : 204 }));
  const { source, metrics, pipeline } = setup([up.fn, flaky.fn]);
  const ds = [delivery(1, 2), delivery(2, 2)];
  source.queue.push(...ds);
  await until(() => up.accepted.length === 26);
  await delay(50);
  assert.deepEqual(ds.map((d) => d.acks), [0, 0]);
  assert.ok(ds[0]!.workings > 0, 'held messages are kept alive');
  down = false;
  await until(() => ds.every((d) => d.acks === 1));
  await pipeline.stop(1000);
  assert.equal(flaky.accepted.length, 26);
  const sent = await counter(metrics.samplesSent);
  assert.deepEqual(sent, { ep0: 26, ep1: 26 });
  assert.ok((await counter(metrics.samplesRetried)).ep1! >= 12);
});

test('memory is bounded while the endpoint is down: pulling stops at the buffer limit; stop naks what is held', async () => {
  const r = receiver(() => ({ status: 503 }));
  const { source, pipeline } = setup([r.fn], [{ max_buffered_samples: 60, max_samples_per_send: 10, shards: 2 }]);
  const ds = Array.from({ length: 50 }, (_, i) => delivery(i + 1, 1));
  source.queue.push(...ds);
  await until(() => source.pulled >= 9);
  // 6 samples in the first message, 7 (with jitter) in the next: the queue passes 60 at
  // the 9th message and pulling waits; pulls are sized to the room left.
  assert.equal(source.pulled, 9);
  await delay(100);
  assert.equal(source.pulled, 9, 'still 9 after waiting');
  assert.equal(pipeline.heldMessages, source.pulled);
  await pipeline.stop(50);
  assert.equal(ds.filter((d) => d.naks === 1).length, source.pulled);
  assert.equal(ds.filter((d) => d.acks > 0).length, 0);
});

test('stale markers are written with the staleness NaN after the series\' last sample', async () => {
  const r = receiver(() => ({ status: 204 }));
  const { source, pipeline, model } = setup([r.fn]);
  const d = delivery(1, 1);
  source.queue.push(d);
  await until(() => d.acks === 1);
  const series = model.groupSeries('id0\np1');
  assert.equal(series.length, 6);
  pipeline.addStale(series.map((s) => ({ s, v: NaN, t: s.lastTs + 1 })));
  await until(() => r.accepted.length === 12);
  await pipeline.stop(1000);
  const raw = r.requests.at(-1)!;
  const bits = raw.timeseries.map((ts) => {
    const b = Buffer.alloc(8);
    b.writeDoubleLE(ts.samples![0]!.value!);
    return b.readBigUInt64LE().toString(16);
  });
  assert.ok(bits.every((b) => b === '7ff0000000000002'), bits.join(','));
  assert.ok(raw.timeseries.every((ts) => toNumber(ts.samples![0]!.timestamp) === T0 + 1001));
});

/** Histogram samples in a request. */
const histogramsIn = (q: prometheus.WriteRequest) => q.timeseries.reduce((n, ts) => n + (ts.histograms?.length ?? 0), 0);
/** Answers like Prometheus 2.42 without --enable-feature=native-histograms. */
const noNativeHistograms = (q: prometheus.WriteRequest) => (histogramsIn(q) > 0 ? { status: 500, body: 'native histograms are disabled\n' } : { status: 204 });

test('native_histograms auto: after "native histograms are disabled" the endpoint stops sending them (logged once); classic samples of the refused request are resent; the drop is counted', async () => {
  const r = receiver(noNativeHistograms);
  const warnings: string[] = [];
  const log = silentLogger();
  log.warn = ((_o: unknown, msg: string) => void warnings.push(msg)) as typeof log.warn;
  const { source, metrics, pipeline } = setup([r.fn], [{ shards: 2, max_samples_per_send: 50 }], 1_000_000, { native: true, log });
  const ds = Array.from({ length: 20 }, (_, i) => delivery(i + 1, 2));
  source.queue.push(...ds);
  await until(() => ds.every((d) => d.acks === 1));
  await pipeline.stop(1000);
  // Every classic sample arrived: 20 messages × 2 targets × 6 + 19 × 2 jitter.
  assert.equal(r.accepted.length, 278);
  const refused = r.requests.filter((q) => histogramsIn(q) > 0);
  assert.ok(refused.length >= 1 && refused.length <= 2, `one refused request per shard at most, got ${refused.length}`);
  const dropped = refused.reduce((n, q) => n + histogramsIn(q), 0);
  assert.deepEqual(await counter(metrics.samplesDropped), { 'ep0/native_histograms_disabled': dropped });
  assert.deepEqual(await counter(metrics.samplesSent), { ep0: 278 });
  assert.equal(warnings.filter((w) => w.includes('native histograms')).length, 1);
  assert.deepEqual(await counter(metrics.nativeHistograms), { ep0: 0 });
  // After the first refusal no request carried histograms again.
  const firstRefused = r.requests.indexOf(refused[0]!);
  assert.ok(r.requests.slice(firstRefused + refused.length).every((q) => histogramsIn(q) === 0));
});

test('native_histograms always: each refusal drops (and counts) the histogram samples and resends the rest; never: none are sent', async () => {
  const r = receiver(noNativeHistograms);
  const ok = receiver(() => ({ status: 204 }));
  const none = receiver(() => ({ status: 204 }));
  const { source, metrics, pipeline } = setup([r.fn, ok.fn, none.fn], [{ native_histograms: 'always', max_samples_per_send: 30 }, {}, { native_histograms: 'never' }], 1_000_000, { native: true });
  const ds = Array.from({ length: 10 }, (_, i) => delivery(i + 1, 2));
  source.queue.push(...ds);
  await until(() => ds.every((d) => d.acks === 1));
  await pipeline.stop(1000);
  assert.deepEqual(await counter(metrics.samplesDropped), { 'ep0/native_histograms_disabled': 20 });
  assert.deepEqual(await counter(metrics.samplesSent), { ep0: 138, ep1: 158, ep2: 138 });
  assert.deepEqual(await counter(metrics.nativeHistograms), { ep0: 1, ep1: 1, ep2: 0 });
  assert.equal(none.requests.reduce((n, q) => n + histogramsIn(q), 0), 0);
  // The accepting endpoint got every native histogram sample: cumulative counts 1..10 per target.
  const t0 = ok.requests.flatMap((q) => q.timeseries.filter((ts) => ts.labels!.some((l) => l.value === 'https://t0/')).flatMap((ts) => ts.histograms ?? []));
  assert.deepEqual(t0.map((x) => Number(x.countInt)), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.ok(t0.every((x) => x.schema === 3 && x.positiveSpans!.length === 1 && Number(x.positiveDeltas![0]) === Number(x.countInt)), 'all 1 ms durations in one bucket');
});

test('a redelivered message\'s native histogram samples are not sent again (no out-of-order bisection): its results count as duplicate_result', async () => {
  // Like Prometheus 2.42: no out-of-order window for native histograms.
  const newest = new Map<string, number>();
  const r = receiver((q) => {
    for (const ts of q.timeseries) {
      const key = JSON.stringify(ts.labels);
      for (const h of ts.histograms ?? []) {
        if (toNumber(h.timestamp) <= (newest.get(key) ?? -Infinity)) return { status: 400, body: 'out of order sample' };
      }
    }
    for (const ts of q.timeseries) for (const h of ts.histograms ?? []) newest.set(JSON.stringify(ts.labels), toNumber(h.timestamp));
    return { status: 204 };
  });
  const { source, metrics, pipeline } = setup([r.fn], [{ native_histograms: 'always' }], 1_000_000, { native: true });
  const ds = [delivery(1, 2), delivery(2, 2), delivery(3, 2)];
  source.queue.push(...ds);
  await until(() => ds.every((d) => d.acks === 1));
  const again = delivery(2, 2, { redelivered: true });
  source.queue.push(again);
  await until(() => again.acks === 1);
  await pipeline.stop(1000);
  assert.deepEqual(await counter(metrics.samplesDropped), { '/duplicate_result': 2 });
  assert.deepEqual(await counter(metrics.bisections), {});
  assert.equal(r.requests.filter((q) => histogramsIn(q) > 0).reduce((n, q) => n + histogramsIn(q), 0), 6);
});

/** A receiver like Prometheus with an out-of-order window: the same value again at a timestamp is accepted, another value is a 400. */
function promLike() {
  const stored = new Map<string, number>();
  let refused = 0;
  const r = receiver((q) => {
    for (const ts of q.timeseries) {
      const key = JSON.stringify(ts.labels);
      for (const x of ts.samples ?? []) {
        const v = stored.get(`${key}@${toNumber(x.timestamp)}`);
        if (v !== undefined && v !== x.value) {
          refused++;
          return { status: 400, body: 'duplicate sample for timestamp' };
        }
      }
    }
    for (const ts of q.timeseries) for (const x of ts.samples ?? []) stored.set(`${JSON.stringify(ts.labels)}@${toNumber(x.timestamp)}`, x.value ?? 0);
    return { status: 204 };
  });
  return { ...r, stored, refused: () => refused };
}

test('a message delivered again after it was done with produces no samples, leaves the histogram alone and is acked; an older result not seen before is still converted', async () => {
  const r = promLike();
  const { source, metrics, pipeline } = setup([r.fn]);
  const ds = [delivery(1, 2), delivery(3, 2)];
  source.queue.push(...ds);
  await until(() => ds.every((d) => d.acks === 1));
  const again = [delivery(1, 2, { redelivered: true }), delivery(3, 2, { redelivered: true })];
  source.queue.push(...again);
  await until(() => again.every((d) => d.acks === 1));
  // A slow probe that started before the newest one, published after it: real, converted.
  const late = delivery(2, 2);
  source.queue.push(late);
  await until(() => late.acks === 1);
  const next = delivery(4, 2);
  source.queue.push(next);
  await until(() => next.acks === 1);
  await pipeline.stop(1000);
  assert.equal(r.refused(), 0);
  assert.deepEqual(await counter(metrics.samplesDropped), { '/duplicate_result': 4 });
  assert.deepEqual(await counter(metrics.messagesDropped), { duplicate: 2 });
  assert.deepEqual(await counter(metrics.bisections), {});
  const count = r.accepted.filter((a) => a.name === 'probemesh_probe_duration_seconds_count' && a.instance === 'https://t0/').map((a) => [a.ts - T0, a.value]);
  assert.deepEqual(count, [[1000, 1], [3000, 2], [2000, 3], [4000, 4]]);
  assert.equal(r.accepted.filter((a) => a.name === 'probe_success').length, 4 * 2);
});

test('a redelivery of a message still held joins it: acked together, no samples of its own', async () => {
  let open = false;
  const r = receiver(() => ({ status: open ? 204 : 503 }));
  const { source, metrics, pipeline } = setup([r.fn]);
  const d = delivery(1, 1);
  source.queue.push(d);
  await until(() => r.requests.length > 0);
  const again = delivery(1, 1, { redelivered: true });
  source.queue.push(again);
  await until(() => source.queue.length === 0);
  await delay(20);
  assert.equal(again.acks, 0);
  assert.ok(again.workings > 0, 'the repeat is kept alive with the held delivery');
  open = true;
  await until(() => d.acks === 1 && again.acks === 1);
  await pipeline.stop(1000);
  assert.deepEqual(await counter(metrics.messagesDropped), { duplicate: 1 });
  assert.deepEqual(await counter(metrics.samplesSent), { ep0: 6 });
});

test('after a hand-off, the new owner\'s re-derived histogram samples of redelivered messages are dropped as duplicate without splitting; the rest is written', async () => {
  const r = promLike();
  const a = setup([r.fn]);
  const ds = [1, 2, 3].map((i) => delivery(i, 20));
  a.source.queue.push(...ds);
  await until(() => ds.every((d) => d.acks === 1));
  await a.pipeline.stop(1000);
  // The next owner (fresh state) gets messages 2 and 3 again, then a new one.
  const b = setup([r.fn], [{ shards: 1, max_samples_per_send: 1000 }]);
  const again = [delivery(2, 20, { redelivered: true }), delivery(3, 20, { redelivered: true }), delivery(4, 20)];
  b.source.queue.push(...again);
  await until(() => again.every((d) => d.acks === 1));
  await b.pipeline.stop(1000);
  assert.deepEqual(await counter(b.metrics.bisections), {});
  const dropped = await counter(b.metrics.samplesDropped);
  assert.deepEqual(Object.keys(dropped), ['ep0/duplicate']);
  // At most one refusal per request (one per message here), never one per sample.
  assert.ok(r.refused() >= 1 && r.refused() <= 3, `${r.refused()} refusals`);
  assert.equal(r.accepted.filter((a) => a.name === 'probe_success').length, 3 * 20 + 3 * 20);
  assert.ok(r.accepted.some((a) => a.name === 'probemesh_probe_duration_seconds_count' && a.ts === T0 + 4000));
});

test('a request refused for good sample after sample is split at most MAX_SPLITS times, the rest dropped as split_limit', async () => {
  const r = receiver((q) => (q.timeseries.some((ts) => ts.labels!.some((l) => l.value === 'probe_success')) ? { status: 400, body: 'bad' } : { status: 204 }));
  const { source, metrics, pipeline } = setup([r.fn], [{ shards: 1, max_samples_per_send: 10_000 }]);
  const d = delivery(1, 500);
  source.queue.push(d);
  await until(() => d.acks === 1);
  await pipeline.stop(1000);
  const splits = (await counter(metrics.bisections))['ep0/http_400'] ?? 0;
  assert.equal(splits, MAX_SPLITS);
  assert.ok(r.requests.length <= 2 * MAX_SPLITS + 2, `${r.requests.length} requests`);
  const dropped = await counter(metrics.samplesDropped);
  assert.ok((dropped['ep0/split_limit'] ?? 0) >= 500, JSON.stringify(dropped));
});
