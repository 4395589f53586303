/**
 * End-to-end slice against a real nats-server (started here, JetStream, random port,
 * loopback) and real local HTTP targets: assignment in KV → probes → result batches in
 * the PM_RESULTS stream, heartbeats, /metrics, clean stop.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { NatsServer, startNats } from '@probemesh/testkit';
import { KV_ASSIGNMENTS, KV_PROBERS, loadConfig, openKv, silentLogger, STREAM_RESULTS, targetId, toBigInt, toULong } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import { connect, NatsConnection } from 'nats';
import { proberConfigSchema, RunningProber, startProber } from './index';

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('prober with a real nats-server', { timeout: 60_000 }, () => {
  let nats: NatsServer | undefined;
  let natsUrl = '';
  let nc: NatsConnection | undefined;
  let target: Server | undefined;
  let targetUrl = '';
  let prober: RunningProber | undefined;

  before(async () => {
    nats = await startNats();
    natsUrl = nats.url;
    nc = await connect({ servers: natsUrl });
    target = createServer((req, res) => {
      res.writeHead(req.url === '/fail' ? 503 : 200);
      res.end('ok');
    });
    await new Promise<void>((r) => target!.listen(0, '127.0.0.1', r));
    targetUrl = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
  });

  after(async () => {
    await prober?.stop();
    await nc?.close();
    target?.close();
    await nats?.stop();
  });

  it('probes its assignment, publishes batches, beats, serves /metrics and stops cleanly', async () => {
    const config = loadConfig(proberConfigSchema, {
      env: {},
      text: [
        'id: it-prober',
        'zone: zone-a',
        'region: r1',
        'capacity: 3',
        `nats: { servers: ["${natsUrl}"] }`,
        'http: { listen: "127.0.0.1:0" }',
        'heartbeat_interval: 100ms',
        'publish: { max_batch: 50, max_delay: 50ms }',
      ].join('\n'),
    });
    const beats: probemesh.v1.Heartbeat[] = [];
    const sub = nc!.subscribe('pm.heartbeat.it-prober', { callback: (_e, m) => beats.push(probemesh.v1.Heartbeat.decode(m.data)) });

    prober = await startProber(config, { log: silentLogger() });
    assert.equal(prober.id, 'it-prober');
    assert.match(prober.httpUrl, /^http:\/\/127\.0\.0\.1:\d+$/);

    const probers = await openKv(nc!, KV_PROBERS);
    const reg = probemesh.v1.Heartbeat.decode((await probers.get('it-prober'))!.value);
    assert.equal(reg.zone, 'zone-a');
    assert.equal(reg.region, 'r1');
    assert.equal(reg.capacity, 3);
    assert.equal(reg.httpUrl, prober.httpUrl);
    await until('heartbeats', () => (beats.length >= 3 ? true : undefined));
    assert.equal(toBigInt(beats[0]!.appliedEpoch), 0n);

    const t = (url: string, module = 'http_2xx'): probemesh.v1.ITarget => ({ id: targetId(module, url), url, module, intervalMs: 200, timeoutMs: 150, labels: { team: 'core' } });
    const okT = t(`${targetUrl}/ok`);
    const failT = t(`${targetUrl}/fail`);
    const unknownT = t(`${targetUrl}/ok`, 'no_such_module');
    const assignments = await openKv(nc!, KV_ASSIGNMENTS);
    await assignments.put('it-prober', probemesh.v1.Assignment.encode({ prober: 'it-prober', epoch: toULong(1n), targets: [okT, failT, unknownT], coordinator: 'test' }).finish());

    const jsm = await nc!.jetstreamManager();
    const results: probemesh.v1.IProbeResult[] = [];
    const msgIds: string[] = [];
    let seq = 1;
    const readBatches = async (): Promise<void> => {
      for (;;) {
        const m = await jsm.streams.getMessage(STREAM_RESULTS, { seq }).catch(() => undefined);
        if (!m) return;
        seq++;
        assert.equal(m.subject, 'pm.results.it-prober');
        msgIds.push(m.header.get('Nats-Msg-Id'));
        const b = probemesh.v1.ResultBatch.decode(m.data);
        assert.equal(b.prober, 'it-prober');
        assert.equal(b.zone, 'zone-a');
        results.push(...b.results);
      }
    };
    await until('results of all three targets, twice', async () => {
      await readBatches();
      const n = (id: string) => results.filter((r) => r.targetId === id).length;
      return n(okT.id!) >= 2 && n(failT.id!) >= 2 && n(unknownT.id!) >= 2 ? true : undefined;
    });

    const ok = results.find((r) => r.targetId === okT.id)!;
    assert.equal(ok.success, true, ok.failureMessage ?? undefined);
    assert.equal(ok.target, okT.url);
    assert.equal(ok.module, 'http_2xx');
    assert.equal(ok.prober, 'it-prober');
    assert.equal(ok.zone, 'zone-a');
    assert.equal(ok.httpStatusCode, 200);
    assert.equal(ok.httpVersion, 1.1);
    assert.equal(toBigInt(ok.epoch), 1n);
    assert.deepEqual(ok.labels, { team: 'core' });
    assert.deepEqual(ok.phases!.map((p) => p.name), ['resolve', 'connect', 'tls', 'processing', 'transfer']);
    const sum = ok.phases!.reduce((s, p) => s + toBigInt(p.durationNs), 0n);
    assert.equal(sum, toBigInt(ok.durationNs), 'phases add up to the duration');
    const start = toBigInt(ok.startUnixNano);
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    assert.ok(start > nowNs - 30_000_000_000n && start <= nowNs + 5_000_000n, 'start is a realtime ns timestamp');

    const fail = results.find((r) => r.targetId === failT.id)!;
    assert.equal(fail.success, false);
    assert.equal(fail.failureCode, 'http_status');
    assert.equal(fail.httpStatusCode, 503);
    const unknown = results.find((r) => r.targetId === unknownT.id)!;
    assert.equal(unknown.failureCode, 'unknown_module');

    assert.ok(msgIds.every((id) => /^it-prober-[0-9a-f]{12}-\d+$/.test(id)), `msgIDs ${msgIds.slice(0, 3)}`);
    const seqs = msgIds.map((id) => Number(id.split('-').at(-1)));
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'batch seqs 1, 2, 3, ... in stream order');

    await until('heartbeat with the applied epoch', () => beats.find((b) => toBigInt(b.appliedEpoch) === 1n && b.targets === 3));

    const metrics = await (await fetch(`${prober.httpUrl}/metrics`)).text();
    assert.match(metrics, /probemesh_prober_probes_total\{module="http_2xx",result="success"[^}]*\} [1-9]/);
    assert.match(metrics, /probemesh_prober_probes_total\{module="http_2xx",result="http_status"[^}]*\} [1-9]/);
    assert.match(metrics, /probemesh_prober_probes_total\{module="no_such_module",result="unknown_module"[^}]*\} [1-9]/);
    assert.match(metrics, /probemesh_prober_assignment_epoch\{[^}]*\} 1\n/);
    assert.match(metrics, /probemesh_prober_targets\{[^}]*\} 3\n/);
    assert.match(metrics, /probemesh_prober_scheduler_lag_seconds_count\{[^}]*\} [1-9]/);
    assert.match(metrics, /probemesh_prober_results_published_total\{[^}]*\} [1-9]/);
    assert.match(metrics, /process_cpu_user_seconds_total/);
    assert.match(metrics, /process_resident_memory_bytes/);

    // A stale epoch is ignored; a newer one replaces the targets.
    await assignments.put('it-prober', probemesh.v1.Assignment.encode({ prober: 'it-prober', epoch: toULong(1n), targets: [okT] }).finish());
    await assignments.put('it-prober', probemesh.v1.Assignment.encode({ prober: 'it-prober', epoch: toULong(2n), targets: [okT, failT] }).finish());
    await until('heartbeat with epoch 2', () => beats.find((b) => toBigInt(b.appliedEpoch) === 2n && b.targets === 2));

    await prober.stop();
    const stoppedAt = results.length;
    await until('leaving heartbeat', () => beats.find((b) => b.leaving));
    const left = probemesh.v1.Heartbeat.decode((await probers.get('it-prober'))!.value);
    assert.equal(left.leaving, true);
    await readBatches();
    assert.ok(results.length >= stoppedAt, 'buffered results flushed at stop');
    await assert.rejects(fetch(`${prober.httpUrl}/metrics`), 'HTTP closed');
    sub.unsubscribe();
    // The prober left nothing that keeps the process alive (only the test's own handles).
    const timers = (process as unknown as { getActiveResourcesInfo(): string[] }).getActiveResourcesInfo().filter((r) => r === 'Timeout');
    assert.ok(timers.length <= 2, `active timers after stop: ${timers.length}`);
  });

  it('leaves the limits of an existing PM_RESULTS alone (the coordinator and aggregators own them)', async () => {
    const jsm = await nc!.jetstreamManager();
    const before = await jsm.streams.info(STREAM_RESULTS);
    // An operator's limits, other than the prober's defaults (max_bytes 1 GiB, max_age 24h).
    await jsm.streams.update(STREAM_RESULTS, { ...before.config, max_bytes: -1, max_age: 7200e9 });
    const p = await startProber(loadConfig(proberConfigSchema, { env: {}, text: `id: limits-prober\nnats:\n  servers: ["${natsUrl}"]\nhttp:\n  listen: 127.0.0.1:0\nebpf:\n  enabled: false\n` }), { log: silentLogger() });
    try {
      const after = (await jsm.streams.info(STREAM_RESULTS)).config;
      assert.equal(after.max_bytes, -1, 'max_bytes kept');
      assert.equal(after.max_age, 7200e9, 'max_age kept');
    } finally {
      await p.stop();
    }
  });
});
