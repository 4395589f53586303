import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { parseKernelLine, TcpConnEvent } from './events';
import { KernelJoiner } from './joiner';
import { kernelNote, kernelTcpOf } from './kernel-tcp';

const LINE =
  '{"e":"tcp","sk":"ffff8881","sport":44070,"dport":8080,"daddr":"::ffff:10.9.0.2","syn":"2100453417030","est":"2100453472874","fb":"2100457436229","end":"2100461271193","state":9,"srtt_us":189,"mdev_us":39,"total_retrans":0,"rtx":0,"synrtx":0,"rst":0}';

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
  });
  it('keeps ns precision past 2^53 and parses ticks, lost counts, and ignores noise', () => {
    assert.deepEqual(parseKernelLine('{"e":"tick","t":"18446744073709551000"}'), { e: 'tick', t: 18446744073709551000n });
    assert.deepEqual(parseKernelLine('Lost 12 events'), { e: 'lost', count: 12 });
    assert.equal(parseKernelLine('Attaching 8 probes...'), undefined);
    assert.equal(parseKernelLine(''), undefined);
    assert.equal(parseKernelLine('{"e":"tcp",'), undefined);
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
