import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnchoredClock, measureAnchor, NS_PER_MS } from './clock';
import { formatDurationMs, parseDurationMs } from './duration';
import { targetId } from './ids';
import { toBigInt, toULong } from './long';

test('the anchored clock agrees with Date.now() and resolves below 1 µs', () => {
  const c = new AnchoredClock();
  const a = measureAnchor();
  assert.ok(a.uncertaintyNs < 1_000_000n, `anchor uncertainty ${a.uncertaintyNs} ns`);
  const diff = BigInt(Date.now()) * NS_PER_MS - c.nowNs();
  assert.ok(diff > -2_000_000n && diff < 2_000_000n, `nowNs within 2 ms of Date.now(), got ${diff} ns`);
  const seen = new Set<bigint>();
  for (let i = 0; i < 100; i++) seen.add(c.nowNs());
  assert.ok(seen.size > 50, 'consecutive readings differ: sub-microsecond resolution');
});

test('durations parse like Prometheus', () => {
  assert.equal(parseDurationMs('1m30s'), 90_000);
  assert.equal(parseDurationMs('250ms'), 250);
  assert.equal(parseDurationMs('1h'), 3_600_000);
  assert.equal(parseDurationMs('0'), 0);
  for (const bad of ['', '5', '5x', '1s1m', '-1s', '1.5s']) assert.equal(parseDurationMs(bad), undefined, bad);
  assert.equal(formatDurationMs(90_000), '1m30s');
  assert.equal(formatDurationMs(250), '250ms');
});

test('target ids are stable and module-specific', () => {
  assert.equal(targetId('http_2xx', 'http://a/'), targetId('http_2xx', 'http://a/'));
  assert.notEqual(targetId('http_2xx', 'http://a/'), targetId('http_post', 'http://a/'));
  assert.match(targetId('http_2xx', 'http://a/'), /^[0-9a-f]{32}$/);
});

test('64-bit conversions keep nanosecond precision', () => {
  const ns = 1_795_317_624_032_066_595n;
  assert.equal(toBigInt(toULong(ns)), ns);
  assert.equal(toBigInt(null), 0n);
  assert.equal(toBigInt(42), 42n);
});
