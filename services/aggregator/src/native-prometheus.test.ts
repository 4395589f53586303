/**
 * Native histograms against real Prometheus 2.42 servers: one aggregator writes to a
 * Prometheus started with `--enable-feature=native-histograms` and to one without it
 * (both `native_histograms: auto`, the default). The first stores exact native
 * histograms next to the classic ones; the second refuses them ("native histograms are
 * disabled", a 500), which is counted and turns them off for that endpoint, and every
 * classic sample still arrives.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, NatsConnection } from 'nats';
import { loadConfig, resultsSubject, silentLogger, toULong } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import { NatsServer, PrometheusServer, sampleValue, startNats, startPrometheus, waitFor } from '@probemesh/testkit';
import { aggregatorConfigSchema } from './config';
import { startAggregator } from './aggregator';
import { metricValue, skipWithoutServers } from './test-helpers';
import { bucketIndex, bucketUpperBound } from './native-histogram';

const skip = skipWithoutServers;

const N = 60;
/** Target "steady": every probe takes 250 ms (a bucket boundary at any schema ≥ 0). */
const STEADY_S = 0.25;
/** Target "spread": probes take 10, 20, …, 100 ms in turn (median 50–60 ms). */
const spreadS = (i: number) => ((i % 10) + 1) / 100;

