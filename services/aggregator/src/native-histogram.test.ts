import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prometheus } from '@probemesh/proto';
import { toNumber } from '@probemesh/common';
import { bucketIndex, bucketUpperBound, NativeHistogramState } from './native-histogram';
import { toHistogramProto } from './series';
import { encodeGrouped, encodeHistogram, groupSamples, makeSeries, QueuedSample } from './write-request';

test('bucket index: powers of two are upper bounds; every value lies in (bound(i-1), bound(i)]', () => {
  assert.equal(bucketIndex(1, 3), 0);
  assert.equal(bucketIndex(2, 3), 8);
  assert.equal(bucketIndex(0.5, 3), -8);
  assert.equal(bucketIndex(1.0000001, 3), 1);
  assert.equal(bucketIndex(2 ** (1 / 8), 3), 1);
  assert.equal(bucketIndex(1, 0), 0);
  assert.equal(bucketIndex(3, 0), 2);
  assert.equal(bucketIndex(4, -1), 1);
  assert.equal(bucketIndex(5, -1), 2);
  assert.equal(bucketIndex(0.001, 3), -79); // ceil(8·log2(0.001)) = ceil(-79.7)
  for (const schema of [-4, -2, -1, 0, 1, 3, 5, 8]) {
    for (let k = 0; k < 2000; k++) {
      const v = Math.exp((Math.random() - 0.5) * 40);
      const i = bucketIndex(v, schema);
      const ub = bucketUpperBound(i, schema);
      const lb = bucketUpperBound(i - 1, schema);
      // one ulp of slack for 2^x rounding
      assert.ok(v <= ub * (1 + 1e-15) && v > lb * (1 - 1e-15), `schema ${schema}: ${v} in bucket ${i} (${lb}, ${ub}]`);
    }
  }
});

test('state: spans and deltas of the populated buckets, zero bucket, cumulative counts', () => {
  const h = new NativeHistogramState(0, 1e-9, 100);
  for (const v of [0, 1, 1.5, 3, 3.5, 100]) h.observe(v);
  // schema 0: 1 → bucket 0, 1.5 → 1, 3 and 3.5 → 2, 100 → 7 (64, 128]
  assert.deepEqual(h.snapshot(), { count: 6, sum: 109, schema: 0, zeroThreshold: 1e-9, zeroCount: 1, spans: [{ offset: 0, length: 3 }, { offset: 4, length: 1 }], deltas: [1, 0, 1, -1] });
  h.observe(0.25); // bucket -2
  const s = h.snapshot();
  assert.deepEqual(s.spans, [{ offset: -2, length: 1 }, { offset: 1, length: 3 }, { offset: 4, length: 1 }]);
  assert.deepEqual(s.deltas, [1, 0, 0, 1, -1]);
});

test('state: too many buckets lower the schema, merging bucket i into ceil(i/2); counts are kept', () => {
  const h = new NativeHistogramState(3, 0, 4);
  const values = [1, 1.05, 1.1, 1.2, 1.3, 1.5, 1.7, 2, 3, 4];
  for (const v of values) h.observe(v);
  assert.ok(h.bucketCount <= 4);
  assert.ok(h.schema < 3);
  const s = h.snapshot();
  let idx = 0;
  let acc = 0;
  const counts = new Map<number, number>();
  let k = 0;
  for (const sp of s.spans) {
    idx += sp.offset;
    for (let j = 0; j < sp.length; j++) {
      acc += s.deltas[k++]!;
      counts.set(idx, acc);
      idx++;
    }
  }
  // Rebuild the expected counts at the final schema directly.
  const want = new Map<number, number>();
  for (const v of values) want.set(bucketIndex(v, s.schema), (want.get(bucketIndex(v, s.schema)) ?? 0) + 1);
  assert.deepEqual([...counts].sort((a, b) => a[0] - b[0]), [...want].sort((a, b) => a[0] - b[0]));
  assert.equal(s.count, values.length);
});

test('the hand-rolled Histogram encoding is byte-identical to protobufjs (alone and inside a WriteRequest)', () => {
  const h = new NativeHistogramState(3, 2.938735877055719e-39, 160);
  const seen: ReturnType<NativeHistogramState['snapshot']>[] = [];
  for (let i = 0; i < 300; i++) {
    h.observe(i % 50 === 0 ? 0 : Math.exp(-6 + (i % 37) / 5));
    if (i % 17 === 0) seen.push(h.snapshot());
  }
  seen.push(new NativeHistogramState(-4, 0, 10).snapshot()); // empty: no spans, no deltas
  for (const snap of seen) {
    const theirs = Buffer.from(prometheus.Histogram.encode(toHistogramProto(snap, 1_700_000_000_123)).finish());
    const ours = encodeHistogram(snap).body;
    // ours lacks only the timestamp (field 15, appended per request)
    assert.equal(Buffer.concat([ours, prometheus.Histogram.encode({ timestamp: 1_700_000_000_123 }).finish()]).toString('hex'), theirs.toString('hex'));
  }
  const s = makeSeries([{ name: '__name__', value: 'probemesh_probe_duration_seconds' }, { name: 'instance', value: 'https://a/' }], 'g', true);
  const queued: QueuedSample[] = seen.map((snap, i) => ({ s, v: 0, t: 1_700_000_000_000 + i, stale: false, owner: null, h: encodeHistogram(snap) }));
  const ours = encodeGrouped(groupSamples(queued).groups);
  const theirs = prometheus.WriteRequest.encode({ timeseries: [{ labels: [...s.labels], samples: [], histograms: seen.map((snap, i) => toHistogramProto(snap, 1_700_000_000_000 + i)) }] }).finish();
  assert.equal(ours.toString('hex'), Buffer.from(theirs).toString('hex'));
});

test('a stale marker of a native series is a histogram whose sum is the staleness NaN', () => {
  const s = makeSeries([{ name: '__name__', value: 'h' }], '', true);
  const buf = encodeGrouped(groupSamples<null>([{ s, v: NaN, t: 42, stale: true, owner: null }]).groups);
  const req = prometheus.WriteRequest.decode(buf);
  const hist = req.timeseries[0]!.histograms![0]!;
  assert.equal(req.timeseries[0]!.samples!.length, 0);
  assert.equal(toNumber(hist.timestamp), 42);
  assert.equal(toNumber(hist.countInt ?? 0), 0);
  assert.ok(Number.isNaN(hist.sum));
  assert.ok(buf.includes(Buffer.from('020000000000f07f', 'hex')), 'staleness NaN bits 0x7ff0000000000002');
});
