/**
 * The aggregator pipeline against a real nats-server and a real Prometheus: nothing is
 * lost through a Prometheus outage or an aggregator killed with SIGKILL (counted
 * exactly in Prometheus), permanent rejections are dropped and counted without blocking
 * the rest, and removing a target ends its series with a stale marker.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { connect, NatsConnection } from 'nats';
import { KV_TARGETS, loadConfig, openKv, resultsSubject, silentLogger, targetId, toULong } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import { aggregatorConfigSchema, RunningAggregator, startAggregator } from '@probemesh/aggregator';
import { freePort, NatsServer, PrometheusServer, Procs, removeDir, spawnChild, startNats, startPrometheus, tempDir, waitFor } from '../harness';
import { makeBatch, metricValue, startPublisher } from './publisher';

const CLI = resolve(__dirname, '../../../services/cli/dist/main.js');

function aggregatorYaml(o: { id: string; nats: string; prom: string; durable: string; job: string; listen?: string; ackWait?: string; buffered?: number }): string {
  return [
    `id: ${o.id}`,
    `job: ${o.job}`,
    `nats: { servers: ["${o.nats}"] }`,
    `http: { listen: "${o.listen ?? '127.0.0.1:0'}" }`,
    `consumer: { durable: ${o.durable}, ack_wait: ${o.ackWait ?? '3s'}, fetch_batch: 64, max_buffered_samples: ${o.buffered ?? 400_000} }`,
    'ownership: { heartbeat_interval: 200ms, dead_after: 1s, discovery_interval: 300ms }',
    `remote_write: [{ url: "${o.prom}", batch_deadline: 100ms, min_backoff: 50ms, max_backoff: 1s, timeout: 5s, max_buffered_samples: ${o.buffered ?? 200_000} }]`,
    'log: { level: warn }',
    '',
  ].join('\n');
}

async function metricsText(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(3000) })).text();
}

describe('aggregator pipeline with real nats-server and Prometheus', () => {
  let nats: NatsServer;
  let prom: PrometheusServer;
  let nc: NatsConnection;
  const procs = new Procs();

  before(async () => {
    [nats, prom] = await Promise.all([startNats({ procs }), startPrometheus({ procs })]);
    nc = await connect({ servers: nats.url });
  });
  after(async () => {
    await nc?.close();
    await Promise.all([prom?.stop(), nats?.stop()]);
  });

  /** Sum over series of stored probe_success samples of a run. */
  async function storedResults(run: string): Promise<number> {
    const r = await prom.query(`sum(count_over_time(probe_success{run="${run}"}[1h]))`);
    return r.length ? Number(r[0]!.value[1]) : 0;
  }

  test('a sample Prometheus refuses for good is dropped and counted; the rest of its batch and the next batches are written', async () => {
    const agg = await startAggregator(loadConfig(aggregatorConfigSchema, { env: {}, text: aggregatorYaml({ id: 'agg-reject', nats: nats.url, prom: prom.writeUrl, durable: 'pm-rej', job: 'rej' }) }), {
      log: silentLogger(),
      pullExpiresMs: 1000,
    });
    try {
      const js = nc.jetstream();
      const now = Date.now();
      await js.publish(resultsSubject('rej'), makeBatch('rej', 1, now - 2000, 3, 'rej'), { msgID: 'rej-1' });
      await waitFor(async () => (await storedResults('rej')) === 3, { timeoutMs: 20_000, what: 'the first batch' });
      // One result 3 h old (Prometheus: "out of bounds", a permanent 400) among good ones.
      const mixed = probemesh.v1.ResultBatch.decode(makeBatch('rej', 2, now - 1000, 3, 'rej'));
      mixed.results.push(
        probemesh.v1.ProbeResult.create({ target: 'https://old.example/', targetId: 'old', module: 'http_2xx', prober: 'rej', zone: 'z1', startUnixNano: toULong(BigInt(now - 3 * 3600_000) * 1_000_000n), success: true, durationNs: toULong(2_000_000n), httpStatusCode: 200, httpVersion: 1.1, labels: { run: 'rej' } }),
      );
      await js.publish(resultsSubject('rej'), probemesh.v1.ResultBatch.encode(mixed).finish(), { msgID: 'rej-2' });
      await js.publish(resultsSubject('rej'), makeBatch('rej', 3, now - 500, 3, 'rej'), { msgID: 'rej-3' });
      await waitFor(async () => (await storedResults('rej')) === 9, { timeoutMs: 20_000, what: 'the good results of batches 2 and 3' });
      const text = await waitFor(async () => {
        const t = await metricsText(agg.httpUrl);
        return metricValue(t, 'probemesh_aggregator_samples_dropped_total', /reason="too_old"/) > 0 ? t : undefined;
      }, { what: 'the drop counted' });
      // The old result's own samples: success, duration, status, version + 14 histogram samples.
      assert.equal(metricValue(text, 'probemesh_aggregator_samples_dropped_total', /reason="too_old"/), 18);
      assert.ok(metricValue(text, 'probemesh_aggregator_request_splits_total') >= 1);
      assert.deepEqual(await prom.query('probe_success{instance="https://old.example/"}'), []);
      await waitFor(async () => metricValue(await metricsText(agg.httpUrl), 'probemesh_aggregator_held_messages') === 0, { what: 'all acked' });
    } finally {
      await agg.stop();
    }
  });

  test('removing a target from KV pm_targets ends its series with a stale marker', async () => {
    const kv = await openKv(nc, KV_TARGETS);
    const agg = await startAggregator(loadConfig(aggregatorConfigSchema, { env: {}, text: aggregatorYaml({ id: 'agg-stale', nats: nats.url, prom: prom.writeUrl, durable: 'pm-stale', job: 'stale' }) }), {
      log: silentLogger(),
      pullExpiresMs: 1000,
      staleGraceMs: 300,
    });
    try {
      const url = 'https://stale-t0.example/';
      const id = targetId('http_2xx', url);
      await kv.put(id, probemesh.v1.Target.encode({ id, url, module: 'http_2xx', intervalMs: 1000, timeoutMs: 500, replication: 1 }).finish());
      const batch = probemesh.v1.ResultBatch.decode(makeBatch('stalep', 1, Date.now() - 3000, 1, 'stale'));
      Object.assign(batch.results[0]!, { target: url, targetId: id });
      await nc.jetstream().publish(resultsSubject('stalep'), probemesh.v1.ResultBatch.encode(batch).finish(), { msgID: 'stale-1' });
      await waitFor(async () => (await prom.query(`probe_success{instance="${url}"}`)).length === 1, { timeoutMs: 20_000, what: 'the series in Prometheus' });
      await delay(500); // let the aggregator's KV watch see the target first
      await kv.delete(id);
      await waitFor(async () => metricValue(await metricsText(agg.httpUrl), 'probemesh_aggregator_stale_markers_total', /target_removed/) > 0, { timeoutMs: 10_000, what: 'stale markers queued' });
      // Without the marker the series would stay visible for 5 minutes (lookback).
      await waitFor(async () => (await prom.query(`probe_success{instance="${url}"}`)).length === 0, { timeoutMs: 10_000, what: 'the series to end' });
      assert.deepEqual(await prom.query(`probe_duration_seconds{instance="${url}"}`), []);
      assert.deepEqual(await prom.query(`probemesh_probe_duration_seconds_count{instance="${url}"}`), []);
      // The data before the marker is still there.
      const stored = await prom.queryMatrix(`probe_success{instance="${url}"}[10m]`);
      assert.equal(stored[0]?.values.length, 1);
    } finally {
      await agg.stop();
    }
  });

  test('two aggregators share the stream; kill -9 of one mid-stream loses nothing', async () => {
    const dir = await tempDir('pipeline-kill');
    const aggs: { id: string; url: string; proc: ReturnType<typeof spawnChild> }[] = [];
    const pub = startPublisher({ js: nc.jetstream(), probers: ['k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7', 'k8'], perBatch: 5, everyMs: 200, run: 'kill' });
    try {
      for (const id of ['agg-a', 'agg-b']) {
        const port = await freePort();
        const file = join(dir, `${id}.yml`);
        await writeFile(file, aggregatorYaml({ id, nats: nats.url, prom: prom.writeUrl, durable: 'pm-kill', job: 'kill', listen: `127.0.0.1:${port}` }));
        aggs.push({ id, url: `http://127.0.0.1:${port}`, proc: spawnChild(process.execPath, [CLI, 'aggregator', '--config', file], { name: id, procs }) });
      }
      const sent = async (url: string) => metricValue(await metricsText(url), 'probemesh_aggregator_samples_sent_total');
      const [a, b] = aggs as [(typeof aggs)[0], (typeof aggs)[0]];
      await waitFor(async () => (await sent(a.url)) > 0 && (await sent(b.url)) > 0, { timeoutMs: 30_000, what: 'both aggregators sending' });
      // Every prober subject in the stream (these 8 and the earlier tests') is consumed by exactly one of them.
      const subjects = Object.keys((await (await nc.jetstreamManager()).streams.info('PM_RESULTS', { subjects_filter: 'pm.results.>' })).state.subjects ?? {}).length;
      const owned = async () => [metricValue(await metricsText(a.url), 'probemesh_aggregator_owned_probers'), metricValue(await metricsText(b.url), 'probemesh_aggregator_owned_probers')];
      const [ownedA, ownedB] = await waitFor(async () => {
        const o = await owned();
        return o[0]! + o[1]! === subjects ? o : undefined;
      }, { timeoutMs: 10_000, what: `${subjects} prober subjects split between the two` });
      assert.ok(ownedA! > 0 && ownedB! > 0, `both own some (${ownedA} + ${ownedB})`);
      await delay(1500);
      a.proc.kill('SIGKILL');
      await a.proc.exited;
      const sentB = await sent(b.url);
      await delay(6000);
      await pub.stop();
      assert.equal(pub.errors, 0);
      const published = pub.published;
      await waitFor(async () => (await storedResults('kill')) === published, { timeoutMs: 30_000, intervalMs: 500, what: `all ${published} results in Prometheus` });
      assert.equal(await storedResults('kill'), published);
      assert.ok((await sent(b.url)) > sentB, 'the survivor took over');
      assert.equal(metricValue(await metricsText(b.url), 'probemesh_aggregator_owned_probers'), subjects);
    } finally {
      await pub.stop();
      for (const x of aggs) await x.proc.stop(5000);
      await removeDir(dir);
    }
  });

  test('steady load while Prometheus is down for 30 s: every published result is in Prometheus afterwards', async () => {
    const agg: RunningAggregator = await startAggregator(
      loadConfig(aggregatorConfigSchema, { env: {}, text: aggregatorYaml({ id: 'agg-outage', nats: nats.url, prom: prom.writeUrl, durable: 'pm-outage', job: 'outage', ackWait: '10s', buffered: 20_000 }) }),
      { log: silentLogger(), pullExpiresMs: 1000, pendingRefreshMs: 500 },
    );
    // 4 probers × 10 results every 200 ms = 200 results/s
    const pub = startPublisher({ js: nc.jetstream(), probers: ['o1', 'o2', 'o3', 'o4'], perBatch: 10, everyMs: 200, run: 'outage' });
    try {
      await waitFor(async () => (await storedResults('outage')) > 0, { timeoutMs: 20_000, what: 'results flowing' });
      await delay(3000);
      await prom.shutdown();
      await delay(30_000);
      const during = await metricsText(agg.httpUrl);
      // Memory stays bounded: the queue holds at most its bound (+ one pull), the rest waits in JetStream.
      assert.ok(metricValue(during, 'probemesh_aggregator_queue_samples') <= 20_000 + 64 * 10 * 21, `queue ${metricValue(during, 'probemesh_aggregator_queue_samples')}`);
      assert.ok(metricValue(during, 'probemesh_aggregator_pending_messages') > 0, 'a backlog waits in JetStream');
      assert.ok(metricValue(during, 'probemesh_aggregator_samples_retried_total') > 0);
      await prom.restart();
      await delay(3000);
      await pub.stop();
      assert.equal(pub.errors, 0);
      const published = pub.published;
      assert.ok(published >= 200 * 35, `published ${published}`);
      await waitFor(async () => (await storedResults('outage')) === published, { timeoutMs: 60_000, intervalMs: 1000, what: `all ${published} results in Prometheus` });
      // Nothing of this run dropped; a new consumer group replays the whole stream, so the
      // first test's too-old result (18 samples) is refused again, and only that — besides
      // the native histograms of the first requests: this Prometheus runs without
      // --enable-feature=native-histograms, so `native_histograms: auto` stops sending them.
      const text = await metricsText(agg.httpUrl);
      assert.equal(metricValue(text, 'probemesh_aggregator_samples_dropped_total', /reason="too_old"/), 18);
      assert.equal(metricValue(text, 'probemesh_aggregator_samples_dropped_total', /reason="(?!too_old"|native_histograms_disabled")/), 0);
    } finally {
      await pub.stop();
      await agg.stop();
    }
  });
});
