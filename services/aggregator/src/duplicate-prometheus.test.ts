/**
 * Repeated result messages against a real Prometheus 2.42 (out-of-order window 30m,
 * the testkit's default): the same ResultBatch is delivered twice, and once more after
 * a newer result. Each result is written once — the repeats produce no samples (their
 * re-derived histogram values would be refused as duplicates, a 400) — and they are
 * counted and acked.
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

const skip = skipWithoutServers;

describe('repeated result messages with real Prometheus 2.42', { skip }, () => {
  let prom: PrometheusServer;
  let nats: NatsServer;
  let nc: NatsConnection;
  let aggText = '';
  let t2 = 0;

  before(async () => {
    [prom, nats] = await Promise.all([startPrometheus(), startNats()]);
    nc = await connect({ servers: nats.url });
    const cfg = loadConfig(aggregatorConfigSchema, {
      env: {},
      text: [
        'id: agg-dup',
        'job: dup',
        `nats: { servers: ["${nats.url}"] }`,
        'http: { listen: "127.0.0.1:0" }',
        'consumer: { durable: pm-dup, ack_wait: 10s }',
        'ownership: { heartbeat_interval: 100ms, dead_after: 1s, discovery_interval: 200ms }',
        `remote_write: [{ name: prom, url: "${prom.writeUrl}", batch_deadline: 20ms, native_histograms: never }]`,
        'log: { level: error }',
      ].join('\n'),
    });
    const agg = await startAggregator(cfg, { log: silentLogger(), pullExpiresMs: 1000, pendingRefreshMs: 200 });
    try {
      const js = nc.jetstream();
      const t1 = Date.now() - 10_000;
      t2 = t1 + 1000;
      const batch = (seq: number, ms: number, durS: number) =>
        probemesh.v1.ResultBatch.encode({
          prober: 'dp',
          zone: 'z1',
          seq: toULong(BigInt(seq)),
          results: [{ target: 'https://dup.example/', module: 'http_2xx', prober: 'dp', zone: 'z1', startUnixNano: toULong(BigInt(ms) * 1_000_000n), success: true, durationNs: toULong(BigInt(Math.round(durS * 1e9))), labels: { run: 'dup' } }],
        }).finish();
      const a = batch(1, t1, 0.01);
      const metrics = async () => (await fetch(`${agg.httpUrl}/metrics`)).text();
      const acked = (n: number) => waitFor(async () => {
        const t = await metrics();
        return metricValue(t, 'probemesh_aggregator_messages_total', /outcome="ack"/) === n && metricValue(t, 'probemesh_aggregator_held_messages') === 0 ? t : undefined;
      }, { timeoutMs: 30_000, what: `${n} messages acked` });
      // The same message twice (distinct stream messages: JetStream's msgID dedup is not what is tested).
      await js.publish(resultsSubject('dp'), a, { msgID: 'dup-a1' });
      await acked(1);
      await js.publish(resultsSubject('dp'), a, { msgID: 'dup-a2' });
      await acked(2);
      await js.publish(resultsSubject('dp'), batch(2, t2, 0.5), { msgID: 'dup-b' });
      await acked(3);
      await js.publish(resultsSubject('dp'), a, { msgID: 'dup-a3' });
      aggText = await acked(4);
    } finally {
      await agg.stop();
    }
  });
  after(async () => {
    await nc?.close();
    await Promise.all([prom?.stop(), nats?.stop()]);
  });

  test('each result is written once, no request is refused, the repeats are counted and acked', async () => {
    const at = (t2 + 500) / 1000;
    assert.deepEqual((await prom.query('count_over_time(probe_success{run="dup"}[5m])', at)).map(sampleValue), [2]);
    assert.deepEqual((await prom.query('probemesh_probe_duration_seconds_count{run="dup"}', at)).map(sampleValue), [2]);
    assert.deepEqual((await prom.query('probemesh_probe_duration_seconds_sum{run="dup"}', at)).map(sampleValue), [0.51]);
    assert.equal(metricValue(aggText, 'probemesh_aggregator_remote_write_requests_total', /status="400"/), 0);
    assert.ok(metricValue(aggText, 'probemesh_aggregator_remote_write_requests_total', /status="204"/) >= 2);
    assert.equal(metricValue(aggText, 'probemesh_aggregator_samples_dropped_total', /reason="duplicate_result"/), 2);
    assert.equal(metricValue(aggText, 'probemesh_aggregator_messages_dropped_total', /reason="duplicate"/), 2);
    assert.equal(metricValue(aggText, 'probemesh_aggregator_samples_dropped_total'), 2, 'nothing else dropped');
    assert.equal(metricValue(aggText, 'probemesh_aggregator_request_splits_total'), 0);
  });
});
