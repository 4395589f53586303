import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { parseKernelLine, TcpConnEvent } from './events';
import { KernelJoiner } from './joiner';
import { kernelNote, kernelTcpOf } from './kernel-tcp';

// As bpftrace 0.17 prints an entry of the program's @done0 map (key: socket address, SYN time).
const LINE = '@done0[-131386485255360, 2100453417030]: (44070, 8080, ::ffff:10.9.0.2, 2100453472874, 2100457436229, 2100461271193, 9, 189, 39, 0, 0, 0, 0)';

function ev(over: Partial<TcpConnEvent> = {}): TcpConnEvent {
  return { ...(parseKernelLine(LINE) as TcpConnEvent), ...over };
}

describe('parseKernelLine', () => {
  it('parses a socket line with bigint times and the IPv4 address unmapped', () => {
    const e = parseKernelLine(LINE) as TcpConnEvent;
    assert.equal(e.e, 'tcp');
    assert.equal(e.daddr, '10.9.0.2');
    assert.equal(e.sport, 44070);
    assert.equal(e.synNs, 2100453417030n);
    assert.equal(e.estNs - e.synNs, 55844n);
    assert.equal(e.state, 9);
    assert.equal(e.firstByteNs, 2100457436229n);
    assert.equal(e.endNs, 2100461271193n);
    assert.deepEqual([e.srttRaw, e.mdevRaw, e.totalRetrans, e.retransmits, e.synRetransmits, e.resets], [189, 39, 0, 0, 0, 0]);
    const counts = parseKernelLine(LINE.replace('0, 0, 0, 0)', '3, 2, 1, 1)')) as TcpConnEvent;
    assert.deepEqual([counts.totalRetrans, counts.retransmits, counts.synRetransmits, counts.resets], [3, 2, 1, 1]);
  });
  it('keeps ns precision past 2^53 and parses ticks, lost counts, and ignores noise', () => {
    assert.deepEqual(parseKernelLine('{"e":"tick","t":"18446744073709551000"}'), { e: 'tick', t: 18446744073709551000n });
    assert.deepEqual(parseKernelLine('Lost 12 events'), { e: 'lost', count: 12 });
    assert.equal(parseKernelLine('Attaching 8 probes...'), undefined);
    assert.equal(parseKernelLine(''), undefined);
    assert.equal(parseKernelLine('{"e":"tcp",'), undefined);
    assert.equal(parseKernelLine('@gen: 1'), undefined);
    assert.equal(parseKernelLine(LINE.replace(', 0)', ')')), undefined, 'a field missing');
    assert.equal(parseKernelLine(LINE.replace('(44070', '(x')), undefined, 'a field not a number');
    assert.equal(parseKernelLine(LINE.slice(0, -1)), undefined, 'cut short');
    const v6 = parseKernelLine(LINE.replace('::ffff:10.9.0.2', 'FD00::2').replace('@done0', '@done1').replace('2100453417030]', '18446744073709551000]')) as TcpConnEvent;
    assert.equal(v6.daddr, 'fd00::2');
    assert.equal(v6.synNs, 18446744073709551000n);
  });
});

describe('kernelTcpOf / kernelNote', () => {
  it('derives connect, first byte, srtt and rttvar from the raw fields', () => {
    const k = kernelTcpOf(ev());
    assert.equal(k.connectNs, 55844n);
    assert.equal(k.firstByteNs, 2100457436229n - 2100453472874n);
    assert.equal(k.srttUs, 189 >>> 3);
    assert.equal(k.rttvarUs, 39 >>> 2);
    assert.equal(k.localPort, 44070);
    assert.equal(kernelNote(k), '');
  });
  it('reports a never-established socket with zeros and names a SYN retransmit', () => {
    const k = kernelTcpOf(ev({ estNs: 0n, firstByteNs: 0n, retransmits: 2, synRetransmits: 2, totalRetrans: 2, mdevRaw: 4_000_000 }));
    assert.equal(k.connectNs, 0n);
    assert.equal(k.rttvarUs, 0);
    assert.match(kernelNote(k), /2 SYN retransmits .*never established/);
    const slow = kernelTcpOf(ev({ estNs: 2100453417030n + 1_020_000_000n, synRetransmits: 1, retransmits: 1 }));
    assert.match(kernelNote(slow), /1 SYN retransmit .*kernel connect 1020\.0ms/);
  });
});

