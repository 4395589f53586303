import assert from 'node:assert/strict';
import { test } from 'node:test';
import { silentLogger, targetId, toBigInt, toULong } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import { AssignmentPublisher, AssignmentStore } from './assignments';
import { PlacementNode } from './membership';
import { Target } from './targets';
import { FakeClock } from './testing/fake-clock';

class MemoryStore implements AssignmentStore {
  readonly data = new Map<string, probemesh.v1.Assignment>();
  readonly writes: probemesh.v1.Assignment[] = [];
  async load() {
    return [...this.data.values()];
  }
  async put(a: probemesh.v1.Assignment) {
    const copy = probemesh.v1.Assignment.decode(probemesh.v1.Assignment.encode(a).finish());
    this.data.set(a.prober, copy);
    this.writes.push(copy);
  }
  ids(prober: string): string[] {
    return (this.data.get(prober)?.targets ?? []).map((t) => t.id!);
  }
}

function target(i: number, updated = 1n): Target {
  const url = `https://svc${i}.example.com/`;
  return probemesh.v1.Target.create({ id: targetId('http_2xx', url), url, module: 'http_2xx', intervalMs: 1000, timeoutMs: 500, replication: 1, updatedUnixNano: toULong(updated) });
}

async function setup(store = new MemoryStore()) {
  const state = { targets: [] as Target[], probers: [] as PlacementNode[] };
  const pub = await AssignmentPublisher.start({
    coordinatorId: 'c1',
    vnodesPerCapacity: 100,
    rebalanceDelayMs: 10,
    startupGraceMs: 60_000, // rounds are driven by hand below
    targets: () => state.targets,
    probers: () => state.probers,
    store,
    clock: new FakeClock(),
    log: silentLogger(),
  });
  return { pub, store, state };
}

test('publishes per-prober assignments with increasing epochs, only for changed probers', async () => {
  const { pub, store, state } = await setup();
  try {
    state.targets = Array.from({ length: 30 }, (_, i) => target(i));
    state.probers = [
      { id: 'p1', zone: 'a', capacity: 1 },
      { id: 'p2', zone: 'b', capacity: 1 },
    ];
    const r1 = await pub.rebalance();
    assert.equal(r1.epoch, 1n);
    assert.deepEqual(r1.published.sort(), ['p1', 'p2']);
    assert.equal(store.ids('p1').length + store.ids('p2').length, 30);
    assert.equal(store.data.get('p1')!.coordinator, 'c1');
    assert.equal(toBigInt(store.data.get('p1')!.epoch), 1n);

    // Nothing changed: no new epoch, no writes.
    const r2 = await pub.rebalance();
    assert.equal(r2.epoch, 1n);
    assert.equal(store.writes.length, 2);

    // A target changes (new updated time): only its owner gets a new assignment.
    const owner = store.ids('p1').includes(state.targets[0]!.id) ? 'p1' : 'p2';
    state.targets = [target(0, 2n), ...state.targets.slice(1)];
    const r3 = await pub.rebalance();
    assert.deepEqual(r3.published, [owner]);
    assert.equal(r3.epoch, 2n);

    // p2 dies: it gets an empty assignment, p1 gets everything; moves counted.
    const p2Count = store.ids('p2').length;
    state.probers = [{ id: 'p1', zone: 'a', capacity: 1 }];
    const r4 = await pub.rebalance();
    assert.equal(r4.epoch, 3n);
    assert.deepEqual(r4.published.sort(), ['p1', 'p2']);
    assert.deepEqual(store.ids('p2'), []);
    assert.equal(store.ids('p1').length, 30);
    assert.equal(r4.moved, p2Count);
    assert.deepEqual([...pub.assignedCounts()].sort(), [['p1', 30], ['p2', 0]]);

    // Still dead with an empty assignment: nothing more is written for it.
    const before = store.writes.length;
    await pub.rebalance();
    assert.equal(store.writes.length, before);

    // A rejoining prober gets a fresh assignment even if its set did not change.
    pub.noteJoin('p1');
    const r5 = await pub.rebalance();
    assert.deepEqual(r5.published, ['p1']);
    assert.equal(r5.epoch, 4n);
  } finally {
    await pub.stop();
  }
});

test('a restarted publisher continues the epoch and knows what it published', async () => {
  const store = new MemoryStore();
  const first = await setup(store);
  first.state.targets = [target(1), target(2)];
  first.state.probers = [{ id: 'p1', zone: 'a', capacity: 1 }];
  await first.pub.rebalance();
  first.state.targets = [target(1)];
  await first.pub.rebalance();
  await first.pub.stop();
  assert.equal(first.pub.epoch, 2n);

  const second = await setup(store);
  try {
    assert.equal(second.pub.epoch, 2n);
    assert.deepEqual([...second.pub.assignedCounts()], [['p1', 1]]);
    second.state.targets = [target(1)];
    second.state.probers = [{ id: 'p1', zone: 'a', capacity: 1 }];
    const same = await second.pub.rebalance();
    assert.deepEqual(same.published, [], 'same placement as stored: nothing rewritten');
    second.state.targets = [target(1), target(3)];
    const r = await second.pub.rebalance();
    assert.equal(r.epoch, 3n);
  } finally {
    await second.pub.stop();
  }
});

test('a failed write keeps the old state so the next round retries it', async () => {
  const store = new MemoryStore();
  const { pub, state } = await setup(store);
  try {
    state.targets = [target(1)];
    state.probers = [{ id: 'p1', zone: 'a', capacity: 1 }];
    const realPut = store.put.bind(store);
    store.put = async () => {
      throw new Error('nats down');
    };
    const r = await pub.rebalance();
    assert.deepEqual(r.published, []);
    assert.equal(r.epoch, 0n);
    store.put = realPut;
    const r2 = await pub.rebalance();
    assert.deepEqual(r2.published, ['p1']);
    assert.equal(r2.epoch, 1n);
  } finally {
    await pub.stop();
  }
});
