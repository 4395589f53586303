/**
 * Churn of the placement (issue 5): for N = 3 … 50 probers, how many targets move when
 * one prober joins or leaves, against the ideal (1/N of the targets for one node of N).
 * Pure placement (the coordinator's placeTargets with its default vnodes), no NATS.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { coordinatorConfigSchema, countMoves, placeTargets } from '@probemesh/coordinator';
import { loadConfig, targetId } from '@probemesh/common';

const T = 20_000;
const vnodesPerCapacity = loadConfig(coordinatorConfigSchema, { text: '' }).vnodes_per_capacity;
const targets = Array.from({ length: T }, (_, i) => ({ id: targetId('http_2xx', `https://svc-${i}.example.com/health`), replication: 1 }));
const nodes = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `prober-${String(i).padStart(2, '0')}`, zone: `z${i % 3}`, capacity: 1 }));

test(`join/leave churn for N = 3 … 50 stays within 1.1 × ideal (${T} targets, ${vnodesPerCapacity} vnodes per capacity)`, () => {
  const rows: { n: number; join: number; leave: number }[] = [];
  for (let n = 3; n <= 50; n++) {
    const base = nodes(n);
    const before = placeTargets(base, targets, { vnodesPerCapacity });
    const joined = placeTargets([...base, { id: 'prober-new', zone: 'z0', capacity: 1 }], targets, { vnodesPerCapacity });
    // The node that leaves: a different one for each N, not always the first.
    const gone = base[n % base.length]!.id;
    const left = placeTargets(base.filter((x) => x.id !== gone), targets, { vnodesPerCapacity });
    const joinRatio = countMoves(before.owners, joined.owners) / (T / (n + 1));
    const leaveRatio = countMoves(before.owners, left.owners) / (T / n);
    // Consistent hashing: a join moves only to the new node, a leave only the gone node's targets.
    for (const [id, o] of joined.owners) if (o[0] !== before.owners.get(id)![0]) assert.equal(o[0], 'prober-new');
    for (const [id, o] of before.owners) if (o[0] !== gone) assert.equal(left.owners.get(id)![0], o[0]);
    rows.push({ n, join: joinRatio, leave: leaveRatio });
  }
  const worstJoin = rows.reduce((m, r) => Math.max(m, r.join), 0);
  const worstLeave = rows.reduce((m, r) => Math.max(m, r.leave), 0);
  const mean = (k: 'join' | 'leave') => rows.reduce((s, r) => s + r[k], 0) / rows.length;
  console.log(`# churn moved/ideal over N=3..50: join mean ${mean('join').toFixed(3)} worst ${worstJoin.toFixed(3)}; leave mean ${mean('leave').toFixed(3)} worst ${worstLeave.toFixed(3)}`);
  console.log(`# per N (join/leave): ${rows.map((r) => `${r.n}:${r.join.toFixed(2)}/${r.leave.toFixed(2)}`).join(' ')}`);
  assert.ok(worstJoin <= 1.1, `a join moved ${worstJoin.toFixed(3)} × ideal`);
  assert.ok(worstLeave <= 1.1, `a leave moved ${worstLeave.toFixed(3)} × ideal`);
});