describe('native histograms with real Prometheus 2.42 (with and without the feature flag)', { skip }, () => {
  let withFlag: PrometheusServer;
  let without: PrometheusServer;
  let nats: NatsServer;
  let nc: NatsConnection;
  let aggText = '';
  let endMs = 0;

  before(async () => {
    [withFlag, without, nats] = await Promise.all([startPrometheus({ features: ['native-histograms'] }), startPrometheus(), startNats()]);
    nc = await connect({ servers: nats.url });
    const cfg = loadConfig(aggregatorConfigSchema, {
      env: {},
      text: [
        'id: agg-native',
        'job: native',
        `nats: { servers: ["${nats.url}"] }`,
        'http: { listen: "127.0.0.1:0" }',
        'consumer: { durable: pm-native, ack_wait: 10s }',
        'ownership: { heartbeat_interval: 100ms, dead_after: 1s, discovery_interval: 200ms }',
        'remote_write:',
        `  - { name: with-flag, url: "${withFlag.writeUrl}", batch_deadline: 50ms, max_samples_per_send: 500 }`,
        `  - { name: without-flag, url: "${without.writeUrl}", batch_deadline: 50ms, max_samples_per_send: 500 }`,
        'log: { level: error }',
      ].join('\n'),
    });
    const agg = await startAggregator(cfg, { log: silentLogger(), pullExpiresMs: 1000, pendingRefreshMs: 200 });
    try {
      const js = nc.jetstream();
      // N probe rounds, one second apart, ending now: 2 targets per batch.
      endMs = Date.now() - 1000;
      for (let i = 0; i < N; i++) {
        const startNs = BigInt(endMs - (N - 1 - i) * 1000) * 1_000_000n;
        const r = (target: string, s: number) => ({ target, module: 'http_2xx', prober: 'nh', zone: 'z1', startUnixNano: toULong(startNs), success: true, durationNs: toULong(BigInt(Math.round(s * 1e9))), labels: { run: 'native' } });
        await js.publish(resultsSubject('nh'), probemesh.v1.ResultBatch.encode({ prober: 'nh', zone: 'z1', seq: toULong(BigInt(i + 1)), results: [r('https://steady.example/', STEADY_S), r('https://spread.example/', spreadS(i))] }).finish(), { msgID: `nh-${i}` });
      }
      aggText = await waitFor(
        async () => {
          const t = await (await fetch(`${agg.httpUrl}/metrics`)).text();
          return metricValue(t, 'probemesh_aggregator_messages_total', /outcome="ack"/) === N && metricValue(t, 'probemesh_aggregator_held_messages') === 0 ? t : undefined;
        },
        { timeoutMs: 30_000, what: 'every message acked' },
      );
    } finally {
      await agg.stop();
    }
  });
  after(async () => {
    await nc?.close();
    await Promise.all([withFlag?.stop(), without?.stop(), nats?.stop()]);
  });

  const at = () => (endMs + 500) / 1000;
  const byInstance = async (prom: PrometheusServer, q: string) => Object.fromEntries((await prom.query(q, at())).map((s) => [s.metric.instance, sampleValue(s)]));

  test('with the flag: native histograms with exact counts and sums, sensible quantiles, next to the classic series', async () => {
    assert.deepEqual(await byInstance(withFlag, 'histogram_count(probemesh_probe_duration_seconds{run="native"})'), { 'https://spread.example/': N, 'https://steady.example/': N });
    const sums = await byInstance(withFlag, 'histogram_sum(probemesh_probe_duration_seconds{run="native"})');
    assert.equal(sums['https://steady.example/'], N * STEADY_S);
    assert.ok(Math.abs(sums['https://spread.example/']! - Array.from({ length: N }, (_, i) => spreadS(i)).reduce((a, b) => a + b, 0)) < 1e-9);
    // Every sample was stored: one histogram per probe round.
    const stored = await withFlag.query('count_over_time(probemesh_probe_duration_seconds{run="native"}[5m])', at());
    assert.deepEqual(stored.map(sampleValue), [N, N]);
    // 250 ms is the upper bound of its schema-3 bucket: the median lies in that bucket.
    const idx = bucketIndex(STEADY_S, 3);
    const q = await byInstance(withFlag, 'histogram_quantile(0.5, rate(probemesh_probe_duration_seconds{run="native"}[1m]))');
    assert.ok(q['https://steady.example/']! > bucketUpperBound(idx - 1, 3) && q['https://steady.example/']! <= STEADY_S, `steady median ${q['https://steady.example/']}`);
    // Durations 10..100 ms: the median of the last minute is 50–60 ms, within one bucket (~9 %).
    assert.ok(q['https://spread.example/']! > 0.05 / 1.1 && q['https://spread.example/']! < 0.06 * 1.1, `spread median ${q['https://spread.example/']}`);
    const p90 = await byInstance(withFlag, 'histogram_quantile(0.9, probemesh_probe_duration_seconds{run="native"})');
    assert.ok(p90['https://spread.example/']! > 0.09 / 1.1 && p90['https://spread.example/']! <= 0.1 * 1.1, `spread p90 ${p90['https://spread.example/']}`);
    // The classic histogram is still written, with the same count.
    assert.deepEqual(await byInstance(withFlag, 'probemesh_probe_duration_seconds_count{run="native"}'), { 'https://spread.example/': N, 'https://steady.example/': N });
    assert.equal(metricValue(aggText, 'probemesh_aggregator_samples_dropped_total', /endpoint="with-flag"/), 0);
    assert.equal(metricValue(aggText, 'probemesh_aggregator_native_histograms_enabled', /endpoint="with-flag"/), 1);
  });

  test('without the flag: every classic sample arrives, the refused native histograms are counted, and auto stops sending them', async () => {
    assert.deepEqual((await without.query('count_over_time(probe_success{run="native"}[5m])', at())).map(sampleValue), [N, N]);
    assert.deepEqual(await byInstance(without, 'probemesh_probe_duration_seconds_count{run="native"}'), { 'https://spread.example/': N, 'https://steady.example/': N });
    assert.deepEqual(await without.query('probemesh_probe_duration_seconds{run="native"}', at()), []);
    const dropped = metricValue(aggText, 'probemesh_aggregator_samples_dropped_total', /endpoint="without-flag",reason="native_histograms_disabled"/);
    assert.ok(dropped >= 1 && dropped <= 2 * N, `dropped ${dropped}`);
    assert.equal(metricValue(aggText, 'probemesh_aggregator_samples_dropped_total', /endpoint="without-flag"/), dropped, 'nothing else dropped');
    assert.equal(metricValue(aggText, 'probemesh_aggregator_native_histograms_enabled', /endpoint="without-flag"/), 0);
    // Everything but the 2N native histogram samples was accepted there; all of it by the other.
    const samplesIn = metricValue(aggText, 'probemesh_aggregator_samples_in_total');
    assert.equal(metricValue(aggText, 'probemesh_aggregator_samples_sent_total', /endpoint="with-flag"/), samplesIn);
    assert.equal(metricValue(aggText, 'probemesh_aggregator_samples_sent_total', /endpoint="without-flag"/), samplesIn - 2 * N);
    // Refused requests are 500s that were not retried: one per sending shard at most.
    const refused = metricValue(aggText, 'probemesh_aggregator_remote_write_requests_total', /endpoint="without-flag",status="500"/);
    assert.ok(refused >= 1 && refused <= 4, `refused requests ${refused}`);
    assert.equal(metricValue(aggText, 'probemesh_aggregator_samples_retried_total', /endpoint="without-flag"/), 0);
  });
});
