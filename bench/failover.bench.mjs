// Failover figures on a real 3-node NATS cluster (same mesh as test/cluster): several
// rounds of kill -9 of a prober child process (gap until each of its targets has a result
// from another prober), its rejoin (moved/ideal), and a drain/undrain (largest gap
// between results of the drained prober's targets). Heartbeat 500 ms, dead_after 1.5 s.
// Usage: npm run bench -- failover   (env PM_BENCH_ROUNDS, PM_BENCH_TARGETS)
import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const m = require(join(root, 'test/dist/cluster/mesh.js'));
const { waitFor } = require(join(root, 'test/dist/harness/index.js'));
const { createAdminClient } = require('@probemesh/coordinator');

const ROUNDS = Number(process.env.PM_BENCH_ROUNDS ?? 3);
const T = Number(process.env.PM_BENCH_TARGETS ?? 300);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const cpu0 = process.cpuUsage();

const mesh = await m.startMesh(T);
const out = { rounds: [], timing: m.TIMING, targets: T };
let c, p1, p2, p3;
try {
  c = await m.inProcessCoordinator('c1', mesh.cluster.urls);
  await waitFor(() => c.isLeader(), { timeoutMs: 20_000, what: 'leader' });
  const admin = createAdminClient(c.grpcAddress);
  const ids = [];
  for (const url of mesh.targetUrls) ids.push((await admin.addTarget({ url, intervalMs: 1000, timeoutMs: 500 })).target.id);
  p1 = await m.inProcessProber('p1', 'a', mesh.cluster.urls);
  p2 = await m.inProcessProber('p2', 'b', mesh.cluster.urls);
  p3 = await m.spawnProber(mesh, 'p3', 'c');
  await sleep(6000);
  let owners = await m.waitAllFresh(mesh, ids, Date.now() - 1100, 30_000);
  for (let round = 0; round < ROUNDS; round++) {
    const r = {};
    // kill -9 (a leave by death)
    const mine = ids.filter((id) => owners.get(id) === 'p3');
    const killMs = Date.now();
    p3.kill('SIGKILL');
    await m.waitAllFresh(mesh, mine, killMs, 20_000);
    const fromKill = mine.map((id) => mesh.results.between(id, killMs).find((x) => x.prober !== 'p3').startMs - killMs);
    const gaps = mine.map((id) => mesh.results.between(id, killMs).find((x) => x.prober !== 'p3').startMs - (mesh.results.between(id, 0, killMs).at(-1)?.startMs ?? killMs));
    r.kill = { targets: mine.length, fromKill: m.stats(fromKill), gap: m.stats(gaps), movedOverIdeal: mine.length / (T / 3) };
    await sleep(1500);
    const afterKill = await m.waitAllFresh(mesh, ids, Date.now() - 1100);
    // rejoin
    const joinMs = Date.now();
    p3 = await m.spawnProber(mesh, 'p3', 'c');
    await waitFor(() => ids.filter((id) => mesh.results.between(id, joinMs).some((x) => x.prober === 'p3')).length >= mine.length * 0.9, { timeoutMs: 30_000, intervalMs: 200, what: 'p3 back' });
    await sleep(2500);
    owners = await m.waitAllFresh(mesh, ids, Date.now() - 1100);
    const movedJoin = ids.filter((id) => owners.get(id) !== afterKill.get(id)).length;
    r.join = { moved: movedJoin, movedOverIdeal: movedJoin / (T / 3) };
    // drain p2 and undrain
    const drained = ids.filter((id) => owners.get(id) === 'p2');
    const d0 = Date.now();
    await admin.drainProber({ prober: 'p2' });
    const doneMs = await waitFor(async () => ((await admin.listProbers({})).probers.find((p) => p.heartbeat.prober === 'p2')?.assignedTargets === 0 ? Date.now() : undefined), { timeoutMs: 20_000, what: 'drained' });
    await sleep(1500);
    r.drain = { targets: drained.length, handoffMs: doneMs - d0, maxGap: m.stats(drained.map((id) => mesh.results.maxGap(id, d0, Date.now()))) };
    await admin.drainProber({ prober: 'p2', undrain: true });
    await sleep(3000);
    owners = await m.waitAllFresh(mesh, ids, Date.now() - 1100);
    out.rounds.push(r);
    console.log(`round ${round + 1}: kill→new result median ${r.kill.fromKill.median.toFixed(0)} max ${r.kill.fromKill.max.toFixed(0)} ms; gap median ${r.kill.gap.median.toFixed(0)} max ${r.kill.gap.max.toFixed(0)} ms; leave moved/ideal ${r.kill.movedOverIdeal.toFixed(2)}; join moved/ideal ${r.join.movedOverIdeal.toFixed(2)}; drain hand-off ${r.drain.handoffMs} ms, max gap ${r.drain.maxGap.max.toFixed(0)} ms`);
  }
  admin.close();
} finally {
  await p1?.stop();
  await p2?.stop();
  await c?.stop();
  await mesh.close();
}
const all = (f) => out.rounds.map(f);
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const u = process.cpuUsage(cpu0);
out.cpuSeconds = (u.user + u.system) / 1e6;
out.peakRssMb = process.resourceUsage().maxRSS / 1024;
console.log(`\nfailover: ${T} targets at 1 s, 3 probers (one a child process), 3-node NATS, heartbeat ${m.TIMING.heartbeat} ms, dead_after ${m.TIMING.deadAfter} ms, ${ROUNDS} rounds`);
console.log('| figure | median over rounds | worst round | goal |\n| --- | --- | --- | --- |');
console.log(`| kill -9 → first result by another prober (per-target max) | ${med(all((r) => r.kill.fromKill.max)).toFixed(0)} ms | ${Math.max(...all((r) => r.kill.fromKill.max)).toFixed(0)} ms | ≤ 3000 ms (bound 5000) |`);
console.log(`| kill -9 → first result (per-target median) | ${med(all((r) => r.kill.fromKill.median)).toFixed(0)} ms | ${Math.max(...all((r) => r.kill.fromKill.median)).toFixed(0)} ms | |`);
console.log(`| gap between results of a moved target (max) | ${med(all((r) => r.kill.gap.max)).toFixed(0)} ms | ${Math.max(...all((r) => r.kill.gap.max)).toFixed(0)} ms | |`);
console.log(`| drain: largest gap between results (max) | ${med(all((r) => r.drain.maxGap.max)).toFixed(0)} ms | ${Math.max(...all((r) => r.drain.maxGap.max)).toFixed(0)} ms | ≤ 1 interval (1000 ms) |`);
console.log(`| drain hand-off duration | ${med(all((r) => r.drain.handoffMs)).toFixed(0)} ms | ${Math.max(...all((r) => r.drain.handoffMs)).toFixed(0)} ms | |`);
console.log(`| leave (death) moved / ideal | ${med(all((r) => r.kill.movedOverIdeal)).toFixed(2)} | ${Math.max(...all((r) => r.kill.movedOverIdeal)).toFixed(2)} | ≤ 1.1 |`);
console.log(`| join moved / ideal | ${med(all((r) => r.join.movedOverIdeal)).toFixed(2)} | ${Math.max(...all((r) => r.join.movedOverIdeal)).toFixed(2)} | ≤ 1.1 |`);
console.log(`bench process CPU ${out.cpuSeconds.toFixed(1)} s, peak RSS ${out.peakRssMb.toFixed(0)} MB`);
mkdirSync(join(root, 'bench/results'), { recursive: true });
writeFileSync(join(root, 'bench/results/failover.json'), JSON.stringify(out, null, 2));
