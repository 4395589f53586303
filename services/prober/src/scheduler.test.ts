import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FakeTime, flushMicrotasks } from './testing/fake-time';
import { phaseOffsetNs, ProbeRun, ScheduledTarget, Scheduler } from './scheduler';

function targets(n: number, intervalMs: number, timeoutMs = intervalMs / 2): ScheduledTarget[] {
  return Array.from({ length: n }, (_, i) => ({ id: `target-${i}`, url: `http://t${i}/`, module: 'http_2xx', intervalMs, timeoutMs, labels: {} }));
}

/** A runner whose probes finish after `ms` of fake time (or when aborted). */
function recorder(time: FakeTime, ms: number) {
  const starts: { id: string; at: bigint; run: ProbeRun }[] = [];
  let running = 0;
  let maxRunning = 0;
  const aborted: string[] = [];
  const runner = (run: ProbeRun): Promise<void> => {
    starts.push({ id: run.target.id, at: time.monoNs(), run });
    running++;
    maxRunning = Math.max(maxRunning, running);
    return new Promise<void>((resolve) => {
      const h = time.set(() => {
        running--;
        resolve();
      }, ms);
      run.signal.addEventListener('abort', () => {
        aborted.push(run.target.id);
        time.clear(h);
        running--;
        resolve();
      });
    });
  };
  return { runner, starts, aborted, get maxRunning() { return maxRunning; } };
}

/** Stops `s`, moving fake time on so its grace timers can fire. */
async function stopOn(time: FakeTime, s: Scheduler, graceMs: number): Promise<void> {
  const p = s.stop(graceMs);
  await time.advance(graceMs + 1_001);
  await p;
}

