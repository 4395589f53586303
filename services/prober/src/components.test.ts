import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig, silentLogger, toBigInt, toULong } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import { AssignmentWatcher } from './assignment';
import { proberConfigSchema } from './config';
import { HeartbeatSender } from './heartbeat';
import { ProbeModules } from './modules';
import { toScheduled } from './prober';
import { FailureCodes, outcomeDurationNs } from './probes';
import { FakeTime } from './testing/fake-time';

describe('ProbeModules', () => {
  it('knows http_2xx; an unknown module is a failed outcome, never a throw', async () => {
    const m = new ProbeModules();
    assert.ok(m.names().includes('http_2xx') && m.names().includes('http_post_2xx'), m.names().join());
    const time = new FakeTime();
    const o = await m.run({ id: 'x', url: 'http://127.0.0.1/', module: 'no_such_module', timeoutMs: 100, labels: {} }, new AbortController().signal, { clock: time, log: silentLogger() });
    assert.equal(o.success, false);
    assert.equal(o.failureCode, FailureCodes.UNKNOWN_MODULE);
    assert.match(o.failureMessage, /no_such_module/);
    assert.equal(outcomeDurationNs(o, 123n), 123n, 'no phases: the caller measurement is the duration');
  });
  it('caps the target timeout with the module timeout', () => {
    const m = new ProbeModules({ short: { prober: 'http', timeoutMs: 500 } });
    assert.equal(m.effectiveTimeoutMs('short', 2_000), 500);
    assert.equal(m.effectiveTimeoutMs('short', 300), 300);
    assert.equal(m.effectiveTimeoutMs('unknown', 300), 300);
  });
});

describe('toScheduled', () => {
  it('copies the target and repairs bad timings', () => {
    const m = new ProbeModules();
    const ok = toScheduled({ id: 'a', url: 'http://x/', module: 'http_2xx', intervalMs: 5_000, timeoutMs: 1_000, labels: { team: 'x' } }, m, silentLogger());
    assert.deepEqual(ok, { id: 'a', url: 'http://x/', module: 'http_2xx', intervalMs: 5_000, timeoutMs: 1_000, labels: { team: 'x' } });
    const bad = toScheduled({ id: 'b', url: 'http://x/', module: 'http_2xx', intervalMs: 10, timeoutMs: 0 }, m, silentLogger());
    assert.equal(bad.intervalMs, 100);
    assert.equal(bad.timeoutMs, 90);
  });
});

function assignment(epoch: bigint, ids: string[], prober = 'p1'): Uint8Array {
  return probemesh.v1.Assignment.encode({
    prober,
    epoch: toULong(epoch),
    targets: ids.map((id) => ({ id, url: `http://${id}/`, module: 'http_2xx', intervalMs: 1000, timeoutMs: 500 })),
  }).finish();
}

describe('AssignmentWatcher', () => {
  it('applies only newer epochs and exposes the held epoch', async () => {
    const applied: [bigint, string[]][] = [];
    const entries = [
      { operation: 'PUT' as const, value: assignment(3n, ['a', 'b']), revision: 1 },
      { operation: 'PUT' as const, value: assignment(2n, ['old']), revision: 2 },
      { operation: 'PUT' as const, value: assignment(3n, ['same']), revision: 3 },
      { operation: 'PUT' as const, value: new Uint8Array([0xff, 0xff, 0xff]), revision: 4 },
      { operation: 'PUT' as const, value: assignment(9n, ['x'], 'other'), revision: 5 },
      { operation: 'DEL' as const, value: new Uint8Array(), revision: 6 },
      { operation: 'PUT' as const, value: assignment(5n, ['c']), revision: 7 },
    ];
    let stopped = false;
    const feed = {
      watch: async ({ key }: { key: string }) => {
        assert.equal(key, 'p1');
        return {
          stop: () => (stopped = true),
          async *[Symbol.asyncIterator]() {
            for (const e of entries) yield e as never;
          },
        };
      },
    };
    const w = new AssignmentWatcher('p1', feed, (a, epoch) => applied.push([epoch, a.targets.map((t) => t.id ?? '')]), silentLogger());
    assert.equal(w.epoch, 0n);
    await w.start();
    await w.stop();
    assert.equal(stopped, true);
    assert.deepEqual(applied, [
      [3n, ['a', 'b']],
      [5n, ['c']],
    ]);
    assert.equal(w.epoch, 5n);
  });
});

