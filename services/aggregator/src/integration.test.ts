/**
 * Integration: a real Prometheus (remote-write receiver) and a real nats-server,
 * started by the test on random loopback ports.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { connect, NatsConnection } from 'nats';
import { loadConfig, silentLogger, STREAM_RESULTS, resultsSubject, toULong } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import { aggregatorConfigSchema, remoteWriteSettings } from './config';
import { startAggregator } from './aggregator';
import { proberConsumerName } from './consumer';
import { RemoteWriteClient } from './remote-write';
import { findBinary, NatsServer, PrometheusServer, sampleTimeMs, sampleValue, startNats, startPrometheus } from '@probemesh/testkit';

const installed = (name: string) => {
  try {
    return Boolean(findBinary(name, name));
  } catch {
    return false;
  }
};
const skip = !installed('prometheus') || !installed('nats-server') ? 'needs prometheus and nats-server (Debian packages; npm test installs them as root)' : false;

/** An instant query as label sets with numeric values and ms timestamps. */
async function promQuery(prom: PrometheusServer, query: string): Promise<{ metric: Record<string, string>; value: number; timestampMs: number }[]> {
  return (await prom.query(query)).map((s) => ({ metric: s.metric, value: sampleValue(s), timestampMs: sampleTimeMs(s) }));
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(200);
  }
}

