import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AnchoredClock, loadConfig, obj, silentLogger } from '@probemesh/common';
import { fpingArgs, FpingPool, parseFpingStderr } from './fping';
import { ICMP_PHASES, icmpProbe, icmpProbeSchema, IcmpProbeOptions, rttStats } from './icmp';
import { FailureCodes } from './failure';
import { ProbeOutcome } from './types';
import { createIcmpNetns, IcmpNetns, netnsUnavailableReason } from '../testing/zoo';

const clock = new AnchoredClock();
const ctx = { clock, log: silentLogger() };
const options = (yaml: string): IcmpProbeOptions => loadConfig(obj({ icmp: icmpProbeSchema }), { text: `icmp:\n${yaml.replace(/^/gm, '  ')}`, env: {} }).icmp;
const fast = 'packets: 3\ninterval: 20ms';
async function probe(target: string, yaml = fast, timeoutMs = 1_500, fping?: readonly string[], pool?: FpingPool): Promise<ProbeOutcome> {
  return icmpProbe(options(yaml), { fping, pool }).run({ id: 't', url: target, module: 'icmp', timeoutMs, labels: {} }, AbortSignal.timeout(timeoutMs), ctx);
}
const gauges = (o: ProbeOutcome, name: string): Record<string, number> => Object.fromEntries(o.gauges.filter((g) => g.name === name).map((g) => [Object.values(g.labels ?? {}).join(',') || '_', g.value]));

describe('icmp: fping output parsing and stats', () => {
  it('parses the -C summary and ICMP error lines per host', () => {
    const stderr = [
      'ICMP Host Unreachable from 10.0.0.2 for ICMP Echo sent to 10.98.0.5',
      'ICMP Unreachable (Fragmentation Needed) from 10.0.0.2 for ICMP Echo sent to 10.204.0.2',
      '',
      '127.0.0.1  : 0.028 0.034 -',
      '10.98.0.5  : - - -',
      '::1 : 0.071 0.036 0.033',
    ].join('\n');
    const r = parseFpingStderr(stderr, ['127.0.0.1', '10.98.0.5', '::1', '10.204.0.2', '10.1.1.1']);
    assert.deepEqual(r.get('127.0.0.1'), { rttsMs: [0.028, 0.034, null], icmpErrors: [] });
    assert.deepEqual(r.get('10.98.0.5'), { rttsMs: [null, null, null], icmpErrors: ['Host Unreachable'] });
    assert.deepEqual(r.get('::1')?.rttsMs, [0.071, 0.036, 0.033]);
    assert.deepEqual(r.get('10.204.0.2')?.icmpErrors, ['Unreachable (Fragmentation Needed)']);
    assert.deepEqual(r.get('10.1.1.1'), { rttsMs: [], icmpErrors: [] });
  });
  it('builds fping arguments from the module options', () => {
    assert.deepEqual(fpingArgs({ family: 4, count: 3, periodMs: 20, timeoutMs: 500, payloadSize: 1472, dontFragment: true, ttl: 5, sourceIp: '10.0.0.1' }, ['a', 'b']),
      ['-4', '-i', '1', '-C', '3', '-p', '20', '-t', '500', '-r', '0', '-b', '1472', '-M', '-H', '5', '-S', '10.0.0.1', 'a', 'b']);
  });
  it('RTT stats: min/avg/max/population stddev in seconds over replies only', () => {
    const s = rttStats([1, null, 3])!;
    assert.deepEqual([s.min, s.avg, s.max], [0.001, 0.002, 0.003]);
    assert.ok(Math.abs(s.stddev - 0.001) < 1e-12);
    assert.equal(rttStats([null, null]), undefined);
  });
  it('config: defaults and bounds', () => {
    const d = options('{}');
    assert.equal(d.packets, 3);
    assert.equal(d.interval, 100);
    assert.equal(d.dont_fragment, false);
    assert.throws(() => options('ttl: 0'), /icmp\.ttl: must be >= 1/);
    assert.throws(() => options('payload_sizes: 3'), /icmp\.payload_sizes: unknown key/);
  });
});

