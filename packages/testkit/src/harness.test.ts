/** Tests of the integration harness itself, against the real binaries. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { connect, StringCodec } from 'nats';
import {
  findBinary,
  MissingBinaryError,
  pidAlive,
  PrometheusApiError,
  Procs,
  refusedUrl,
  sampleTimeMs,
  sampleValue,
  startHttpTargets,
  startNats,
  startNatsCluster,
  startPrometheus,
  waitFor,
} from './index';

const run = promisify(execFile);
const sc = StringCodec();

describe('waitFor', () => {
  test('returns the first value that is not undefined/false', async () => {
    let n = 0;
    const v = await waitFor(async () => (++n >= 3 ? `after ${n}` : undefined), { intervalMs: 5, what: 'three calls' });
    assert.equal(v, 'after 3');
  });

  test('times out naming what it waited for and the last error', async () => {
    const err = await waitFor(
      async () => {
        throw new Error('boom');
      },
      { timeoutMs: 60, intervalMs: 10, what: 'the thing' },
    ).then(
      () => undefined,
      (e: Error) => e,
    );
    assert.ok(err instanceof Error);
    assert.equal(err.message, 'timed out after 60ms waiting for the thing; last error: boom');
  });
});

describe('binaries', () => {
  test('a missing binary names its Debian package and setup.sh', () => {
    const err = (() => {
      try {
        findBinary('pm-no-such-binary', 'pm-no-such-package');
        return undefined;
      } catch (e) {
        return e;
      }
    })();
    assert.ok(err instanceof MissingBinaryError);
    assert.equal(err.code, 'PM_TEST_MISSING_BINARY');
    assert.match(err.message, /Debian package 'pm-no-such-package' is missing/);
    assert.match(err.message, /scripts\/setup\.sh/);
  });
});

describe('Procs', () => {
  test('tracks children, stops them by PID, reports none alive', async () => {
    const procs = new Procs();
    const a = procs.spawn('sleep', ['30'], { name: 'sleep-a' });
    const b = procs.spawn('sleep', ['30'], { name: 'sleep-b' });
    assert.deepEqual(
      procs.alive().map((p) => p.name),
      ['sleep-a', 'sleep-b'],
    );
    a.kill('SIGKILL');
    assert.deepEqual(await a.exited, { code: null, signal: 'SIGKILL' });
    const info = await b.stop(1_000);
    assert.equal(info.signal, 'SIGTERM');
    assert.deepEqual(procs.alive(), []);
    assert.equal(pidAlive(a.pid), false);
  });

  test('children die with the test process (parent-death signal)', async (t) => {
    if (!existsSync('/usr/bin/setpriv') && !existsSync('/bin/setpriv')) {
      t.skip('util-linux setpriv not installed: children outlive a killed test process');
      return;
    }
    const procsJs = join(__dirname, 'procs.js');
    const script = `const p = require(${JSON.stringify(procsJs)}).spawnChild('sleep', ['60'], { name: 's' }); console.log(p.pid); setInterval(() => {}, 1000);`;
    const procs = new Procs();
    const parent = procs.spawn(process.execPath, ['-e', script], { name: 'parent' });
    const childPid = await waitFor(async () => Number(parent.output().trim()) || undefined, { what: 'grandchild pid' });
    assert.equal(pidAlive(childPid), true);
    parent.kill('SIGKILL');
    await parent.exited;
    await waitFor(async () => !pidAlive(childPid), { timeoutMs: 5_000, what: `sleep ${childPid} to die with its parent` });
  });
});

describe('nats-server', () => {
  test('single node with JetStream: KV put/get, then stop leaves no process and no dir', async (t) => {
    const procs = new Procs();
    const t0 = Date.now();
    const nats = await startNats({ procs });
    const startMs = Date.now() - t0;
    assert.match(nats.url, /^nats:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(nats.url, `nats://127.0.0.1:${nats.port}`);
    assert.equal(pidAlive(nats.pid), true);
    const nc = await connect({ servers: nats.url });
    try {
      const kv = await nc.jetstream().views.kv('harness_test', { history: 3 });
      const rev = await kv.put('greeting', sc.encode('hello'));
      assert.equal(rev, 1);
      const e = await kv.get('greeting');
      assert.equal(e?.string(), 'hello');
      assert.equal(e?.revision, 1);
      const varz = JSON.parse(await (await fetch(`${nats.monitorUrl}/varz`)).text()) as { host: string; port: number; jetstream?: unknown };
      assert.equal(varz.host, '127.0.0.1');
      assert.equal(varz.port, nats.port);
    } finally {
      await nc.close();
    }
    const pid = nats.pid;
    await nats.stop();
    assert.equal(pidAlive(pid), false);
    assert.equal(existsSync(nats.dir), false);
    assert.deepEqual(procs.alive(), []);
    t.diagnostic(`nats start ${startMs}ms`);
  });

  test('restart keeps the port and the JetStream data', async () => {
    await using nats = await startNats();
    const nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    try {
      const kv = await nc.jetstream().views.kv('persist');
      await kv.put('k', sc.encode('v1'));
      const oldPid = nats.pid;
      nats.kill('SIGKILL');
      await nats.restart();
      assert.notEqual(nats.pid, oldPid);
      assert.equal(pidAlive(oldPid), false);
      const e = await waitFor(async () => (await nc.jetstream({ timeout: 1_000 }).views.kv('persist')).get('k'), { timeoutMs: 10_000, what: 'KV after restart' });
      assert.equal(e?.string(), 'v1');
    } finally {
      await nc.close();
    }
  });
});

describe('prometheus', () => {
  test('starts ready, answers queries, rejects bad PromQL, restarts on the same port', async (t) => {
    const procs = new Procs();
    const t0 = Date.now();
    const prom = await startPrometheus({ procs });
    t.diagnostic(`prometheus start ${Date.now() - t0}ms`);
    try {
      assert.equal(prom.url, `http://127.0.0.1:${prom.port}`);
      assert.equal(prom.writeUrl, `${prom.url}/api/v1/write`);
      const up = await prom.query('up');
      assert.ok(Array.isArray(up));
      assert.equal(up.length, 0, 'no scrape jobs configured');
      const one = await prom.query('vector(42)');
      assert.equal(one.length, 1);
      assert.equal(one[0]?.value[1], '42');
      assert.equal(sampleValue(one[0]!), 42);
      assert.ok(Math.abs(sampleTimeMs(one[0]!) - Date.now()) < 60_000);
      const at = await prom.query('time()', new Date(1_700_000_000_000)).catch((e: Error) => e);
      assert.match(String(at), /returned a scalar, expected a vector/);
      assert.deepEqual((await prom.query('vector(time())', 1_700_000_000))[0]?.value, [1_700_000_000, '1700000000']);
      await assert.rejects(prom.query('sum('), (err: unknown) => err instanceof PrometheusApiError && err.errorType === 'bad_data' && /parse error/.test(err.message));
      await assert.rejects(prom.query('up[5m]'), /returned a matrix, expected a vector/);
      assert.deepEqual(await prom.queryMatrix('up[5m]'), []);
      assert.deepEqual(await prom.series('up'), []);

      const cfg = await prom.api<{ yaml: string }>('/api/v1/status/config');
      assert.match(cfg.yaml, /out_of_order_time_window: 30m/);
      const flags = await prom.api<Record<string, string>>('/api/v1/status/flags');
      assert.equal(flags['web.enable-remote-write-receiver'], 'true');
      assert.equal(flags['web.listen-address'], `127.0.0.1:${prom.port}`);

      const promtool = findBinary('promtool', 'prometheus');
      const { stdout } = await run(promtool, ['check', 'config', join(prom.dir, 'prometheus.yml')]);
      assert.match(stdout, /SUCCESS/);

      const oldPid = prom.pid;
      const t1 = Date.now();
      await prom.restart();
      t.diagnostic(`prometheus restart ${Date.now() - t1}ms`);
      assert.notEqual(prom.pid, oldPid);
      assert.equal(pidAlive(oldPid), false);
      assert.equal((await prom.query('vector(1)'))[0]?.value[1], '1');
    } finally {
      await prom.stop();
    }
    assert.equal(existsSync(prom.dir), false);
    assert.deepEqual(procs.alive(), []);
  });
});

describe('nats cluster', () => {
  test('3 nodes: R3 stream survives kill -9 of its leader; the node rejoins after restart', async (t) => {
    const procs = new Procs();
    const t0 = Date.now();
    const cluster = await startNatsCluster(3, { procs });
    t.diagnostic(`nats cluster(3) start ${Date.now() - t0}ms`);
    try {
      assert.equal(cluster.urls.length, 3);
      assert.equal(new Set(cluster.urls).size, 3);
      assert.deepEqual(
        cluster.nodes.map((n) => n.name),
        ['n1', 'n2', 'n3'],
      );
      const nc = await connect({ servers: cluster.urls, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
      try {
        const jsm = await nc.jetstreamManager();
        await jsm.streams.add({ name: 'HARNESS', subjects: ['harness.>'], num_replicas: 3 });
        const js = nc.jetstream();
        const ack1 = await js.publish('harness.a', sc.encode('one'));
        assert.equal(ack1.seq, 1);
        const info = await jsm.streams.info('HARNESS');
        assert.equal(info.config.num_replicas, 3);
        assert.equal(info.cluster?.replicas?.length, 2);
        const leaderName = info.cluster?.leader;
        const victim = cluster.nodes.findIndex((n) => n.name === leaderName);
        assert.ok(victim >= 0, `stream leader ${leaderName} is one of the nodes`);
        const node = cluster.nodes[victim]!;
        const pid = node.pid;
        node.kill('SIGKILL');
        await waitFor(async () => !pidAlive(pid), { what: 'killed node to exit' });

        const ack2 = await waitFor(async () => js.publish('harness.b', sc.encode('two'), { timeout: 2_000 }), { timeoutMs: 30_000, intervalMs: 250, what: 'publish after leader kill' });
        assert.equal(ack2.seq, 2);
        const after = await jsm.streams.info('HARNESS');
        assert.equal(after.state.messages, 2);
        assert.notEqual(after.cluster?.leader, leaderName);

        await cluster.restartNode(victim);
        assert.notEqual(node.pid, pid);
        const healed = await waitFor(
          async () => {
            const i = await jsm.streams.info('HARNESS');
            return (i.cluster?.replicas ?? []).filter((r) => r.current && !r.offline).length === 2 ? i : undefined;
          },
          { timeoutMs: 30_000, what: 'all replicas current after restart' },
        );
        assert.equal(healed.state.messages, 2);
      } finally {
        await nc.close();
      }
    } finally {
      await cluster.stop();
    }
    assert.equal(existsSync(cluster.dir), false);
    assert.deepEqual(procs.alive(), []);
  });
});

describe('http targets', () => {
  test('routes answer as documented and hits are counted', async () => {
    await using targets = await startHttpTargets();
    assert.match(targets.baseUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    const ok = await fetch(`${targets.baseUrl}/ok`);
    assert.equal(ok.status, 200);
    assert.equal(await ok.text(), 'ok');
    const fail = await fetch(`${targets.baseUrl}/fail`);
    assert.equal(fail.status, 500);
    await fail.text();
    const teapot = await fetch(`${targets.baseUrl}/status/418`);
    assert.equal(teapot.status, 418);
    await teapot.text();
    const redirect = await fetch(`${targets.baseUrl}/redirect`, { redirect: 'manual' });
    assert.equal(redirect.status, 302);
    assert.equal(redirect.headers.get('location'), '/ok');
    await redirect.text();
    const followed = await fetch(`${targets.baseUrl}/redirect`);
    assert.equal(followed.status, 200);
    assert.equal(await followed.text(), 'ok');
    const t0 = process.hrtime.bigint();
    const slow = await fetch(`${targets.baseUrl}/slow?ms=300`);
    const firstByteMs = Number(process.hrtime.bigint() - t0) / 1e6;
    assert.equal(slow.status, 200);
    assert.equal(await slow.text(), 'slow');
    assert.ok(firstByteMs >= 295, `first byte after ${firstByteMs}ms`);
    assert.equal(targets.hits('/ok'), 2);
    assert.equal(targets.hits('/redirect'), 2);
    assert.equal(targets.hits('/slow'), 1);
    assert.equal(targets.hits('/nope'), 0);
  });

  test('close() does not wait for a pending slow request', async () => {
    const targets = await startHttpTargets();
    const pending = fetch(`${targets.baseUrl}/slow?ms=60000`).then(
      () => 'answered',
      () => 'aborted',
    );
    await waitFor(async () => targets.hits('/slow') === 1, { what: 'slow request to arrive' });
    const t0 = Date.now();
    await targets.close();
    assert.ok(Date.now() - t0 < 1_000);
    assert.equal(await pending, 'aborted');
  });

  test('refusedUrl is refused', async () => {
    const url = await refusedUrl('/x');
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/x$/);
    const err = await fetch(url).then(
      () => undefined,
      (e: Error & { cause?: { code?: string } }) => e,
    );
    assert.equal(err?.cause?.code, 'ECONNREFUSED');
  });
});
