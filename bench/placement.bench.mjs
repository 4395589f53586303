// Placement speed: time to compute the placement of 100,000 targets over 50 probers and
// to publish the 50 assignments (KV pm_assignments, compare-and-set) into a real
// nats-server; then a leave and a join round (only changed probers are written).
// Several rounds, median + spread, CPU seconds and peak RSS from the OS.
// Usage: npm run bench -- placement   (env PM_BENCH_TARGETS, PM_BENCH_PROBERS, PM_BENCH_ROUNDS)
import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { placeTargets } = require(join(root, 'services/coordinator/dist/placement.js'));
const { AssignmentPublisher, openAssignmentStore } = require(join(root, 'services/coordinator/dist/assignments.js'));
const { AnchoredClock, silentLogger, targetId, toULong } = require('@probemesh/common');
const { probemesh } = require('@probemesh/proto');
const { startNats } = require(join(root, 'test/dist/harness/index.js'));
const { connect } = require('nats');

const T = Number(process.env.PM_BENCH_TARGETS ?? 100_000);
const N = Number(process.env.PM_BENCH_PROBERS ?? 50);
const ROUNDS = Number(process.env.PM_BENCH_ROUNDS ?? 3);
const VNODES = 400;

const targets = Array.from({ length: T }, (_, i) => {
  const url = `https://svc-${i}.example.com/health`;
  return probemesh.v1.Target.create({ id: targetId('http_2xx', url), url, module: 'http_2xx', intervalMs: 15000, timeoutMs: 5000, replication: 1, updatedUnixNano: toULong(1n) });
});
const probers = Array.from({ length: N }, (_, i) => ({ id: `prober-${String(i).padStart(2, '0')}`, zone: `z${i % 3}`, capacity: 1 }));

const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const spread = (xs) => `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;
async function timed(fn) { const c0 = cpu(); const t0 = performance.now(); const r = await fn(); return { ms: performance.now() - t0, cpu: cpu() - c0, r }; }

const nats = await startNats();
const nc = await connect({ servers: nats.url });
const rows = { compute: [], computeR2: [], publishAll: [], leave: [], join: [] };
const cpus = { compute: [], publishAll: [] };
let moved = { leave: [], join: [] };
let bytes = 0;
try {
  for (let round = 0; round < ROUNDS; round++) {
    // Pure computation, R = 1 and R = 2 (alternating in the same round).
    const a = await timed(() => placeTargets(probers, targets, { vnodesPerCapacity: VNODES }));
    rows.compute.push(a.ms); cpus.compute.push(a.cpu);
    const twice = targets.map((t) => ({ ...t, replication: 2 }));
    const b = await timed(() => placeTargets(probers, twice, { vnodesPerCapacity: VNODES }));
    rows.computeR2.push(b.ms);

    // Compute + encode + publish all 50 assignments into KV (fresh bucket state per round).
    const kvName = 'pm_assignments';
    const jsm = await nc.jetstreamManager();
    await jsm.streams.delete(`KV_${kvName}`).catch(() => undefined);
    const store = await openAssignmentStore(nc, silentLogger());
    let current = probers;
    const pub = await AssignmentPublisher.start({ coordinatorId: 'bench', term: 1n, vnodesPerCapacity: VNODES, rebalanceDelayMs: 1e9, startupGraceMs: 1e9, targets: () => targets, probers: () => current, store, clock: new AnchoredClock(), log: silentLogger() });
    const all = await timed(() => pub.rebalance());
    rows.publishAll.push(all.ms); cpus.publishAll.push(all.cpu);
    bytes = (await jsm.streams.info(`KV_${kvName}`)).state.bytes;
    current = probers.filter((p) => p.id !== probers[round % N].id);
    const leave = await timed(() => pub.rebalance());
    rows.leave.push(leave.ms); moved.leave.push(leave.r.moved / (T / N));
    current = probers;
    const join = await timed(() => pub.rebalance());
    rows.join.push(join.ms); moved.join.push(join.r.moved / (T / N));
    await pub.stop();
    console.log(`round ${round + 1}: compute ${a.ms.toFixed(0)} ms (R=2 ${b.ms.toFixed(0)} ms), compute+publish ${all.ms.toFixed(0)} ms, leave ${leave.ms.toFixed(0)} ms (moved ${leave.r.moved}), join ${join.ms.toFixed(0)} ms (moved ${join.r.moved})`);
  }
} finally {
  await nc.close();
  await nats.stop();
}
const rss = process.resourceUsage().maxRSS / 1024;
const table = [
  ['placement compute, R=1', `${med(rows.compute).toFixed(0)} ms`, spread(rows.compute), `${med(cpus.compute).toFixed(2)} s`],
  ['placement compute, R=2', `${med(rows.computeR2).toFixed(0)} ms`, spread(rows.computeR2), ''],
  ['compute + publish all assignments', `${med(rows.publishAll).toFixed(0)} ms`, spread(rows.publishAll), `${med(cpus.publishAll).toFixed(2)} s`],
  ['one prober leaves (recompute + publish changed)', `${med(rows.leave).toFixed(0)} ms`, spread(rows.leave), ''],
  ['it rejoins (recompute + publish changed)', `${med(rows.join).toFixed(0)} ms`, spread(rows.join), ''],
];
console.log(`\nplacement: ${T} targets over ${N} probers, ${VNODES} vnodes/capacity, ${ROUNDS} rounds, real nats-server (KV ${(bytes / 1e6).toFixed(1)} MB)`);
console.log('| step | median | spread | CPU (median) |\n| --- | --- | --- | --- |');
for (const r of table) console.log(`| ${r.join(' | ')} |`);
console.log(`moved/ideal (ideal = T/N): leave median ${med(moved.leave).toFixed(3)}, join median ${med(moved.join).toFixed(3)}; peak RSS ${rss.toFixed(0)} MB`);
mkdirSync(join(root, 'bench/results'), { recursive: true });
writeFileSync(join(root, 'bench/results/placement.json'), JSON.stringify({ targets: T, probers: N, vnodesPerCapacity: VNODES, rounds: ROUNDS, ms: rows, cpuSeconds: cpus, movedOverIdeal: moved, kvBytes: bytes, peakRssMb: rss }, null, 2));
