import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger, toULong } from '@probemesh/common';
import { probemesh, prometheus } from '@probemesh/proto';
import { AnchoredClock } from '@probemesh/common';
import { ResultDelivery } from './consumer';
import { createAggregatorMetrics } from './metrics';
import { toWriteRequest } from './series';
import { ModelSample, RECENT_RESULTS, SeriesModel } from './series-model';
import { SkewMonitor } from './skew';
import { encodeGrouped, groupSamples, QueuedSample } from './write-request';

const START = 1_700_000_000_123_456_789n;

function result(over: Partial<probemesh.v1.IProbeResult> = {}): probemesh.v1.IProbeResult {
  return { target: 'https://a.example/', targetId: 'ida', module: 'http_2xx', prober: 'p1', zone: 'z1', startUnixNano: toULong(START), success: true, durationNs: toULong(20_000_000n), labels: { team: 'sre' }, ...over };
}

function convert(model: SeriesModel, results: probemesh.v1.IProbeResult[]): Map<string, number> {
  const out: ModelSample[] = [];
  model.convert({ prober: 'p1', zone: 'z1', results }, { labels: {}, samples: {} }, out);
  const m = new Map<string, number>();
  for (const x of out) {
    const l = Object.fromEntries(x.s.labels.map((y) => [y.name, y.value]));
    const extra = ['phase', 'le', 'hop', 'failure_code'].filter((k) => l[k] !== undefined).map((k) => `${k}=${l[k]}`);
    m.set(`${l.__name__}${extra.length ? `{${extra.join(',')}}` : ''}`, x.v);
  }
  return m;
}

test('kernel TCP, clock error bound and redirect hops become their agreed metrics (only when present)', () => {
  const model = new SeriesModel({ job: 'probemesh', buckets: [0.01, 0.1], jitterWindow: 3, maxSeries: 1000 });
  const m = convert(model, [
    result({
      kernel: { connectNs: toULong(1_234_000n), firstByteNs: toULong(2_500_000n), srttUs: 1500, rttvarUs: 250, retransmits: 2, synRetransmits: 1, resets: 1 },
      clockErrorBoundNs: toULong(150_000n),
      hops: [
        { url: 'https://a.example/', statusCode: 301, durationNs: toULong(5_000_000n) },
        { url: 'https://b.example/', statusCode: 200, durationNs: toULong(7_000_000n) },
      ],
    }),
  ]);
  assert.equal(m.get('probe_tcp_kernel_connect_seconds'), 0.001234);
  assert.equal(m.get('probe_tcp_kernel_first_byte_seconds'), 0.0025);
  assert.equal(m.get('probe_tcp_srtt_seconds'), 0.0015);
  assert.equal(m.get('probe_tcp_rttvar_seconds'), 0.00025);
  assert.equal(m.get('probe_tcp_retransmits'), 2);
  assert.equal(m.get('probe_tcp_syn_retransmits'), 1);
  assert.equal(m.get('probe_tcp_resets'), 1);
  assert.equal(m.get('probe_clock_error_bound_seconds'), 0.00015);
  assert.equal(m.get('probe_http_redirects'), 1);
  assert.equal(m.get('probemesh_http_redirect_hop_seconds{hop=0}'), 0.005);
  assert.equal(m.get('probemesh_http_redirect_hop_seconds{hop=1}'), 0.007);

  const plain = convert(new SeriesModel({ job: 'probemesh', buckets: [0.1], jitterWindow: 3, maxSeries: 1000 }), [result()]);
  assert.ok(![...plain.keys()].some((k) => k.startsWith('probe_tcp_') || k.startsWith('probe_clock') || k.includes('redirect')), [...plain.keys()].join(' '));
});

