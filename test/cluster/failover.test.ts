/**
 * Failover on a real 3-node NATS cluster (issue 5): kill -9 a prober, rejoin, drain,
 * kill the leader coordinator, kill a NATS node with a fenced prober on it. One mesh,
 * steps in order; every figure is printed as a `# ` line.
 *
 * Mesh: coordinator c1 (child process, leader) + c2 (in-process standby); probers p1,
 * p2 (in-process, zones a, b) and p3 (child process, zone c); 300 targets at 1 s on a
 * local HTTP server; heartbeat 500 ms, dead_after 1.5 s. Bounds asserted are the
 * issue's (5 s), not the goals: the 2-core machine is shared.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createAdminClient, RunningCoordinator } from '@probemesh/coordinator';
import { RunningProber } from '@probemesh/prober';
import { ChildProc, waitFor } from '../harness';
import { inProcessCoordinator, inProcessProber, keptLogger, Mesh, spawnCoordinator, spawnProber, startIsolatedNode, startMesh, stats, TIMING, waitAllFresh } from './mesh';

const TARGETS = 300;

describe('cluster failover (3 NATS nodes, 3 probers, 2 coordinators)', { timeout: 170_000 }, () => {
  let mesh: Mesh;
  let c1: { child: ChildProc; grpcAddress: string };
  let c2: RunningCoordinator;
  let p1: RunningProber;
  let p2: RunningProber;
  let p3: ChildProc;
  let ids: string[] = [];
  let owners = new Map<string, string>();
  const c2log = keptLogger('coordinator', 'c2', 'info', 2000);

  before(async () => {
    mesh = await startMesh(TARGETS);
    c1 = await spawnCoordinator(mesh, 'c1');
    const admin1 = createAdminClient(c1.grpcAddress);
    try {
      await waitFor(async () => (await admin1.getRing({}, { timeoutMs: 1000 })).leader === 'c1', { timeoutMs: 20_000, what: 'c1 to lead' });
      c2 = await inProcessCoordinator('c2', mesh.cluster.urls, c2log.log);
      assert.equal(c2.isLeader(), false, 'c2 starts as a standby');
      // Through the standby: AddTarget is forwarded to the leader.
      const admin2 = createAdminClient(c2.grpcAddress);
      try {
        for (const url of mesh.targetUrls) ids.push((await admin2.addTarget({ url, intervalMs: 1000, timeoutMs: 500 })).target!.id!);
      } finally {
        admin2.close();
      }
    } finally {
      admin1.close();
    }
    p1 = await inProcessProber('p1', 'a', mesh.cluster.urls);
    p2 = await inProcessProber('p2', 'b', mesh.cluster.urls);
    p3 = await spawnProber(mesh, 'p3', 'c');
    // Steady state: every target probed, by all three probers overall.
    await waitFor(
      () => {
        const o = new Map<string, string>();
        const since = Date.now() - 1500;
        for (const id of ids) {
          const r = mesh.results.between(id, since).at(-1);
          if (!r) return undefined;
          o.set(id, r.prober);
        }
        return new Set(o.values()).size === 3 ? o : undefined;
      },
      { timeoutMs: 40_000, intervalMs: 250, what: 'all targets probed by three probers' },
    );
    await new Promise((r) => setTimeout(r, 2000));
    owners = await waitAllFresh(mesh, ids, Date.now() - 1200);
  });

  after(async () => {
    await p1?.stop();
    await p2?.stop();
    await c2?.stop();
    await mesh?.close();
  });

  test('kill -9 of a prober: each of its targets is probed by another prober within 5 s; other targets do not move', async () => {
    const mine = ids.filter((id) => owners.get(id) === 'p3');
    const others = ids.filter((id) => owners.get(id) !== 'p3');
    assert.ok(mine.length > 30, `p3 owns ${mine.length} targets`);
    const killMs = Date.now();
    p3.kill('SIGKILL');
    await waitAllFresh(mesh, mine, killMs, 15_000);
    const sinceKill: number[] = [];
    const gaps: number[] = [];
    for (const id of mine) {
      const first = mesh.results.between(id, killMs).find((r) => r.prober !== 'p3')!;
      const lastOld = mesh.results.between(id, 0, killMs).at(-1);
      sinceKill.push(first.startMs - killMs);
      gaps.push(first.startMs - (lastOld?.startMs ?? killMs));
      assert.notEqual(first.prober, 'p3');
    }
    const k = stats(sinceKill);
    const g = stats(gaps);
    console.log(`# failover after kill -9 of p3 (${mine.length} targets, heartbeat ${TIMING.heartbeat}ms, dead_after ${TIMING.deadAfter}ms): kill→new result median ${k.median.toFixed(0)}ms p95 ${k.p95.toFixed(0)}ms max ${k.max.toFixed(0)}ms; gap between results median ${g.median.toFixed(0)}ms max ${g.max.toFixed(0)}ms (goal ≤ 3000, bound 5000)`);
    assert.ok(k.max <= 5000, `a target of p3 waited ${k.max} ms after the kill`);
    // Let a few more intervals pass: the others' targets stayed with their owners.
    await new Promise((r) => setTimeout(r, 1500));
    let movedOthers = 0;
    for (const id of others) {
      for (const r of mesh.results.between(id, killMs)) if (r.prober !== owners.get(id)) movedOthers++;
    }
    assert.equal(movedOthers, 0, 'targets of p1/p2 did not move');
    for (const id of mine) owners.set(id, mesh.results.between(id, killMs).at(-1)!.prober);
  });

  test('a rejoining prober gets back exactly its share (bounded movement)', async () => {
    const before = new Map(owners);
    const startMs = Date.now();
    p3 = await spawnProber(mesh, 'p3', 'c');
    const back = await waitFor(
      () => {
        const got = ids.filter((id) => mesh.results.between(id, startMs).some((r) => r.prober === 'p3'));
        return got.length > 30 && Date.now() - startMs > 4000 ? got : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250, what: 'p3 probing again' },
    );
    const settled = Date.now();
    await new Promise((r) => setTimeout(r, 1500));
    const now = await waitAllFresh(mesh, ids, settled);
    let moved = 0;
    for (const id of ids) if (now.get(id) !== before.get(id)) moved++;
    const ideal = TARGETS / 3;
    console.log(`# rejoin of p3: ${moved} targets moved (${back.length} now probed by p3), ideal ${ideal.toFixed(0)} (1/N of ${TARGETS}), ratio ${(moved / ideal).toFixed(2)}`);
    for (const id of ids) if (now.get(id) !== before.get(id)) assert.equal(now.get(id), 'p3', 'a moved target moved to the rejoined prober');
    assert.ok(moved <= 1.3 * ideal, `moved ${moved} > 1.3 × ${ideal}`);
    owners = now;
  });

  test('drain: every target of the drained prober keeps getting results (no gap above one interval), then it holds none', async () => {
    const mine = ids.filter((id) => owners.get(id) === 'p2');
    const admin = createAdminClient(c2.grpcAddress); // a standby: forwarded to c1
    try {
      const startMs = Date.now();
      const res = await admin.drainProber({ prober: 'p2' });
      assert.equal(res.movingTargets, mine.length);
      const drained = await waitFor(async () => {
        const p = (await admin.listProbers({})).probers.find((x) => x.heartbeat?.prober === 'p2');
        return p && p.assignedTargets === 0 && p.state === 'draining' ? Date.now() : undefined;
      }, { timeoutMs: 20_000, intervalMs: 100, what: 'p2 emptied by the drain' });
      await new Promise((r) => setTimeout(r, 1500));
      const endMs = Date.now();
      const gaps = mine.map((id) => mesh.results.maxGap(id, startMs, endMs));
      const s = stats(gaps);
      console.log(`# drain of p2 (${mine.length} targets, interval 1000ms): hand-off took ${drained - startMs}ms; largest gap between results per target median ${s.median.toFixed(0)}ms max ${s.max.toFixed(0)}ms`);
      assert.ok(s.max <= 1500, `a target went ${s.max} ms without results (interval 1000 ms + 500 ms scheduling slack)`);
      const late = mine.flatMap((id) => mesh.results.between(id, drained + 500).filter((r) => r.prober === 'p2'));
      assert.equal(late.length, 0, 'the drained prober stopped probing');
      const ring = await admin.getRing({});
      assert.equal(ring.nodes.find((n) => n.prober === 'p2')?.vnodes, 0, 'a draining prober is off the ring');
      const place = await admin.getPlacement({ id: mine[0]! });
      assert.ok(place.owners.length >= 1 && place.owners[0]!.prober !== 'p2' && /ring successor/.test(place.owners[0]!.reason ?? ''));

      const undrainMs = Date.now();
      const back = await admin.drainProber({ prober: 'p2', undrain: true });
      assert.equal(back.movingTargets, mine.length, 'undrain returns its share');
      await waitFor(() => mine.every((id) => mesh.results.between(id, undrainMs).some((r) => r.prober === 'p2')), { timeoutMs: 15_000, what: 'p2 probing its share again' });
      owners = await waitAllFresh(mesh, ids, Date.now());
    } finally {
      admin.close();
    }
  });

  test('kill -9 of the leader coordinator: the standby takes over within the lease, assignments continue, no target lost', async () => {
    const termBefore = c2.term();
    const killMs = Date.now();
    c1.child.kill('SIGKILL');
    const tookOver = await waitFor(() => (c2.isLeader() ? Date.now() : undefined), { timeoutMs: 15_000, intervalMs: 50, what: 'c2 to lead' });
    console.log(`# leader kill -9: standby c2 leads after ${tookOver - killMs}ms (lease ${TIMING.lease}ms, renew ${TIMING.renew}ms); term ${termBefore} → ${c2.term()}`);
    assert.ok(tookOver - killMs <= TIMING.lease + 2 * TIMING.renew + 1000, 'takeover within the lease (+ check period)');
    assert.ok(c2.term() > termBefore, 'term increments');
    // Assignments continue: a new target is placed and probed; a prober death is handled.
    const admin = createAdminClient(c2.grpcAddress);
    try {
      const added = await admin.addTarget({ url: `${mesh.targets.baseUrl}/ok?t=after-takeover`, intervalMs: 1000, timeoutMs: 500 });
      await waitAllFresh(mesh, [added.target!.id!], tookOver, 10_000);
      ids.push(added.target!.id!);
    } finally {
      admin.close();
    }
    await new Promise((r) => setTimeout(r, 1000));
    const endMs = Date.now();
    const gaps = stats(ids.slice(0, TARGETS).map((id) => mesh.results.maxGap(id, killMs, endMs)));
    console.log(`# during the leader change: largest gap between results per target median ${gaps.median.toFixed(0)}ms max ${gaps.max.toFixed(0)}ms`);
    assert.ok(gaps.max <= 2500, `a target went ${gaps.max} ms without results during the takeover`);
    owners = await waitAllFresh(mesh, ids, endMs - 1200);
  });

  test('kill -9 of one NATS node: the mesh continues (every target keeps being probed and delivered)', async () => {
    const node = mesh.cluster.nodes[2]!;
    const killMs = Date.now();
    node.kill('SIGKILL');
    await waitAllFresh(mesh, ids, killMs + 3000, 30_000);
    await new Promise((r) => setTimeout(r, 2000));
    const endMs = Date.now() - 1000;
    const delays = stats(ids.flatMap((id) => mesh.results.between(id, killMs, endMs).map((r) => r.seenMs - r.startMs)));
    const gaps = stats(ids.map((id) => mesh.results.maxGap(id, killMs, endMs)));
    console.log(`# NATS node n3 killed: largest gap between probe starts per target median ${gaps.median.toFixed(0)}ms max ${gaps.max.toFixed(0)}ms; result delivery delay median ${delays.median.toFixed(0)}ms max ${delays.max.toFixed(0)}ms`);
    assert.ok(gaps.max <= 2500, `a target went ${gaps.max} ms without being probed`);
    await mesh.cluster.restartNode(2);
    const events = c2log.lines.filter((l) => /"msg":"(elected leader|no longer leader|leader cannot start assigning[^"]*|assigning \(pm_assignments read\)|leadership transition failed)"/.test(l)).map((l) => /"msg":"([^"]+)"/.exec(l)![1]);
    console.log(`# c2 leadership over the run so far: ${events.length ? events.join(' → ') : 'no change'}`);
  });

  test('fencing: a prober cut off from NATS stops probing before its targets are re-probed elsewhere, and rejoins cleanly', async () => {
    const island = await startIsolatedNode(mesh);
    const p4log = keptLogger('prober', 'p4', 'debug');
    const p4 = await inProcessProber('p4', 'd', [island.url], p4log.log);
    try {
      // p4 gets its share once the leader sees its heartbeats; how fast is not what this
      // test is about (the wait is generous), but a leader that never assigns it is.
      const joinMs = Date.now();
      const p4Targets = await waitFor(() => {
        const got = ids.filter((id) => mesh.results.between(id, joinMs).some((r) => r.prober === 'p4'));
        return got.length > 20 && Date.now() - joinMs > 3000 ? got : undefined;
      }, { timeoutMs: 60_000, intervalMs: 250, what: 'p4 probing' }).catch(async (err: Error) => {
        const m = await fetch(`${p4.httpUrl}/metrics`).then((r) => r.text()).catch((e: Error) => e.message);
        const lines = m.split('\n').filter((l) => /^probemesh_prober_(targets|assignment_epoch|results_published_total|publish_errors_total|results_buffered)\b/.test(l));
        const admin = createAdminClient(c2.grpcAddress);
        const probers = await admin.listProbers({}).then((r) => JSON.stringify(r.probers.map((x) => ({ p: x.heartbeat?.prober, state: x.state, assigned: x.assignedTargets })))).catch((e: Error) => e.message).finally(() => admin.close());
        const c2lines = c2log.lines.filter((l) => /"level":(40|50|60)|elected|leader|assignments loaded|assigning/.test(l)).slice(-30);
        throw new Error(`${err.message}\np4 metrics: ${lines.join(' | ')}\nc2 (leader ${c2.isLeader()}, term ${c2.term()}) probers: ${probers}\nc2 log:\n${c2lines.join('\n')}\np4 log:\n${p4log.lines.slice(-30).join('\n')}`);
      });
      console.log(`# p4 (joined through the isolated node) probing ${p4Targets.length} targets ${Date.now() - joinMs}ms after it started (the wait asks for > 20 targets and >= 3 s)`);
      const cutMs = Date.now();
      island.kill('SIGKILL');
      await waitAllFresh(mesh, p4Targets, cutMs + 500, 15_000);
      const moved = stats(p4Targets.map((id) => (mesh.results.between(id, cutMs).find((r) => r.prober !== 'p4')?.startMs ?? Infinity) - cutMs));
      console.log(`# p4 cut off (its only NATS server killed): its ${p4Targets.length} targets re-probed by others after median ${moved.median.toFixed(0)}ms max ${moved.max.toFixed(0)}ms`);
      assert.ok(moved.max <= 5000, 'the cut-off prober\'s targets moved within 5 s');
      await new Promise((r) => setTimeout(r, 2000));

      await island.restart();
      const backMs = Date.now();
      await waitFor(() => ids.some((id) => mesh.results.between(id, 0).some((r) => r.prober === 'p4' && r.seenMs >= backMs)), { timeoutMs: 20_000, what: 'p4 publishing again' });
      await new Promise((r) => setTimeout(r, 3000));
      const fenceAfter = 3 * TIMING.heartbeat;
      const cutResults = p4Targets.flatMap((id) => mesh.results.between(id, cutMs, backMs).filter((r) => r.prober === 'p4'));
      const lastStart = Math.max(0, ...cutResults.map((r) => r.startMs - cutMs));
      const firstOther = moved.median;
      console.log(`# fencing: p4 published ${cutResults.length} results probed while cut off (kept: it still owned them), the last started ${lastStart.toFixed(0)}ms after the cut (fence_after ${fenceAfter}ms; others took over after ~${firstOther.toFixed(0)}ms)`);
      assert.ok(lastStart <= fenceAfter + 1000, `p4 started a probe ${lastStart} ms after the cut, later than fence_after + 1 s`);
      // Rejoining takes: reconnect, heartbeats seen by the leader again, a new assignment,
      // and the first probes spread over the interval; the results published right after
      // the restart are the ones buffered while cut off, so wait for probes started later.
      const rejoined = await waitFor(() => {
        const got = ids.filter((id) => mesh.results.between(id, backMs + 1000).some((r) => r.prober === 'p4'));
        return got.length > 0 ? got : undefined;
      }, { timeoutMs: 30_000, intervalMs: 250, what: 'p4 probing a share again after rejoining' });
      console.log(`# p4 rejoined: probing ${rejoined.length} targets ${Date.now() - backMs}ms after its NATS server came back`);
      assert.ok(rejoined.length > 0, 'p4 got a share again after rejoining');
    } finally {
      await p4.stop();
      await island.stop();
    }
  });
});