describe('HeartbeatSender', () => {
  it('registers at start, beats every interval, re-registers every 10th beat, leaves at stop', async () => {
    const time = new FakeTime();
    const published: probemesh.v1.Heartbeat[] = [];
    const registered: probemesh.v1.Heartbeat[] = [];
    let epoch = 0n;
    const hb = new HeartbeatSender(
      { prober: 'p1', region: 'r', zone: 'z', capacity: 2, httpUrl: 'http://127.0.0.1:9115', appliedEpoch: () => epoch, targets: () => 42 },
      {
        publish: (subject, data) => {
          assert.equal(subject, 'pm.heartbeat.p1');
          published.push(probemesh.v1.Heartbeat.decode(data));
        },
        register: async (key, data) => {
          assert.equal(key, 'p1');
          registered.push(probemesh.v1.Heartbeat.decode(data));
        },
      },
      { intervalMs: 1_000, clock: time, log: silentLogger(), timers: time },
    );
    await hb.start();
    assert.equal(registered.length, 1);
    assert.equal(published.length, 1);
    epoch = 4n;
    await time.advance(9_000);
    assert.equal(published.length, 10);
    assert.equal(registered.length, 2, 'KV refreshed at the 10th beat');
    const last = published[9]!;
    assert.equal(last.prober, 'p1');
    assert.equal(last.region, 'r');
    assert.equal(last.zone, 'z');
    assert.equal(last.capacity, 2);
    assert.equal(last.targets, 42);
    assert.equal(toBigInt(last.appliedEpoch), 4n);
    assert.equal(last.httpUrl, 'http://127.0.0.1:9115');
    assert.equal(toBigInt(last.sentUnixNano), time.nowNs());
    assert.equal(last.leaving, false);
    await hb.stop();
    assert.equal(published.at(-1)!.leaving, true);
    assert.equal(registered.at(-1)!.leaving, true);
    assert.equal(time.pendingTimers, 0);
  });
});

describe('proberConfigSchema', () => {
  it('has the documented defaults', () => {
    const c = loadConfig(proberConfigSchema, { env: {} });
    assert.equal(c.region, 'local');
    assert.equal(c.zone, 'default');
    assert.equal(c.capacity, 1);
    assert.equal(c.http.listen, '0.0.0.0:9115');
    assert.equal(c.heartbeat_interval, 1_000);
    assert.deepEqual(c.publish, { max_batch: 500, max_delay: 200, max_buffered_results: 100_000 });
    assert.equal(c.max_concurrency, 1000);
    assert.ok(c.id.length > 0);
  });
  it('rejects unknown keys and bad values with their path', () => {
    assert.throws(() => loadConfig(proberConfigSchema, { text: 'publish:\n  max_batchh: 3\n', env: {} }), (e: unknown) => e instanceof ConfigError && e.issues.some((i) => i.path === 'publish.max_batchh'));
    assert.throws(() => loadConfig(proberConfigSchema, { text: 'capacity: 0\n', env: {} }), (e: unknown) => e instanceof ConfigError && e.issues[0]!.path === 'capacity');
    assert.throws(() => loadConfig(proberConfigSchema, { text: 'id: "a.b"\n', env: {} }), (e: unknown) => e instanceof ConfigError && e.issues[0]!.path === 'id');
    assert.throws(() => loadConfig(proberConfigSchema, { text: 'publish: { max_batch: 10, max_buffered_results: 5 }\n', env: {} }), /publish\.max_buffered_results/);
    const c = loadConfig(proberConfigSchema, { text: 'zone: a\n', env: { PROBEMESH_MAX_CONCURRENCY: '7', PROBEMESH_PUBLISH_MAX_DELAY: '50ms' } });
    assert.equal(c.max_concurrency, 7);
    assert.equal(c.publish.max_delay, 50);
  });
});