describe('KernelJoiner', () => {
  const info = { localPort: 44070, remoteAddress: '10.9.0.2', remotePort: 8080, startMonoNs: 2100453000000n, endMonoNs: 2100461300000n };

  it('joins a line that arrived before the probe asked', async () => {
    const j = new KernelJoiner();
    j.addEvent(ev());
    const k = await j.join(info);
    assert.equal(k?.connectNs, 55844n);
    assert.equal(j.heldEvents, 0);
    assert.deepEqual(j.counts, { matched: 1, unmatched: 0, evicted: 0 });
  });

  it('joins a line that arrives after the probe asked', async () => {
    const j = new KernelJoiner();
    const p = j.join(info);
    assert.equal(j.waitingProbes, 1);
    j.addEvent(ev({ sport: 1 })); // another socket to the same peer
    j.addEvent(ev());
    assert.equal((await p)?.localPort, 44070);
    assert.equal(j.heldEvents, 1);
  });

  it('matches by peer and time window when the local port is unknown (ECONNREFUSED)', async () => {
    const j = new KernelJoiner();
    j.addEvent(ev({ synNs: info.startMonoNs - 1n, sport: 1 })); // before the window
    j.addEvent(ev({ estNs: 0n, resets: 1, sport: 5555 }));
    const k = await j.join({ ...info, localPort: undefined });
    assert.equal(k?.resets, 1);
    assert.equal(k?.localPort, 5555);
  });

  it('a probe without a local port takes no established socket, and of never-established ones the SYN soonest after its start', async () => {
    const start = info.startMonoNs;
    const portless = { ...info, localPort: undefined };
    // Waiting first: another probe's established socket in the window passes it by.
    const j = new KernelJoiner();
    const p = j.join(portless);
    j.addEvent(ev({ sport: 7001, synNs: start + 10n }));
    assert.equal(j.waitingProbes, 1);
    j.addEvent(ev({ sport: 7002, synNs: start + 20n, estNs: 0n, resets: 1 }));
    assert.equal((await p)?.localPort, 7002);
    assert.equal((await j.join({ ...info, localPort: 7001 }))?.localPort, 7001, 'the established socket is still there for its owner');
    // Lines first: of two never-established sockets, the one whose SYN came soonest after the start.
    const k = new KernelJoiner();
    k.addEvent(ev({ sport: 7003, synNs: start + 5_000_000n, estNs: 0n }));
    k.addEvent(ev({ sport: 7004, synNs: start + 30n, estNs: 0n }));
    k.addEvent(ev({ sport: 7005, synNs: start + 40n }));
    assert.equal((await k.join(portless))?.localPort, 7004);
    // Two port-less probes waiting for one line: the one that started last before its SYN gets it.
    const m = new KernelJoiner();
    const early = m.join(portless);
    const late = m.join({ ...portless, startMonoNs: start + 1_000n });
    m.addEvent(ev({ sport: 7006, synNs: start + 1_020n, estNs: 0n }));
    assert.equal((await late)?.localPort, 7006);
    assert.equal(m.waitingProbes, 1);
    m.release();
    assert.equal(await early, undefined);
  });

  it('answers undefined once a tick passes the probe end plus grace, not before', async () => {
    const j = new KernelJoiner({ graceNs: 5_000_000n });
    let settled: unknown = 'pending';
    void j.join(info).then((k) => (settled = k));
    j.tick(info.endMonoNs + 1_000_000n);
    await Promise.resolve();
    assert.equal(settled, 'pending');
    j.tick(info.endMonoNs + 6_000_000n);
    await new Promise((r) => setImmediate(r));
    assert.equal(settled, undefined);
    assert.equal(j.counts.unmatched, 1);
    assert.equal(j.waitingProbes, 0);
  });

  it('stays bounded: old unclaimed lines are evicted by count and by age', () => {
    const j = new KernelJoiner({ maxEvents: 100, maxAgeNs: 1_000_000_000n });
    for (let i = 0; i < 1000; i++) j.addEvent(ev({ sport: i, endNs: BigInt(i) * 1_000_000n }));
    assert.equal(j.heldEvents, 100);
    assert.equal(j.counts.evicted, 900);
    j.tick(999_000_000n + 1_000_000_001n);
    assert.equal(j.heldEvents, 0);
  });

  it('expire() answers probes waiting past a bound when no tick comes (a stalled bpftrace), not the others', async () => {
    const j = new KernelJoiner({ graceNs: 5_000_000n });
    const old = j.join(info);
    const recent = j.join({ ...info, startMonoNs: info.startMonoNs + 10_000_000_000n, endMonoNs: info.endMonoNs + 10_000_000_000n });
    assert.equal(j.expire(info.endMonoNs + 5_000_000n), 0, 'deadline not passed yet');
    assert.equal(j.expire(info.endMonoNs + 2_000_000_000n), 1);
    assert.equal(await old, undefined);
    assert.equal(j.waitingProbes, 1);
    j.addEvent(ev({ synNs: info.startMonoNs + 10_000_000_100n, endNs: info.endMonoNs + 10_000_000_000n }));
    assert.ok(await recent);
    assert.deepEqual(j.counts, { matched: 1, unmatched: 1, evicted: 0 });
  });

  it('release() answers every waiting probe', async () => {
    const j = new KernelJoiner();
    const ps = [j.join(info), j.join({ ...info, remotePort: 1 })];
    j.release();
    assert.deepEqual(await Promise.all(ps), [undefined, undefined]);
  });

  it('joins thousands of interleaved probes correctly', async () => {
    const j = new KernelJoiner();
    const n = 5000;
    const ps: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) {
      const base = BigInt(i) * 1_000_000n;
      const e = ev({ sport: 10000 + (i % 50000), synNs: base + 10n, estNs: base + 10n + BigInt(i), endNs: base + 500n });
      const inf = { ...info, localPort: e.sport, startMonoNs: base, endMonoNs: base + 600n };
      if (i % 2) {
        j.addEvent(e);
        ps.push(j.join(inf).then((k) => k?.connectNs));
      } else {
        ps.push(j.join(inf).then((k) => k?.connectNs));
        j.addEvent(e);
      }
    }
    const got = await Promise.all(ps);
    assert.deepEqual(got, Array.from({ length: n }, (_, i) => BigInt(i)));
    assert.equal(j.heldEvents, 0);
  });
});
