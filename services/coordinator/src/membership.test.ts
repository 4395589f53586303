import assert from 'node:assert/strict';
import { test } from 'node:test';
import { silentLogger } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import { Membership, MembershipEvent } from './membership';
import { FakeClock } from './testing/fake-clock';

function hb(prober: string, extra: probemesh.v1.IHeartbeat = {}): probemesh.v1.Heartbeat {
  return probemesh.v1.Heartbeat.create({ prober, zone: 'a', capacity: 1, ...extra });
}

function setup() {
  const clock = new FakeClock();
  const m = new Membership({ deadAfterMs: 3000, clock, log: silentLogger() });
  const events: MembershipEvent[] = [];
  const sub = m.changes();
  const drain = async () => {
    // Let queued events reach the loop below.
    await new Promise((r) => setImmediate(r));
  };
  void (async () => {
    for await (const e of sub) events.push(e);
  })();
  return { clock, m, events, drain };
}

test('a heartbeat makes a prober alive and emits join once', async () => {
  const { m, events, drain, clock } = setup();
  m.observe(hb('p1'));
  clock.advance(1000);
  m.observe(hb('p1'));
  await drain();
  assert.deepEqual(events, [{ kind: 'join', prober: 'p1' }]);
  assert.deepEqual(m.alive(), [{ id: 'p1', zone: 'a', capacity: 1 }]);
  assert.equal(m.get('p1')!.state, 'alive');
  assert.equal(m.get('p1')!.lastSeenUnixNs, clock.nowNs());
});

test('silence longer than dead_after declares the prober dead', async () => {
  const { m, events, drain, clock } = setup();
  m.observe(hb('p1'));
  m.observe(hb('p2'));
  clock.advance(2000);
  m.observe(hb('p2'));
  clock.advance(1000);
  m.sweep(); // p1 silent exactly 3000 ms: not yet dead
  assert.equal(m.get('p1')!.state, 'alive');
  clock.advance(1);
  m.sweep();
  m.sweep(); // a second sweep does not repeat the event
  await drain();
  assert.equal(m.get('p1')!.state, 'dead');
  assert.equal(m.get('p2')!.state, 'alive');
  assert.deepEqual(m.alive().map((n) => n.id), ['p2']);
  assert.deepEqual(events, [
    { kind: 'join', prober: 'p1' },
    { kind: 'join', prober: 'p2' },
    { kind: 'dead', prober: 'p1' },
  ]);
  // It comes back with its next heartbeat.
  m.observe(hb('p1'));
  await drain();
  assert.deepEqual(events.at(-1), { kind: 'join', prober: 'p1' });
  assert.equal(m.alive().length, 2);
});

test('a leaving heartbeat removes the prober from placement at once', async () => {
  const { m, events, drain, clock } = setup();
  m.observe(hb('p1'));
  m.observe(hb('p2'));
  m.observe(hb('p1', { leaving: true }));
  m.observe(hb('p1', { leaving: true }));
  await drain();
  assert.equal(m.get('p1')!.state, 'leaving');
  assert.deepEqual(m.alive().map((n) => n.id), ['p2']);
  assert.deepEqual(events.slice(2), [{ kind: 'leave', prober: 'p1' }]);
  clock.advance(3001);
  m.sweep();
  assert.equal(m.get('p1')!.state, 'dead');
});

test('zone or capacity changes emit update; capacity 0 counts as 1', async () => {
  const { m, events, drain } = setup();
  m.observe(hb('p1', { capacity: 0 }));
  assert.equal(m.alive()[0]!.capacity, 1);
  m.observe(hb('p1', { capacity: 1 }));
  m.observe(hb('p1', { capacity: 4 }));
  m.observe(hb('p1', { capacity: 4, zone: 'b' }));
  await drain();
  assert.deepEqual(events.map((e) => e.kind), ['join', 'update', 'update']);
  assert.deepEqual(m.alive(), [{ id: 'p1', zone: 'b', capacity: 4 }]);
});

test('registrations are known but dead until heard', () => {
  const { m } = setup();
  m.register(hb('p9'));
  assert.equal(m.get('p9')!.state, 'dead');
  assert.equal(m.get('p9')!.lastSeenUnixNs, 0n);
  assert.deepEqual(m.alive(), []);
  m.observe(hb('p9'));
  assert.equal(m.get('p9')!.state, 'alive');
});
