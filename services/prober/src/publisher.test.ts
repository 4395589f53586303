import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger, toBigInt } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import { FakeTime } from './testing/fake-time';
import { PublisherOptions, ResultPublisher } from './publisher';

interface Sent {
  subject: string;
  msgID: string;
  batch: probemesh.v1.ResultBatch;
}

/** A fake JetStream publish: fails while `failing` is true, records what it got. */
function fakeJs() {
  const attempts: Sent[] = [];
  const acked: Sent[] = [];
  const state = { failing: false };
  const publish = async (subject: string, data: Uint8Array, msgID: string): Promise<void> => {
    const sent = { subject, msgID, batch: probemesh.v1.ResultBatch.decode(data) };
    attempts.push(sent);
    if (state.failing) throw new Error('503 no responders');
    acked.push(sent);
  };
  return { publish, attempts, acked, state };
}

function result(i: number): probemesh.v1.IProbeResult {
  return { targetId: `t${i}`, target: `http://t${i}/`, module: 'http_2xx', success: true };
}

function setup(over: Partial<PublisherOptions> = {}) {
  const time = new FakeTime();
  const js = fakeJs();
  const counts = { published: 0, errors: 0, dropped: 0, buffered: 0 };
  let epoch = 7n;
  const pub = new ResultPublisher({
    prober: 'p1',
    zone: 'z1',
    bootId: 'boot',
    maxBatch: 3,
    maxDelayMs: 200,
    maxBufferedResults: 100,
    publish: js.publish,
    epoch: () => epoch,
    clock: time,
    timers: time,
    log: silentLogger(),
    observer: {
      published: (n) => (counts.published += n),
      publishError: () => counts.errors++,
      dropped: (n) => (counts.dropped += n),
      buffered: (n) => (counts.buffered = n),
    },
    ...over,
  });
  return { time, js, counts, pub, setEpoch: (e: bigint) => (epoch = e) };
}

const ids = (s: Sent): string[] => s.batch.results.map((r) => r.targetId ?? '');

describe('ResultPublisher', () => {
  it('publishes a batch as soon as max_batch results wait', async () => {
    const { time, js, counts, pub } = setup();
    for (let i = 0; i < 7; i++) pub.add(result(i));
    await time.advance(0);
    assert.equal(js.acked.length, 2);
    assert.deepEqual(js.acked.map(ids), [['t0', 't1', 't2'], ['t3', 't4', 't5']]);
    const first = js.acked[0]!;
    assert.equal(first.subject, 'pm.results.p1');
    assert.equal(first.msgID, 'p1-boot-1');
    assert.equal(js.acked[1]!.msgID, 'p1-boot-2');
    assert.equal(first.batch.prober, 'p1');
    assert.equal(first.batch.zone, 'z1');
    assert.equal(toBigInt(first.batch.epoch), 7n);
    assert.equal(toBigInt(first.batch.seq), 1n);
    assert.equal(toBigInt(first.batch.sentUnixNano), time.nowNs());
    assert.equal(counts.published, 6);
    assert.equal(counts.buffered, 1);
    // The 7th goes out max_delay after it was added.
    await time.advance(199);
    assert.equal(js.acked.length, 2);
    await time.advance(1);
    assert.equal(js.acked.length, 3);
    assert.deepEqual(ids(js.acked[2]!), ['t6']);
    assert.equal(counts.buffered, 0);
    await pub.close(1000);
    assert.equal(time.pendingTimers, 0);
  });

  it('publishes a partial batch after max_delay from its first result', async () => {
    const { time, js, pub, setEpoch } = setup({ maxBatch: 500, maxDelayMs: 200 });
    pub.add(result(1));
    await time.advance(150);
    pub.add(result(2));
    setEpoch(9n);
    await time.advance(49);
    assert.equal(js.attempts.length, 0);
    await time.advance(1);
    assert.equal(js.acked.length, 1);
    assert.deepEqual(ids(js.acked[0]!), ['t1', 't2']);
    assert.equal(toBigInt(js.acked[0]!.batch.epoch), 9n, 'epoch held when sealed');
    await pub.close(1000);
  });

  it('keeps a failed batch and retries it with backoff under the same msgID, in order', async () => {
    const { time, js, counts, pub } = setup({ retryInitialMs: 100, retryMaxMs: 1_000 });
    js.state.failing = true;
    for (let i = 0; i < 6; i++) pub.add(result(i));
    await time.advance(0);
    assert.equal(js.attempts.length, 1, 'one batch in flight at a time');
    await time.advance(100);
    assert.equal(js.attempts.length, 2, 'retry after 100 ms');
    await time.advance(199);
    assert.equal(js.attempts.length, 2, 'backoff doubled');
    await time.advance(1);
    assert.equal(js.attempts.length, 3);
    assert.deepEqual(js.attempts.map((a) => a.msgID), ['p1-boot-1', 'p1-boot-1', 'p1-boot-1']);
    assert.equal(counts.errors, 3);
    assert.equal(counts.published, 0);
    assert.equal(counts.buffered, 6);
    js.state.failing = false;
    await time.advance(400);
    assert.deepEqual(js.acked.map((a) => a.msgID), ['p1-boot-1', 'p1-boot-2']);
    assert.deepEqual(js.acked.flatMap(ids), ['t0', 't1', 't2', 't3', 't4', 't5']);
    assert.equal(counts.published, 6);
    assert.equal(counts.dropped, 0);
    await pub.close(1000);
    assert.equal(time.pendingTimers, 0);
  });

  it('bounds the buffer: drops the oldest waiting results, counts them, keeps the one in flight', async () => {
    const { time, js, counts, pub } = setup({ maxBatch: 2, maxBufferedResults: 6, retryInitialMs: 50 });
    js.state.failing = true;
    for (let i = 0; i < 10; i++) pub.add(result(i));
    await time.advance(0);
    assert.equal(counts.dropped, 4);
    assert.equal(pub.bufferedResults, 6);
    js.state.failing = false;
    await time.advance(1_000);
    assert.deepEqual(js.acked.flatMap(ids), ['t0', 't1', 't6', 't7', 't8', 't9'], 'in-flight batch kept, oldest waiting dropped');
    assert.equal(counts.published, 6);
    await pub.close(100);
  });

  it('close flushes what waits; what cannot be acknowledged in time is dropped and counted', async () => {
    const ok = setup({ maxBatch: 100 });
    ok.pub.add(result(1));
    await ok.pub.close(1_000);
    assert.equal(ok.js.acked.length, 1, 'flushed without waiting for max_delay');
    assert.equal(ok.time.pendingTimers, 0);

    const down = setup({ maxBatch: 100 });
    down.js.state.failing = true;
    down.pub.add(result(1));
    down.pub.add(result(2));
    const closing = down.pub.close(500);
    await down.time.advance(600);
    await closing;
    assert.equal(down.counts.dropped, 2);
    assert.equal(down.counts.buffered, 0);
    assert.equal(down.time.pendingTimers, 0, 'no retry timer left');
    down.pub.add(result(3));
    assert.equal(down.counts.dropped, 3, 'results after close are dropped and counted');
  });
});
