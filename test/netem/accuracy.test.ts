/**
 * Accuracy against truth through a path with injected delay and loss (see netns.ts):
 * the kernel connect time (eBPF) must be within 50 µs of a C connect() timer and the
 * user-space connect phase within 1 ms (medians), at one-way delays of 0.5, 2 and 20 ms;
 * SYN and data losses must show as counted retransmits on the probes that had them.
 * Needs root (CI runs as root); skips with the reason otherwise.
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
    it(`one-way delay ${delayUs / 1000} ms: kernel connect within 50 µs of truth, user-space within 1 ms (medians)`, async () => {
      await path.setDelay(delayUs);
      const { samples, done } = await drive(path, { rounds: 3, perRound: 10, conntimer: path.tools.conntimer });
      assert.deepEqual(done.ebpf, { up: true, reason: '' });
      const truth = samples.flatMap((s) => (s.kind === 'truth' ? [s.ns] : []));
      const pm = samples.flatMap((s) => (s.kind === 'pm' ? [s] : []));
      assert.equal(truth.length, 30);
      assert.equal(pm.length, 30);
      assert.ok(pm.every((p) => p.success && p.kernel !== null), 'every probe succeeded and was joined to kernel data');
      const kernel = pm.map((p) => p.kernel!.connectNs);
      const user = pm.map((p) => p.userConnectNs);
      const t = median(truth);
      assert.ok(t >= delayUs * 1000 && t < delayUs * 1000 + 2_000_000, `truth ${t} ns reflects the ${delayUs} µs delay`);
      assert.ok(Math.abs(median(kernel) - t) <= 50_000, `kernel median ${median(kernel)} ns vs truth ${t} ns`);
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

