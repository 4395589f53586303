import { test } from 'node:test';
import assert from 'node:assert/strict';
import { probemesh } from '@probemesh/proto';
import { toULong } from '@probemesh/common';
import { batchSamples, chunkSeries, groupSeries, SeriesSample } from './series';

const T0 = 1_700_000_000_123_456_789n; // ns; ms = 1700000000123
const T1 = T0 + 15_000_000_000n;

const ns = toULong;

function fmt(s: SeriesSample): string {
  return `${s.labels.map((l) => `${l.name}=${l.value}`).join(',')} ${s.value} @${s.timestampMs}`;
}

test('a ResultBatch with a success and a failure becomes the exact blackbox sample set', () => {
  const batch = probemesh.v1.ResultBatch.decode(
    probemesh.v1.ResultBatch.encode({
      prober: 'p1',
      zone: 'z1',
      results: [
        {
          target: 'https://api.example.com/health',
          module: 'http_2xx',
          prober: 'p1',
          zone: 'z1',
          startUnixNano: ns(T0),
          success: true,
          durationNs: ns(12_345_000n),
          phases: [
            { name: 'connect', durationNs: ns(1_500_000n) },
            { name: 'processing', durationNs: ns(10_845_000n) },
          ],
          httpStatusCode: 200,
          httpVersion: 1.1,
          labels: { team: 'core', instance: 'evil', env: '' },
        },
        {
          target: 'https://down.example.com/',
          module: 'http_2xx',
          // prober/zone left empty: taken from the batch
          startUnixNano: ns(T1),
          success: false,
          failureCode: 'connect_refused',
          durationNs: ns(2_000_000n),
          gauges: [{ name: 'probe_dns_lookup_time_seconds', value: 0.25, labels: { job: 'nope', rr: 'A' } }, { name: 'bad-name', value: 1 }],
        },
      ],
    }).finish(),
  );
  const { samples, drops } = batchSamples(batch, { job: 'probemesh' });
  const base1 = 'instance=https://api.example.com/health,job=probemesh,module=http_2xx,prober=p1,team=core,zone=z1';
  const base2 = 'instance=https://down.example.com/,job=probemesh,module=http_2xx,prober=p1,zone=z1';
  assert.deepEqual(samples.map(fmt), [
    `__name__=probe_success,${base1} 1 @1700000000123`,
    `__name__=probe_duration_seconds,${base1} 0.012345 @1700000000123`,
    `__name__=probe_http_duration_seconds,${base1.replace('module=http_2xx,', 'module=http_2xx,phase=connect,')} 0.0015 @1700000000123`,
    `__name__=probe_http_duration_seconds,${base1.replace('module=http_2xx,', 'module=http_2xx,phase=processing,')} 0.010845 @1700000000123`,
    `__name__=probe_http_status_code,${base1} 200 @1700000000123`,
    `__name__=probe_http_version,${base1} 1.1 @1700000000123`,
    `__name__=probe_success,${base2} 0 @1700000015123`,
    `__name__=probe_duration_seconds,${base2} 0.002 @1700000015123`,
    `__name__=probe_failure_info,failure_code=connect_refused,${base2} 1 @1700000015123`,
    `__name__=probe_dns_lookup_time_seconds,${base2.replace('prober=p1,', 'prober=p1,rr=A,')} 0.25 @1700000015123`,
  ]);
  // every label list is sorted by name and has no empty value
  for (const s of samples) {
    const names = s.labels.map((l) => l.name);
    assert.deepEqual(names, [...names].sort());
    assert.ok(s.labels.every((l) => l.value !== ''));
    assert.ok(Number.isInteger(s.timestampMs));
  }
  // instance (target label) and job (gauge label) collided; env was empty; one bad gauge name
  assert.deepEqual(drops, { labels: { reserved: 2, empty_value: 1 }, samples: { invalid_metric_name: 1 } });
});

test('a result without a start timestamp is dropped and counted', () => {
  const { samples, drops } = batchSamples({ results: [{ target: 'x', module: 'm', success: true }] }, { job: 'j' });
  assert.equal(samples.length, 0);
  assert.deepEqual(drops.samples, { no_timestamp: 1 });
});

test('invalid and __-prefixed target label names are dropped', () => {
  const { samples, drops } = batchSamples(
    { prober: 'p', zone: 'z', results: [{ target: 't', module: 'm', success: true, startUnixNano: ns(T0), labels: { '1x': 'a', __meta: 'b', ok_label: 'c' } }] },
    { job: 'j' },
  );
  assert.deepEqual(samples[0]!.labels.map((l) => l.name), ['__name__', 'instance', 'job', 'module', 'ok_label', 'prober', 'zone']);
  assert.deepEqual(drops.labels, { invalid_name: 2 });
});

test('groupSeries merges samples of one series in timestamp order, last duplicate wins', () => {
  const l = (v: string) => [{ name: '__name__', value: 'probe_success' }, { name: 'instance', value: v }];
  const series = groupSeries([
    { labels: l('a'), value: 1, timestampMs: 300 },
    { labels: l('b'), value: 1, timestampMs: 100 },
    { labels: l('a'), value: 0, timestampMs: 100 },
    { labels: l('a'), value: 1, timestampMs: 200 },
    { labels: l('a'), value: 7, timestampMs: 200 },
  ]);
  assert.deepEqual(series, [
    { labels: l('a'), samples: [{ value: 0, timestampMs: 100 }, { value: 7, timestampMs: 200 }, { value: 1, timestampMs: 300 }] },
    { labels: l('b'), samples: [{ value: 1, timestampMs: 100 }] },
  ]);
});

test('chunkSeries splits at max samples, splitting a long series in order', () => {
  const labels = [{ name: '__name__', value: 'x' }];
  const mk = (n: number, t0: number) => ({ labels, samples: Array.from({ length: n }, (_, i) => ({ value: i, timestampMs: t0 + i })) });
  const chunks = chunkSeries([mk(3, 0), mk(4, 100)], 3);
  assert.deepEqual(
    chunks.map((c) => c.map((s) => s.samples.map((x) => x.timestampMs))),
    [[[0, 1, 2]], [[100, 101, 102]], [[103]]],
  );
});