describe('with a real Prometheus and nats-server', { skip }, () => {
  let prom: PrometheusServer;
  let nats: NatsServer;
  before(async () => {
    // No out-of-order window: the test checks Prometheus's refusal of an out-of-order sample.
    [prom, nats] = await Promise.all([startPrometheus({ config: 'global:\n  scrape_interval: 15s\n' }), startNats()]);
  });
  after(async () => {
    await Promise.all([prom?.stop(), nats?.stop()]);
  });

  test('remote_write samples are queryable; an out-of-order sample is refused for good', async () => {
    const now = Date.now();
    const c = new RemoteWriteClient(remoteWriteSettings(`${prom.url}/api/v1/write`, { timeout: 5000, max_samples_per_send: 100, batch_deadline: 100, min_backoff: 10, max_backoff: 100 }));
    const labels = [
      { name: '__name__', value: 'probe_success' },
      { name: 'instance', value: 'https://direct.example/' },
      { name: 'job', value: 'rwtest' },
    ];
    const out = await c.send([{ labels, samples: [{ value: 0, timestampMs: now - 2000 }, { value: 1, timestampMs: now - 1000 }] }]);
    assert.equal(out.ok, true, JSON.stringify(out));
    const got = await eventually('the sample in Prometheus', async () => {
      const r = await promQuery(prom, 'timestamp(probe_success{job="rwtest"}) * 1000');
      return r.length > 0 ? r : undefined;
    });
    assert.equal(got.length, 1);
    assert.equal(Math.round(got[0]!.value), now - 1000);
    const v = await promQuery(prom, 'probe_success{job="rwtest"}');
    assert.deepEqual(v.map((x) => [x.metric.instance, x.value]), [['https://direct.example/', 1]]);

    const older = await c.send([{ labels, samples: [{ value: 0, timestampMs: now - 5000 }] }], { maxAttempts: 3 });
    assert.equal(older.ok, false);
    assert.equal(older.retryable, false, JSON.stringify(older));
    assert.equal(older.attempts, 1);
    assert.equal(older.reason, 'out_of_order');
  });

  test('startAggregator: a ResultBatch published to pm.results.test lands in Prometheus and is acked', async () => {
    const cfg = loadConfig(aggregatorConfigSchema, {
      env: {},
      text: [
        'id: agg-test',
        `nats: { servers: ["${nats.url}"] }`,
        'http: { listen: "127.0.0.1:0" }',
        'consumer: { durable: pm-agg-it, ack_wait: 10s }',
        'ownership: { heartbeat_interval: 100ms, dead_after: 1s, discovery_interval: 200ms }',
        `remote_write: [{ url: "${prom.url}/api/v1/write", batch_deadline: 50ms }]`,
      ].join('\n'),
    });
    const agg = await startAggregator(cfg, { log: silentLogger(), pendingRefreshMs: 200, pullExpiresMs: 1000 });
    let nc: NatsConnection | undefined;
    try {
      nc = await connect({ servers: nats.url });
      const js = nc.jetstream();
      const startNs = BigInt(Date.now() - 500) * 1_000_000n;
      const batch = probemesh.v1.ResultBatch.encode({
        prober: 'test',
        zone: 'z-it',
        seq: toULong(1n),
        results: [
          { target: 'https://e2e.example/ok', module: 'http_2xx', prober: 'test', zone: 'z-it', startUnixNano: toULong(startNs), success: true, durationNs: toULong(42_000_000n), httpStatusCode: 200, httpVersion: 2, labels: { team: 'sre' } },
          { target: 'https://e2e.example/down', module: 'http_2xx', prober: 'test', zone: 'z-it', startUnixNano: toULong(startNs), success: false, failureCode: 'connect_refused', durationNs: toULong(1_000_000n) },
        ],
      }).finish();
      await js.publish(resultsSubject('test'), batch, { msgID: 'test-boot-1' });
      // plus one undecodable message, which must be terminated and not block the stream
      await js.publish(resultsSubject('test'), new Uint8Array([0xff, 0xff, 0xff]), { msgID: 'test-boot-2' });

      const rows = await eventually('probe_success from the aggregator', async () => {
        const r = await promQuery(prom, 'probe_success{zone="z-it"}');
        return r.length === 2 ? r : undefined;
      });
      assert.deepEqual(
        rows.map((r) => [r.metric.instance, r.metric.job, r.metric.prober, r.metric.module, r.metric.team ?? '', r.value]).sort(),
        [
          ['https://e2e.example/down', 'probemesh', 'test', 'http_2xx', '', 0],
          ['https://e2e.example/ok', 'probemesh', 'test', 'http_2xx', 'sre', 1],
        ],
      );
      const failure = await promQuery(prom, 'probe_failure_info{zone="z-it"}');
      assert.deepEqual(failure.map((r) => r.metric.failure_code), ['connect_refused']);
      const status = await promQuery(prom, 'probe_http_status_code{zone="z-it"}');
      assert.deepEqual(status.map((r) => r.value), [200]);

      const jsm = await nc.jetstreamManager();
      const info = await eventually('all messages acked', async () => {
        const i = await jsm.consumers.info(STREAM_RESULTS, proberConsumerName('pm-agg-it', 'test'));
        return i.num_ack_pending === 0 && i.num_pending === 0 && i.delivered.stream_seq >= 2 ? i : undefined;
      });
      assert.equal(info.num_ack_pending, 0);
      assert.equal(info.num_redelivered, 0);

      const metrics = await (await fetch(`${agg.httpUrl}/metrics`)).text();
      assert.match(metrics, /probemesh_aggregator_results_received_total 2\n/);
      assert.match(metrics, /probemesh_aggregator_messages_dropped_total\{reason="decode"\} 1\n/);
      // 7 result samples + 2 × 14 of the duration histogram (11 buckets, +Inf, _sum, _count)
      assert.match(metrics, /probemesh_aggregator_samples_sent_total\{endpoint="http:\/\/127\.0\.0\.1:\d+\/api\/v1\/write"\} 35\n/);
      assert.match(metrics, /probemesh_aggregator_owned_probers 1\n/);
      assert.match(metrics, /probemesh_aggregator_remote_write_requests_total\{endpoint="[^"]+",status="204"\} \d+\n/);
      assert.match(metrics, /probemesh_aggregator_pending_messages 0\n/);
    } finally {
      await nc?.close();
      await agg.stop();
    }
  });
  test('nothing lost: a batch held while the endpoint fails is redelivered to the next aggregator after stop()', async () => {
    // An endpoint that always answers 503 (Prometheus "down").
    let attempts = 0;
    const down: Server = createServer((req, res) => {
      attempts++;
      req.resume();
      res.writeHead(503).end('unavailable');
    });
    await new Promise<void>((r) => down.listen(0, '127.0.0.1', r));
    const downUrl = `http://127.0.0.1:${(down.address() as AddressInfo).port}/api/v1/write`;
    const config = (url: string) =>
      loadConfig(aggregatorConfigSchema, {
        env: {},
        text: `id: agg-nl\nnats: { servers: ["${nats.url}"] }\nhttp: { listen: "127.0.0.1:0" }\nconsumer: { durable: pm-agg-nl, ack_wait: 2s }\nownership: { heartbeat_interval: 100ms, dead_after: 1s, discovery_interval: 200ms }\nremote_write: [{ url: "${url}", batch_deadline: 20ms, min_backoff: 20ms, max_backoff: 100ms }]\n`,
      });
    const nc = await connect({ servers: nats.url });
    const jsm = await nc.jetstreamManager();
    try {
      const a = await startAggregator(config(downUrl), { log: silentLogger(), stopGraceMs: 200, pullExpiresMs: 1000 });
      const startNs = BigInt(Date.now() - 200) * 1_000_000n;
      await nc.jetstream().publish(
        resultsSubject('nl'),
        probemesh.v1.ResultBatch.encode({ prober: 'nl', zone: 'z-nl', results: [{ target: 'https://nl.example/', module: 'http_2xx', startUnixNano: toULong(startNs), success: true, durationNs: toULong(5_000_000n) }] }).finish(),
        { msgID: 'nl-boot-1' },
      );
      await eventually('retries against the failing endpoint', async () => (attempts >= 3 ? true : undefined));
      // The consumer of prober "nl" holds its one batch.
      const held = await eventually('the batch held', async () => {
        const i = await jsm.consumers.info(STREAM_RESULTS, proberConsumerName('pm-agg-nl', 'nl'));
        return i.num_ack_pending === 1 ? i : undefined;
      });
      const before = attempts;
      await eventually('more retries', async () => (attempts > before + 2 ? true : undefined));
      assert.equal((await jsm.consumers.info(STREAM_RESULTS, held.name)).num_ack_pending, 1, 'messages stay unacked while retrying');
      assert.equal(held.num_pending, 0);
      await a.stop();
      assert.deepEqual(await promQuery(prom, 'probe_success{zone="z-nl"}'), []);

      const b = await startAggregator(config(`${prom.url}/api/v1/write`), { log: silentLogger(), pullExpiresMs: 1000 });
      try {
        const rows = await eventually('the held sample written by the second aggregator', async () => {
          const r = await promQuery(prom, 'probe_success{zone="z-nl"}');
          return r.length === 1 ? r : undefined;
        });
        assert.equal(rows[0]!.value, 1);
        await eventually('acked', async () => ((await jsm.consumers.info(STREAM_RESULTS, proberConsumerName('pm-agg-nl', 'nl'))).num_ack_pending === 0 ? true : undefined));
      } finally {
        await b.stop();
      }
    } finally {
      await nc.close();
      await new Promise<void>((r) => down.close(() => r()));
    }
  });
});
