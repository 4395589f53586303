/**
 * Integration: a real nats-server (private, random port), a real coordinator, the
 * real gRPC client; a prober simulated by publishing heartbeats.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { KV_ASSIGNMENTS, KV_TARGETS, loadConfig, silentLogger, targetId, toBigInt, toNumber, toULong } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import { connect, KV, NatsConnection } from 'nats';
import { createAdminClient } from './client';
import { coordinatorConfigSchema } from './config';
import { RunningCoordinator, startCoordinator } from './coordinator';
import { NatsServer, startNats } from '@probemesh/testkit';

let nats: NatsServer;
let nc: NatsConnection;
let assignments: KV;

before(async () => {
  nats = await startNats();
  nc = await connect({ servers: nats.url });
  assignments = await nc.jetstream().views.kv(KV_ASSIGNMENTS, { history: 1 });
});

after(async () => {
  await nc?.drain();
  await nats?.stop();
});

function config() {
  return loadConfig(coordinatorConfigSchema, {
    env: {},
    text: `
id: c1
nats: { servers: ["${nats.url}"] }
grpc: { listen: "127.0.0.1:0" }
http: { listen: "127.0.0.1:0" }
dead_after: 1s
rebalance_delay: 100ms
`,
  });
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function assignmentOf(prober: string): Promise<probemesh.v1.Assignment | undefined> {
  const e = await assignments.get(prober);
  return e && e.operation === 'PUT' ? probemesh.v1.Assignment.decode(e.value) : undefined;
}

function heartbeats(prober: string, zone: string): { stop(): void; lastSentMs: () => number } {
  let last = 0;
  const send = () => {
    last = Date.now();
    nc.publish(`pm.heartbeat.${prober}`, probemesh.v1.Heartbeat.encode({ prober, zone, region: 'r1', capacity: 1, version: 'test', sentUnixNano: toULong(BigInt(Date.now()) * 1_000_000n) }).finish());
  };
  send();
  const t = setInterval(send, 200);
  return { stop: () => clearInterval(t), lastSentMs: () => last };
}

test('coordinator: targets, membership, assignments, restart', async (t) => {
  let coord: RunningCoordinator = await startCoordinator(config(), { log: silentLogger() });
  let client = createAdminClient(coord.grpcAddress);
  t.after(async () => {
    client.close();
    await coord.stop();
  });
  assert.match(coord.grpcAddress, /^127\.0\.0\.1:\d+$/);
  assert.notEqual(coord.grpcAddress, '127.0.0.1:0');

  // AddTarget → ListTargets shows it, with defaults applied.
  const url = 'https://api.example.com/health';
  const id = targetId('http_2xx', url);
  const added = await client.addTarget({ url, labels: { team: 'payments' } });
  assert.equal(added.replaced, false);
  assert.equal(added.target!.id, id);
  assert.equal(added.target!.intervalMs, 15_000);
  assert.equal(added.target!.timeoutMs, 5_000);
  assert.equal(added.target!.replication, 1);
  const created = toBigInt(added.target!.createdUnixNano);
  assert.ok(created > 1_600_000_000_000_000_000n);
  const again = await client.addTarget({ url, labels: { team: 'payments' }, intervalMs: 1000 });
  assert.equal(again.replaced, true);
  assert.equal(toBigInt(again.target!.createdUnixNano), created, 'created time kept on replace');
  assert.ok(toBigInt(again.target!.updatedUnixNano) >= created);
  const listed = await client.listTargets({});
  assert.deepEqual(listed.targets.map((x) => [x.id, x.url, x.module, x.intervalMs, x.timeoutMs, x.labels]), [[id, url, 'http_2xx', 1000, 800, { team: 'payments' }]]);
  assert.equal((await client.listTargets({ module: 'tcp_connect' })).targets.length, 0);

  // Bad input → INVALID_ARGUMENT naming the field; nothing stored.
  await assert.rejects(client.addTarget({ url: 'not a url' }), (e: { code: number; details: string }) => e.code === status.INVALID_ARGUMENT && e.details.startsWith('url:'));
  await assert.rejects(client.addTarget({ url: 'http://a/', labels: { zone: 'x' } }), (e: { code: number; details: string }) => e.code === status.INVALID_ARGUMENT && e.details.startsWith('labels.zone:'));
  await assert.rejects(client.removeTarget({ url: 'https://nope.example.com/' }), (e: { code: number }) => e.code === status.NOT_FOUND);
  assert.equal((await client.listTargets({})).targets.length, 1);

  // A prober heartbeats → it gets an assignment with the target.
  let p1 = heartbeats('p1', 'a');
  const first = await waitFor('assignment for p1 with the target', async () => {
    const a = await assignmentOf('p1');
    return a && a.targets.some((x) => x.id === id) ? a : undefined;
  });
  assert.ok(toBigInt(first.epoch) >= 1n);
  assert.equal(first.coordinator, 'c1');
  const probers = await client.listProbers({});
  assert.equal(probers.probers.length, 1);
  assert.equal(probers.probers[0]!.heartbeat!.prober, 'p1');
  assert.equal(probers.probers[0]!.state, 'alive');
  assert.equal(probers.probers[0]!.assignedTargets, 1);
  assert.ok(toBigInt(probers.probers[0]!.lastSeenUnixNano) > 0n);
  assert.equal(toBigInt(probers.epoch), toBigInt(first.epoch));

  // A target written to KV by someone else (another coordinator, a tool) is picked up.
  const otherUrl = 'https://other.example.com/';
  const otherId = targetId('http_2xx', otherUrl);
  const kvTargets = await nc.jetstream().views.kv(KV_TARGETS);
  await kvTargets.put(otherId, probemesh.v1.Target.encode({ id: otherId, url: otherUrl, module: 'http_2xx', intervalMs: 2000, timeoutMs: 1000, replication: 1 }).finish());
  const both = await waitFor('assignment with both targets', async () => {
    const a = await assignmentOf('p1');
    return a && a.targets.length === 2 ? a : undefined;
  });
  assert.ok(toBigInt(both.epoch) > toBigInt(first.epoch));
  assert.deepEqual((await client.listTargets({})).targets.map((x) => x.url), [url, otherUrl]);

  // RemoveTarget → a new assignment without it.
  const removed = await client.removeTarget({ id: otherId });
  assert.equal(removed.target!.url, otherUrl);
  const without = await waitFor('assignment without the removed target', async () => {
    const a = await assignmentOf('p1');
    return a && a.targets.length === 1 ? a : undefined;
  });
  assert.deepEqual(without.targets.map((x) => x.id), [id]);
  assert.ok(toBigInt(without.epoch) > toBigInt(both.epoch));

  // Metrics.
  const metrics = await (await fetch(`${coord.httpUrl}/metrics`)).text();
  assert.match(metrics, /^probemesh_coordinator_probers\{state="alive"\} 1$/m);
  assert.match(metrics, /^probemesh_coordinator_targets 1$/m);
  assert.match(metrics, /^probemesh_coordinator_targets_per_prober\{prober="p1"\} 1$/m);
  assert.match(metrics, new RegExp(`^probemesh_coordinator_assignment_epoch ${toNumber(without.epoch)}$`, 'm'));
  assert.match(metrics, /^probemesh_coordinator_is_leader 1$/m);
  assert.match(metrics, /^probemesh_coordinator_rebalances_total [1-9]/m);
  assert.match(metrics, /^process_cpu_seconds_total /m);

  // Heartbeats stop → dead after dead_after (1 s) → empty assignment.
  p1.stop();
  const silentSince = p1.lastSentMs();
  await waitFor('p1 dead', async () => ((await client.listProbers({})).probers[0]!.state === 'dead' ? true : undefined), 5000);
  const deadAfterMs = Date.now() - silentSince;
  t.diagnostic(`p1 declared dead ${deadAfterMs} ms after its last heartbeat (dead_after 1000 ms)`);
  assert.ok(deadAfterMs >= 900 && deadAfterMs < 2500, `dead after ${deadAfterMs} ms`);
  const emptied = await waitFor('empty assignment for dead p1', async () => {
    const a = await assignmentOf('p1');
    return a && a.targets.length === 0 ? a : undefined;
  });
  const lastEpoch = toBigInt(emptied.epoch);
  assert.ok(lastEpoch > toBigInt(without.epoch));

  // Restart on the same NATS: targets survive, epochs continue upward.
  client.close();
  await coord.stop();
  coord = await startCoordinator(config(), { log: silentLogger() });
  client = createAdminClient(coord.grpcAddress);
  assert.deepEqual((await client.listTargets({})).targets.map((x) => x.id), [id]);
  assert.equal(toBigInt((await client.listProbers({})).epoch), lastEpoch);
  p1 = heartbeats('p1', 'a');
  try {
    const back = await waitFor('assignment after restart', async () => {
      const a = await assignmentOf('p1');
      return a && a.targets.length === 1 ? a : undefined;
    });
    assert.ok(toBigInt(back.epoch) > lastEpoch, `epoch ${back.epoch} continues after ${lastEpoch}`);
    const after = await client.listProbers({});
    assert.equal(after.probers[0]!.state, 'alive');
    assert.equal(toBigInt(after.epoch), toBigInt(back.epoch));
  } finally {
    p1.stop();
  }
});

test('coordinator: a leaving prober loses its targets to the others at once', async (t) => {
  const coord = await startCoordinator(config(), { log: silentLogger() });
  const client = createAdminClient(coord.grpcAddress);
  const beats = [heartbeats('q1', 'a'), heartbeats('q2', 'b')];
  t.after(async () => {
    for (const b of beats) b.stop();
    client.close();
    await coord.stop();
  });
  const urls = Array.from({ length: 20 }, (_, i) => `https://leave${i}.example.com/`);
  for (const u of urls) await client.addTarget({ url: u, intervalMs: 1000 });
  const total = async () => ((await assignmentOf('q1'))?.targets.length ?? 0) + ((await assignmentOf('q2'))?.targets.length ?? 0);
  await waitFor('20 leave-targets spread over q1 and q2', async () => ((await total()) >= 20 && ((await assignmentOf('q2'))?.targets.length ?? 0) > 0 ? true : undefined));
  beats[1]!.stop();
  nc.publish('pm.heartbeat.q2', probemesh.v1.Heartbeat.encode({ prober: 'q2', zone: 'b', capacity: 1, leaving: true }).finish());
  const t0 = Date.now();
  await waitFor('q2 emptied', async () => ((await assignmentOf('q2'))?.targets.length === 0 ? true : undefined), 900);
  const q1 = (await assignmentOf('q1'))!;
  assert.ok(q1.targets.filter((x) => (x.url ?? '').startsWith('https://leave')).length === 20);
  t.diagnostic(`leaving prober emptied after ${Date.now() - t0} ms (before dead_after)`);
  const states = (await client.listProbers({})).probers.map((p) => [p.heartbeat!.prober, p.state]);
  assert.ok(states.some(([id, s]) => id === 'q2' && s === 'leaving'));
});