test('duration histogram is cumulative per series; jitter is the stddev of the last N durations', () => {
  const model = new SeriesModel({ job: 'probemesh', buckets: [0.01, 0.1], jitterWindow: 3, maxSeries: 1000 });
  const at = (i: number, ms: bigint) => result({ startUnixNano: toULong(START + BigInt(i) * 1_000_000_000n), durationNs: toULong(ms * 1_000_000n) });
  assert.equal(convert(model, [at(0, 5n)]).get('probemesh_probe_jitter_seconds'), undefined);
  convert(model, [at(1, 50n)]);
  convert(model, [at(2, 500n)]);
  const m = convert(model, [at(3, 50n)]);
  assert.equal(m.get('probemesh_probe_duration_seconds_bucket{le=0.01}'), 1);
  assert.equal(m.get('probemesh_probe_duration_seconds_bucket{le=0.1}'), 3);
  assert.equal(m.get('probemesh_probe_duration_seconds_bucket{le=+Inf}'), 4);
  assert.equal(m.get('probemesh_probe_duration_seconds_count'), 4);
  assert.ok(Math.abs(m.get('probemesh_probe_duration_seconds_sum')! - 0.605) < 1e-12);
  // last 3: 0.05, 0.5, 0.05 → mean 0.2, population stddev sqrt(0.045·2+0.09... ) = 0.212132
  assert.ok(Math.abs(m.get('probemesh_probe_jitter_seconds')! - 0.21213203435596426) < 1e-12, String(m.get('probemesh_probe_jitter_seconds')));
  assert.equal(model.groupSeries('ida\np1').length, m.size);
  model.forgetGroup('ida\np1');
  assert.equal(model.groupSeries('ida\np1').length, 0);
  const again = convert(model, [at(4, 5n)]);
  assert.equal(again.get('probemesh_probe_duration_seconds_count'), 1, 'state restarts after the group is forgotten');
  assert.equal(model.groupSeries('ida\np1').length, again.size, 'its series are interned afresh, none served from a forgotten entry');
});

for (const native of [false, true]) {
  test(`the hand-rolled WriteRequest encoder writes the same bytes as protobufjs${native ? ' (with native histograms)' : ''}`, () => {
    const model = new SeriesModel({ job: 'probemesh', buckets: [0.005, 0.5], jitterWindow: 3, maxSeries: 1000, native: native ? { schema: 3, zeroThreshold: 2.938735877055719e-39, maxBuckets: 160 } : null });
    const out: ModelSample[] = [];
    const results = [0, 1, 2].flatMap((i) => [
      result({ startUnixNano: toULong(START + BigInt(i) * 1_000_000_000n), durationNs: toULong(BigInt(1 + i * 7_000_000)), phases: [{ name: 'connect', durationNs: toULong(1000n) }] }),
      result({ target: 'https://ü.example/é', targetId: 'idu', success: false, failureCode: 'timeout', durationNs: toULong(BigInt(i) * 900_000_000n), startUnixNano: toULong(START + BigInt(i) * 1_000_000_000n) }),
    ]);
    model.convert({ prober: 'p1', results }, { labels: {}, samples: {} }, out);
    const queued: QueuedSample[] = out.map((x) => ({ s: x.s, v: x.v, t: x.t, stale: false, owner: null, ...(x.h ? { h: x.h } : {}) }));
    const { groups } = groupSamples(queued);
    const series = [...groups].map(([s, g]) =>
      s.native
        ? { labels: [...s.labels], samples: [], histograms: g.map((x) => ({ histogram: x.h!.value, timestampMs: x.t })) }
        : { labels: [...s.labels], samples: g.map((x) => ({ value: x.v, timestampMs: x.t })) },
    );
    assert.equal(series.filter((x) => x.histograms).length, native ? 2 : 0);
    const ours = encodeGrouped(groups);
    const theirs = Buffer.from(prometheus.WriteRequest.encode(toWriteRequest(series)).finish());
    assert.equal(ours.toString('hex'), theirs.toString('hex'));
    const decoded = prometheus.WriteRequest.decode(ours);
    assert.equal(decoded.timeseries.length, series.length);
    if (native) {
      const h = decoded.timeseries.find((ts) => ts.labels!.some((l) => l.value === 'https://ü.example/é') && ts.histograms!.length > 0)!.histograms!;
      assert.deepEqual(h.map((x) => Number(x.countInt)), [1, 2, 3]);
      assert.equal(h[2]!.sum, 2.7);
      assert.equal(Number(h[2]!.zeroCountInt), 1, 'the 0 s duration is in the zero bucket');
    }
  });
}