describe('Scheduler', () => {
  it('spreads N targets over the interval by hash(id), one probe each per interval', async () => {
    const time = new FakeTime();
    const rec = recorder(time, 10);
    const lags: number[] = [];
    const s = new Scheduler(rec.runner, { maxConcurrency: 10_000, clock: time, timers: time, observer: { lag: (x) => lags.push(x) } });
    const N = 1000;
    const I = 10_000;
    const t0 = time.monoNs();
    s.setTargets(targets(N, I));
    assert.equal(s.size, N);
    assert.equal(time.pendingTimers, 1, 'one timer for all targets');
    await time.advance(I);
    assert.equal(rec.starts.length, N, 'each target probed exactly once in the first interval');
    assert.equal(new Set(rec.starts.map((x) => x.id)).size, N);
    const offsetsMs = rec.starts.map((x) => Number(x.at - t0) / 1e6);
    assert.ok(offsetsMs.every((o) => o >= 0 && o < I));
    // Spread: 10 buckets of 1 s each hold 100 ± 50 starts (a herd would put them all in one).
    const buckets = new Array(10).fill(0);
    for (const o of offsetsMs) buckets[Math.floor(o / 1000)]++;
    for (const b of buckets) assert.ok(b > 50 && b < 150, `bucket counts ${buckets}`);
    assert.ok(new Set(offsetsMs).size > 900, 'start times distinct');
    // Starts happen at the slot, lag recorded (0 on a fake clock with ms-rounded timers).
    assert.equal(lags.length, N);
    assert.ok(lags.every((l) => l >= 0 && l < 0.001), `max lag ${Math.max(...lags)}`);
    await time.advance(I);
    assert.equal(rec.starts.length, 2 * N, 'second interval');
    for (const id of ['target-0', 'target-1', 'target-999']) {
      const at = rec.starts.filter((x) => x.id === id).map((x) => x.at);
      assert.equal(at[1]! - at[0]!, BigInt(I) * 1_000_000n, `${id} runs every interval`);
    }
    await stopOn(time, s, 1000);
    assert.equal(time.pendingTimers, 0, 'no timer left');
  });

  it('the phase is a function of the target id and the realtime clock: a restart keeps it', async () => {
    const a = new FakeTime(5_000_000_000n, 1_700_000_000_000_000_000n);
    const b = new FakeTime(99_000_000_000n, 1_700_000_000_000_000_000n - 94_000_000_000n + 3_333_000_000n);
    const starts: bigint[] = [];
    for (const time of [a, b]) {
      const s = new Scheduler(async (run) => void starts.push(run.dueMonoNs + (time.nowNs() - time.monoNs())), { maxConcurrency: 1, clock: time, timers: time });
      s.setTargets(targets(1, 5_000));
      await time.advance(5_000);
      await stopOn(time, s, 0);
    }
    const interval = 5_000_000_000n;
    assert.equal(starts.length, 2);
    assert.equal(starts[0]! % interval, phaseOffsetNs('target-0', interval));
    assert.equal(starts[1]! % interval, phaseOffsetNs('target-0', interval));
  });

  it('setTargets keeps unchanged targets on their schedule, adds, removes and re-slots', async () => {
    const time = new FakeTime();
    const rec = recorder(time, 1);
    const s = new Scheduler(rec.runner, { maxConcurrency: 100, clock: time, timers: time });
    const ts = targets(3, 1_000);
    s.setTargets(ts);
    await time.advance(2_500);
    const before = ts.map((t) => s.nextDueNs(t.id));
    // Same targets (new objects, new labels) + one new target; target-2 dropped; target-1 interval changed.
    const next: ScheduledTarget[] = [
      { ...ts[0]!, labels: { team: 'a' } },
      { ...ts[1]!, intervalMs: 2_000 },
      { id: 'target-new', url: 'http://new/', module: 'http_2xx', intervalMs: 1_000, timeoutMs: 500, labels: {} },
    ];
    s.setTargets(next);
    assert.equal(s.size, 3);
    assert.equal(s.nextDueNs('target-0'), before[0], 'unchanged target keeps its next due time');
    assert.equal(s.nextDueNs('target-2'), undefined, 'removed');
    const due1 = s.nextDueNs('target-1')!;
    assert.equal((due1 + 1_700_000_000_000_000_000n) % 2_000_000_000n, phaseOffsetNs('target-1', 2_000_000_000n), 'changed interval re-slotted');
    const n = rec.starts.length;
    await time.advance(2_000);
    const later = rec.starts.slice(n);
    assert.equal(later.filter((x) => x.id === 'target-2').length, 0, 'removed target no longer probed');
    assert.equal(later.filter((x) => x.id === 'target-0').length, 2);
    assert.equal(later.filter((x) => x.id === 'target-new').length, 2);
    assert.equal(later.filter((x) => x.id === 'target-1').length, 1);
    assert.deepEqual(later.find((x) => x.id === 'target-0')!.run.target.labels, { team: 'a' }, 'updated definition used');
    await stopOn(time, s, 100);
  });

  it('bounds concurrency; waiting probes start late with their lag recorded, none skipped', async () => {
    const time = new FakeTime();
    const rec = recorder(time, 100);
    const lags: number[] = [];
    let late = 0;
    let missed = 0;
    const s = new Scheduler(rec.runner, {
      maxConcurrency: 5,
      clock: time,
      timers: time,
      observer: { lag: (x) => lags.push(x), late: () => late++, missed: (n) => (missed += n) },
    });
    // 50 targets at 1 s with 100 ms probes on 5 slots: exactly the capacity, so random
    // clustering of slots makes probes wait.
    s.setTargets(targets(50, 1_000, 500));
    await time.advance(1_000);
    assert.equal(rec.maxRunning, 5, 'never more than max_concurrency');
    assert.equal(s.inFlight <= 5, true);
    await time.advance(1_000);
    assert.ok(late > 0, 'some probes waited for a slot');
    assert.ok(Math.max(...lags) > 0.05, `lag observed: max ${Math.max(...lags)}`);
    // 50 probes × 100 ms / 5 slots = 1 s of work per 1 s interval: the queue keeps up or counts misses.
    const ran = rec.starts.length;
    assert.equal(ran + s.waiting + missed, 100, `ran ${ran} + waiting ${s.waiting} + missed ${missed}: every slot of 50 targets × 2 intervals accounted for`);
    await stopOn(time, s, 1_000);
    assert.equal(time.pendingTimers, 0);
  });

  it('aborts a probe at its timeout', async () => {
    const time = new FakeTime();
    const rec = recorder(time, 10_000);
    const s = new Scheduler(rec.runner, { maxConcurrency: 10, clock: time, timers: time });
    s.setTargets(targets(1, 5_000, 300));
    await time.advance(5_000);
    assert.equal(rec.starts.length, 1);
    assert.deepEqual(rec.aborted, ['target-0']);
    const r = rec.starts[0]!;
    assert.ok(r.run.signal.aborted);
    await stopOn(time, s, 0);
  });

  it('stop waits for running probes within the grace, then aborts them', async () => {
    const time = new FakeTime();
    const rec = recorder(time, 3_000);
    const s = new Scheduler(rec.runner, { maxConcurrency: 10, clock: time, timers: time });
    s.setTargets(targets(2, 10_000, 5_000));
    await time.advance(10_000);
    assert.equal(s.inFlight > 0 || rec.starts.length === 2, true);
    const running = s.inFlight;
    let stopped = false;
    const p = s.stop(500).then(() => (stopped = true));
    await flushMicrotasks();
    assert.equal(stopped, running === 0);
    await time.advance(600);
    await p;
    assert.equal(s.inFlight, 0);
    assert.equal(rec.aborted.length, running, 'still-running probes aborted after the grace');
    assert.equal(time.pendingTimers, 0);
    const n = rec.starts.length;
    s.setTargets(targets(2, 100));
    await time.advance(1_000);
    assert.equal(rec.starts.length, n, 'nothing scheduled after stop');
  });

  it('counts slots missed while the previous probe of the target is still running', async () => {
    const time = new FakeTime();
    let missed = 0;
    // A runner that ignores its signal and takes 2.5 intervals.
    const s = new Scheduler(() => new Promise<void>((r) => time.set(r, 2_500)), { maxConcurrency: 10, clock: time, timers: time, observer: { missed: (n) => (missed += n) } });
    s.setTargets(targets(1, 1_000, 500));
    await time.advance(1_000);
    await time.advance(2_000);
    assert.equal(missed, 2);
    await stopOn(time, s, 5_000);
  });
});
