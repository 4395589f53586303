import assert from 'node:assert/strict';
import { test } from 'node:test';
import { targetId } from '@probemesh/common';
import { PlacementNode } from './membership';
import { countMoves, placeTargets } from './placement';

const opts = { vnodesPerCapacity: 100 };

function targets(n: number, replication: number) {
  return Array.from({ length: n }, (_, i) => ({ id: targetId('http_2xx', `https://svc${i}.example.com/health`), replication }));
}

const three: PlacementNode[] = [
  { id: 'p1', zone: 'a', capacity: 1 },
  { id: 'p2', zone: 'b', capacity: 1 },
  { id: 'p3', zone: 'c', capacity: 1 },
];

test('every target gets exactly R distinct owners (R = 1, 2, 3)', () => {
  for (const r of [1, 2, 3]) {
    const ts = targets(300, r);
    const p = placeTargets(three, ts, opts);
    assert.equal(p.owners.size, 300);
    for (const t of ts) {
      const o = p.owners.get(t.id)!;
      assert.equal(o.length, r, `target ${t.id} R=${r}`);
      assert.equal(new Set(o).size, r);
    }
    const total = [...p.byProber.values()].reduce((s, l) => s + l.length, 0);
    assert.equal(total, 300 * r);
    assert.equal(p.underReplicated, 0);
  }
});

test('load is spread: with R=1 each of 3 probers gets 20-47% of 300 targets', () => {
  const p = placeTargets(three, targets(300, 1), opts);
  for (const [id, l] of p.byProber) assert.ok(l.length >= 60 && l.length <= 140, `${id} has ${l.length}`);
});

test('R=2 over zones a/b/c puts the owners in distinct zones', () => {
  const six: PlacementNode[] = [...three, { id: 'p4', zone: 'a', capacity: 1 }, { id: 'p5', zone: 'b', capacity: 1 }, { id: 'p6', zone: 'c', capacity: 1 }];
  const zone = new Map(six.map((n) => [n.id, n.zone]));
  const p = placeTargets(six, targets(300, 2), opts);
  for (const [id, o] of p.owners) {
    assert.equal(o.length, 2);
    assert.notEqual(zone.get(o[0]!), zone.get(o[1]!), `target ${id} owners ${o}`);
  }
});

test('fewer zones than R falls back to distinct probers', () => {
  const sameZone: PlacementNode[] = [
    { id: 'p1', zone: 'a', capacity: 1 },
    { id: 'p2', zone: 'a', capacity: 1 },
    { id: 'p3', zone: 'b', capacity: 1 },
  ];
  const p = placeTargets(sameZone, targets(100, 3), opts);
  for (const o of p.owners.values()) assert.deepEqual([...o].sort(), ['p1', 'p2', 'p3']);
  const p2 = placeTargets(sameZone, targets(100, 2), opts);
  for (const o of p2.owners.values()) assert.deepEqual(new Set(o.map((x) => (x === 'p3' ? 'b' : 'a'))).size, 2);
});

test('R above the prober count gives every prober and counts the target as under-replicated', () => {
  const p = placeTargets(three, targets(10, 5), opts);
  for (const o of p.owners.values()) assert.equal(o.length, 3);
  assert.equal(p.underReplicated, 10);
  const none = placeTargets([], targets(10, 1), opts);
  assert.equal(none.owners.size, 0);
  assert.equal(none.underReplicated, 10);
});

test('removing a prober moves only its targets', () => {
  for (const r of [1, 2]) {
    const ts = targets(300, r);
    const before = placeTargets(three, ts, opts);
    const after = placeTargets(three.filter((n) => n.id !== 'p2'), ts, opts);
    let moved = 0;
    for (const t of ts) {
      const was = before.owners.get(t.id)!;
      const now = after.owners.get(t.id)!;
      if (!was.includes('p2')) assert.deepEqual(now, was, `target not on p2 kept its owners (R=${r})`);
      else {
        // Surviving owners stay; only p2's slot is refilled.
        for (const o of was) if (o !== 'p2') assert.ok(now.includes(o));
        moved++;
      }
    }
    assert.equal(countMoves(before.owners, after.owners), moved, 'each of its targets gained exactly one new owner');
    assert.equal(before.byProber.get('p2')!.length, moved);
    console.log(`# leave (R=${r}): p2 owned ${moved}/300 targets, exactly those moved`);
  }
});

for (const n of [300, 3000]) test(`adding a 4th prober moves about 1/4 of ${n} targets, all to the new prober`, () => {
  const ts = targets(n, 1);
  const before = placeTargets(three, ts, opts);
  const after = placeTargets([...three, { id: 'p4', zone: 'd', capacity: 1 }], ts, opts);
  const moved = countMoves(before.owners, after.owners);
  for (const t of ts) {
    const now = after.owners.get(t.id)![0];
    if (now !== before.owners.get(t.id)![0]) assert.equal(now, 'p4', 'a moved target moved to the new prober');
  }
  const ideal = n / 4;
  console.log(`# join: ${moved}/${n} targets moved (${((100 * moved) / n).toFixed(1)}%, ideal ${ideal} = 25%)`);
  assert.ok(moved <= 1.1 * ideal + 0.03 * n, `moved ${moved} > 1.1 × ${ideal} + slack`);
  assert.ok(moved >= 0.7 * ideal, `moved ${moved} far below ${ideal}`);
  assert.equal(after.byProber.get('p4')!.length, moved);
});

test('capacity weights the share', () => {
  const nodes: PlacementNode[] = [
    { id: 'big', zone: 'a', capacity: 3 },
    { id: 'small', zone: 'b', capacity: 1 },
  ];
  const p = placeTargets(nodes, targets(2000, 1), opts);
  const big = p.byProber.get('big')!.length;
  assert.ok(big > 1300 && big < 1700, `big prober got ${big}/2000 (≈1500 expected)`);
});

test('placement is deterministic', () => {
  const ts = targets(200, 2);
  const a = placeTargets(three, ts, opts);
  const b = placeTargets([...three].reverse(), ts, opts);
  assert.deepEqual([...a.owners], [...b.owners]);
});