describe('icmp probe via fping on loopback', () => {
  it('127.0.0.1: success, loss 0, RTT stats, phases and blackbox gauges', async () => {
    const o = await probe('127.0.0.1');
    assert.equal(o.success, true, o.failureMessage);
    assert.deepEqual(o.phases.map((p) => p.name), [...ICMP_PHASES]);
    assert.equal(o.phases[0]!.durationNs, 0n);
    assert.ok(o.phases[2]!.durationNs >= 40_000_000n, 'exchange covers 2 intervals of 20 ms');
    assert.deepEqual(gauges(o, 'probemesh_icmp_packet_loss_ratio'), { _: 0 });
    const rtt = gauges(o, 'probemesh_icmp_rtt_seconds');
    assert.deepEqual(Object.keys(rtt).sort(), ['avg', 'max', 'min', 'stddev']);
    assert.ok(rtt.min! > 0 && rtt.min! <= rtt.avg! && rtt.avg! <= rtt.max! && rtt.max! < 0.5, JSON.stringify(rtt));
    assert.deepEqual(Object.keys(gauges(o, 'probe_icmp_duration_seconds')).sort(), ['resolve', 'rtt', 'setup']);
  });

  it('::1 (IPv6): success with loss 0', async () => {
    const o = await probe('::1');
    assert.equal(o.success, true, o.failureMessage);
    assert.deepEqual(gauges(o, 'probemesh_icmp_packet_loss_ratio'), { _: 0 });
    assert.equal(Object.keys(gauges(o, 'probemesh_icmp_rtt_seconds')).length, 4);
  });

  it('DF with a 1472-byte payload passes on loopback (MTU 65536)', async () => {
    const o = await probe('127.0.0.1', `${fast}\ndont_fragment: true\npayload_size: 1472`);
    assert.equal(o.success, true, o.failureMessage);
  });

  it('concurrent probes share one fping run (batch) and each gets its own result', async () => {
    const pool = new FpingPool(undefined, 20);
    const [a, b, c] = await Promise.all([probe('127.0.0.1', fast, 1_500, undefined, pool), probe('::1', fast, 1_500, undefined, pool), probe('127.0.0.2', fast, 1_500, undefined, pool)]);
    assert.equal(a.success && b.success && c.success, true, `${a.failureMessage} ${b.failureMessage} ${c.failureMessage}`);
    // IPv4 targets share a run, ::1 needs -6: two fping processes for three probes.
    assert.deepEqual(pool.stats, { runs: 2, hosts: 3 });
  });

  it('missing fping binary → error naming the package; invalid target → invalid_target', async () => {
    const o = await probe('127.0.0.1', fast, 1_500, ['/nonexistent/fping']);
    assert.equal(o.failureCode, FailureCodes.ERROR);
    assert.match(o.failureMessage, /fping/);
    assert.equal((await probe('not a host!')).failureCode, FailureCodes.INVALID_TARGET);
  });
});

describe('icmp probe in a private network namespace (unreachable, timeout, path MTU)', () => {
  const skip = netnsUnavailableReason();
  let ns: IcmpNetns | undefined;
  before(() => {
    if (!skip) ns = createIcmpNetns();
  });
  after(() => ns?.cleanup());

  it('neighbour reachable from A', { skip }, async () => {
    const o = await probe(ns!.neighbour, fast, 1_500, ns!.fpingInA);
    assert.equal(o.success, true, o.failureMessage);
  });

  it('ICMP host unreachable from the router → icmp_unreachable', { skip }, async () => {
    const o = await probe(ns!.unreachable, fast, 1_500, ns!.fpingInA);
    assert.equal(o.failureCode, FailureCodes.ICMP_UNREACHABLE, o.failureMessage);
    assert.match(o.failureMessage, /Host Unreachable/);
    assert.deepEqual(gauges(o, 'probemesh_icmp_packet_loss_ratio'), { _: 1 });
    assert.deepEqual(gauges(o, 'probemesh_icmp_rtt_seconds'), {});
  });

  it('blackholed address → icmp_timeout within the probe timeout', { skip }, async () => {
    const start = clock.monoNs();
    const o = await probe(ns!.blackholed, fast, 600, ns!.fpingInA);
    const took = Number(clock.monoNs() - start) / 1e6;
    assert.equal(o.failureCode, FailureCodes.ICMP_TIMEOUT, o.failureMessage);
    assert.ok(took < 1_000, `took ${took} ms`);
    assert.deepEqual(gauges(o, 'probemesh_icmp_packet_loss_ratio'), { _: 1 });
  });

  it('path MTU: DF 1472 behind a 1400-MTU hop → icmp_frag_needed; 1372 passes', { skip }, async () => {
    const big = await probe(ns!.behindSmallMtu, `${fast}\ndont_fragment: true\npayload_size: 1472`, 1_500, ns!.fpingInA);
    assert.equal(big.failureCode, FailureCodes.ICMP_FRAG_NEEDED, big.failureMessage);
    const fits = await probe(ns!.behindSmallMtu, `${fast}\ndont_fragment: true\npayload_size: 1372`, 1_500, ns!.fpingInA);
    assert.equal(fits.success, true, fits.failureMessage);
    const noDf = await probe(ns!.behindSmallMtu, `${fast}\npayload_size: 1472`, 1_500, ns!.fpingInA);
    assert.equal(noDf.success, true, `without DF the packet is fragmented: ${noDf.failureMessage}`);
  });

  it('local MTU 1400: DF 1472 is never sent → icmp_timeout with the MTU hint', { skip }, async () => {
    const o = await probe(ns!.fromCToA, `${fast}\ndont_fragment: true\npayload_size: 1472`, 800, ns!.fpingInC);
    assert.equal(o.failureCode, FailureCodes.ICMP_TIMEOUT, o.failureMessage);
    assert.match(o.failureMessage, /local interface MTU/);
  });

  it('ttl 1 to a host two hops away → icmp_ttl_exceeded', { skip }, async () => {
    const o = await probe(ns!.behindSmallMtu, `${fast}\nttl: 1`, 1_500, ns!.fpingInA);
    assert.equal(o.failureCode, FailureCodes.ICMP_TTL_EXCEEDED, o.failureMessage);
    assert.equal((await probe(ns!.behindSmallMtu, `${fast}\nttl: 2`, 1_500, ns!.fpingInA)).success, true);
  });
});
