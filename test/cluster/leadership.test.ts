/**
 * A coordinator elected while its assignments cannot be read must still take up the
 * leader's work once they can. Found by the failover test's fencing step: after a NATS
 * node was killed and restarted, the standby-turned-leader lost and re-won the lease
 * while JetStream was still recovering; loading `pm_assignments` failed, the transition
 * was only logged, and the coordinator went on holding the lease with no assignment
 * publisher: no prober that joined got anything, for as long as it stayed leader.
 *
 * Here the failure is made on purpose: a real nats-server, a lease held by a coordinator
 * that never renews it, and the `pm_assignments` bucket deleted just before the lease
 * expires and the coordinator under test takes over; the bucket comes back a moment
 * later.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { coordinatorConfigSchema, createAdminClient, RunningCoordinator, startCoordinator } from '@probemesh/coordinator';
import { KV_ASSIGNMENTS, KV_LEADER, loadConfig, toULong } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import { connect, NatsConnection } from 'nats';
import { NatsServer, startNats, waitFor } from '../harness';
import { keptLogger, TIMING } from './mesh';

let nats: NatsServer;
let nc: NatsConnection;

before(async () => {
  nats = await startNats();
  nc = await connect({ servers: nats.url });
});

after(async () => {
  await nc?.drain();
  await nats?.stop();
});

test('a coordinator elected while pm_assignments is unreadable starts assigning once it is readable again', { timeout: 60_000 }, async () => {
  const js = nc.jetstream();
  // A lease of a coordinator that is gone: never renewed, expires 1.5 s after it is seen.
  const leader = await js.views.kv(KV_LEADER, { history: 1 });
  await leader.put('leader', probemesh.v1.LeaderLease.encode({ coordinator: 'gone', grpcAddress: '127.0.0.1:1', term: toULong(1n), renewedUnixNano: toULong(BigInt(Date.now()) * 1_000_000n), leaseMs: 1500 }).finish());

  const kept = keptLogger('coordinator', 'c9', 'info');
  let coord: RunningCoordinator | undefined;
  let hb: NodeJS.Timeout | undefined;
  try {
    const yaml = [`id: c9`, `nats: { servers: ["${nats.url}"] }`, 'grpc: { listen: "127.0.0.1:0" }', 'http: { listen: "127.0.0.1:0" }', `dead_after: ${TIMING.deadAfter}ms`, `rebalance_delay: ${TIMING.rebalance}ms`, `leader: { lease: ${TIMING.lease}ms, renew_every: ${TIMING.renew}ms }`, 'log: { level: info }'].join('\n');
    coord = await startCoordinator(loadConfig(coordinatorConfigSchema, { text: yaml, env: {} }), { log: kept.log });
    assert.equal(coord.isLeader(), false, 'standby while the old lease runs');
    await (await nc.jetstreamManager()).streams.delete(`KV_${KV_ASSIGNMENTS}`);
    await waitFor(() => coord!.isLeader(), { timeoutMs: 15_000, intervalMs: 50, what: 'c9 to take over the expired lease' });
    await new Promise((r) => setTimeout(r, 500));
    await js.views.kv(KV_ASSIGNMENTS, { history: 1 });

    const admin = createAdminClient(coord.grpcAddress);
    try {
      await admin.addTarget({ url: 'http://127.0.0.1:9/after-takeover', intervalMs: 1000, timeoutMs: 500 });
    } finally {
      admin.close();
    }
    const send = () => nc.publish('pm.heartbeat.p9', probemesh.v1.Heartbeat.encode({ prober: 'p9', zone: 'a', region: 'r', capacity: 1, version: 'test', sentUnixNano: toULong(BigInt(Date.now()) * 1_000_000n) }).finish());
    send();
    hb = setInterval(send, 200);
    const assignments = await js.views.kv(KV_ASSIGNMENTS);
    const got = await waitFor(
      async () => {
        const e = await assignments.get('p9');
        const a = e && e.operation === 'PUT' ? probemesh.v1.Assignment.decode(e.value) : undefined;
        return a && a.targets.length === 1 ? a : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 100, what: 'an assignment for p9 from the new leader' },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; leader ${coord!.isLeader()}; coordinator log:\n${kept.lines.slice(-20).join('\n')}`);
    });
    assert.equal(got.coordinator, 'c9');
    assert.ok(coord.isLeader(), 'still the leader');
  } finally {
    if (hb) clearInterval(hb);
    await coord?.stop();
  }
});
