/**
 * Accuracy against truth through a path with injected delay and loss (see netns.ts):
 * the kernel connect time (eBPF) must be within 50 µs of a C connect() timer and the
 * user-space connect phase within 1 ms (medians), at one-way delays of 0.5, 2 and 20 ms;
 * SYN and data losses must show as counted retransmits on the probes that had them.
 * Needs root (CI runs as root); skips with the reason otherwise.
 *
 * The truth and the kernel figure are different connections, so they must cross the path
 * under the same conditions: each truth connect is paired with one probe (alternating
 * which goes first), each starts on an idle path, and the truth timer busy-polls its
 * non-blocking connect (a blocked thread's wake-up after ESTABLISHED, tens of µs here and
 * more under load, is in a connect() timing but not in SYN_SENT → ESTABLISHED). The
 * delayer and conntimer run SCHED_FIFO. With batches of 10 truths then 10 probes, a
 * blocking timer and no real-time priority, the 20 ms case missed the 50 µs bound about
 * once in four CI runs (61 µs) and by hundreds of µs with two busy loops running.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { buildTools, DelayedPath, drive, median, netemUnavailable } from './netns';
const unavailable = netemUnavailable();

describe('accuracy vs injected delay (netns + NFQUEUE delayer)', { skip: unavailable || false, timeout: 240_000 }, () => {
  let path: DelayedPath;

  before(async () => {
    path = new DelayedPath(buildTools());
    await path.open();
  });
  after(async () => {
    await path?.close();
  });

  for (const delayUs of [500, 2000, 20000]) {
    it(`one-way delay ${delayUs / 1000} ms: kernel connect within 50 µs of truth, user-space within 1 ms (medians)`, async (tc) => {
      await path.setDelay(delayUs);
      // Truth and probes in pairs, alternating which goes first, each connect starting on an
      // idle path (the previous connection's teardown takes one delayed round trip), the
      // truth's end read by polling instead of a wake-up: see the module comment.
      const gapMs = Math.ceil((2 * delayUs) / 1000) + 5;
      const { samples, done } = await drive(path, { rounds: 3, perRound: 10, conntimer: path.tools.conntimer, pairwise: true, spin: true, gapMs });
      assert.deepEqual(done.ebpf, { up: true, reason: '' });
      const truth = samples.flatMap((s) => (s.kind === 'truth' ? [s.ns] : []));
      const pm = samples.flatMap((s) => (s.kind === 'pm' ? [s] : []));
      assert.equal(truth.length, 30);
      assert.equal(pm.length, 30);
      assert.ok(pm.every((p) => p.success && p.kernel !== null), 'every probe succeeded and was joined to kernel data');
      const kernel = pm.map((p) => p.kernel!.connectNs);
      const user = pm.map((p) => p.userConnectNs);
      const t = median(truth);
      const us = (ns: number): string => (ns / 1000).toFixed(1);
      tc.diagnostic(`truth median ${us(t)} µs; kernel ${us(median(kernel) - t)} µs and user-space ${us(median(user) - t)} µs off it (medians)`);
      assert.ok(t >= delayUs * 1000 && t < delayUs * 1000 + 2_000_000, `truth ${t} ns reflects the ${delayUs} µs delay`);
      assert.ok(Math.abs(median(kernel) - t) <= 50_000, `kernel median ${median(kernel)} ns vs truth ${t} ns: ${((median(kernel) - t) / 1000).toFixed(1)} µs off`);
      assert.ok(Math.abs(median(user) - t) <= 1_000_000, `user-space median ${median(user)} ns vs truth ${t} ns`);
      assert.ok(pm.every((p) => p.kernel!.retransmits === 0 && p.kernel!.resets === 0), 'no retransmits or resets without loss');
      assert.ok(pm.every((p) => p.kernel!.srttUs >= delayUs * 0.9), 'srtt reflects the delay');
    });
  }

  it('a lost SYN shows as a ~1 s connect with its SYN retransmit counted and named', async () => {
    await path.setDelay(500, { firstSyn: true });
    const { samples } = await drive(path, { rounds: 1, perRound: 3, timeoutMs: 5000 });
    const pm = samples.flatMap((s) => (s.kind === 'pm' ? [s] : []));
    assert.equal(pm.length, 3);
    for (const p of pm) {
      assert.equal(p.success, true);
      assert.ok(p.kernel, 'joined');
      assert.equal(p.kernel.synRetransmits, 1);
      assert.ok(p.kernel.connectNs >= 1_000_000_000 && p.kernel.connectNs < 1_200_000_000, `kernel connect ${p.kernel.connectNs} ns ≈ 1 s`);
      assert.ok(p.userConnectNs >= p.kernel.connectNs, 'user-space sees the same second');
      assert.match(p.note, /1 SYN retransmit/);
    }
  });

  it('a lost request segment is counted as a data retransmit on that probe only', async () => {
    await path.setDelay(500, { firstData: true });
    const { samples } = await drive(path, { rounds: 1, perRound: 3, timeoutMs: 5000 });
    const pm = samples.flatMap((s) => (s.kind === 'pm' ? [s] : []));
    assert.equal(pm.length, 3);
    for (const p of pm) {
      assert.equal(p.success, true);
      assert.ok(p.kernel, 'joined');
      assert.equal(p.kernel.synRetransmits, 0);
      assert.ok(p.kernel.retransmits >= 1, `retransmits ${p.kernel.retransmits}`);
      assert.match(p.note, /data retransmit/);
    }
  });
});