test('clock skew: gauge per prober, one warning per minute above the threshold', () => {
  const metrics = createAggregatorMetrics(new AnchoredClock(), { defaultMetrics: false });
  const warnings: unknown[] = [];
  const log = silentLogger();
  log.warn = ((o: unknown) => void warnings.push(o)) as typeof log.warn;
  let now = 0;
  const skew = new SkewMonitor(metrics, log, 1000, () => now);
  const d = (sentNs: bigint, arrivalNs: bigint): ResultDelivery => ({ batch: { prober: 'p1', sentUnixNano: toULong(sentNs) }, seq: 1, redelivered: false, arrivalNs, ack() {}, nak() {}, working() {} });
  assert.equal(skew.observe(d(START + 2_500_000_000n, START)), 2.5);
  assert.equal(skew.observe(d(START, START + 3_000_000_000n)), -3);
  assert.equal(warnings.length, 1);
  now = 61_000;
  skew.observe(d(START, START + 3_000_000_000n));
  assert.equal(warnings.length, 2);
  assert.equal(skew.observe(d(START + 1_000_000n, START)), 0.001);
  assert.equal(warnings.length, 2);
});

test('a result is converted once: a repeat (remembered, or older than all RECENT_RESULTS remembered) gives no samples and leaves the histogram alone', () => {
  const model = new SeriesModel({ job: 'probemesh', buckets: [0.1], jitterWindow: 3, maxSeries: 1000 });
  const at = (s: number) => result({ startUnixNano: toULong(START + BigInt(s) * 1_000_000_000n) });
  const run = (s: number) => {
    const drops = { labels: {}, samples: {} as Record<string, number> };
    const out: ModelSample[] = [];
    model.convert({ prober: 'p1', zone: 'z1', results: [at(s)] }, drops, out);
    return { n: out.length, count: out.find((x) => x.s.labels.some((l) => l.value === 'probemesh_probe_duration_seconds_count'))?.v, dup: drops.samples.duplicate_result ?? 0 };
  };
  assert.deepEqual(run(10), { n: 6, count: 1, dup: 0 });
  assert.deepEqual(run(10), { n: 0, count: undefined, dup: 1 });
  assert.equal(run(12).count, 2);
  // Older than the newest but never seen: a real (late) result.
  assert.equal(run(11).count, 3);
  assert.equal(run(11).dup, 1);
  assert.equal(run(10).dup, 1);
  for (let s = 13; s < 13 + RECENT_RESULTS; s++) assert.equal(run(s).dup, 0);
  // 10..12 are forgotten now, but older than everything remembered: a repeat.
  assert.equal(run(9).dup, 1);
  assert.equal(run(13 + RECENT_RESULTS).count, 4 + RECENT_RESULTS);
});

test('past max_series the oldest-created series are forgotten and the hook is told how many', () => {
  const evicted: number[] = [];
  const model = new SeriesModel({ job: 'probemesh', buckets: [0.1], jitterWindow: 3, maxSeries: 100, onEvict: (n) => evicted.push(n) });
  convert(model, [result()]);
  const perTarget = model.seriesCount;
  assert.ok(perTarget > 0 && perTarget < 100, `series of one result: ${perTarget}`);
  assert.deepEqual(evicted, [], 'nothing forgotten under the limit');
  const many = Array.from({ length: 20 }, (_, i) => result({ target: `https://t${i}.example/`, targetId: `id${i}` }));
  convert(model, many);
  assert.ok(evicted.length > 0 && evicted.every((n) => n > 0), `evictions: ${evicted.join(',')}`);
  assert.ok(model.seriesCount <= 100, `kept ${model.seriesCount} series, limit 100`);
});
