import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { silentLogger } from '@probemesh/common';
import { ClockSyncMonitor } from './monitor';
import { parseAdjtimexLine, parseChronyTracking, parsePmcTimeStatus, statusFromAdjtimex } from './sync';

// Captured outputs (chrony 4.3 `chronyc -c tracking`, linuxptp 3.1 pmc).
const CHRONY_SYNCED = 'A9FEA97B,169.254.169.123,4,1700000000.123456789,-0.000001234,0.000000567,0.000012345,-12.345,0.001,0.123,0.000567890,0.000123456,64.2,Normal\n';
const CHRONY_UNSYNCED = '00000000,,0,0.000000000,0.000000000,0.000000000,0.000000000,0.000,0.000,0.000,1.000000000,1.000000000,0.0,Not synchronised\n';
const PMC = `sending: GET TIME_STATUS_NP
\t90e2ba.fffe.0eaf12-0 seq 0 RESPONSE MANAGEMENT TIME_STATUS_NP
\t\tmaster_offset              -37
\t\tingress_time               1700000000123456789
\t\tcumulativeScaledRateOffset +0.000000000
\t\tscaledLastGmPhaseChange    0
\t\tgmTimeBaseIndicator        0
\t\tlastGmPhaseChange          0x0000'0000000000000000.0000
\t\tgmPresent                  true
\t\tgmIdentity                 001122.fffe.334455
`;

describe('clock sync parsers', () => {
  it('chronyc: synced, offset sign (positive correction = clock slow), chrony error bound', () => {
    const s = parseChronyTracking(CHRONY_SYNCED)!;
    assert.equal(s.source, 'ntp');
    assert.equal(s.synced, true);
    assert.equal(s.offsetNs, 1234n); // correction -1.234 µs: the clock is 1.234 µs fast
    // |0.000001234| + 0.000123456 + 0.000567890 / 2 = 0.000408635 s
    assert.equal(s.errorBoundNs, 408635n);
    assert.match(s.detail, /169\.254\.169\.123 stratum 4/);
  });
  it('chronyc: not synchronised → synced false, bound unknown', () => {
    const s = parseChronyTracking(CHRONY_UNSYNCED)!;
    assert.equal(s.synced, false);
    assert.equal(s.errorBoundNs, 0n);
    assert.equal(parseChronyTracking('506 Cannot talk to daemon'), undefined);
  });
  it('pmc TIME_STATUS_NP: master offset and grandmaster presence', () => {
    const s = parsePmcTimeStatus(PMC)!;
    assert.deepEqual([s.source, s.synced, s.offsetNs, s.errorBoundNs], ['ptp', true, -37n, 37n]);
    const absent = parsePmcTimeStatus(PMC.replace('gmPresent                  true', 'gmPresent                  false'))!;
    assert.equal(absent.synced, false);
    assert.equal(parsePmcTimeStatus('sending: GET TIME_STATUS_NP\n'), undefined);
  });
  it('adjtimex: STA_UNSYNC → none with the kernel maxerror; disciplined → ntp', () => {
    const unsynced = statusFromAdjtimex(parseAdjtimexLine('5 64 0 16000000 16000000\n')!);
    assert.deepEqual([unsynced.source, unsynced.synced, unsynced.errorBoundNs], ['none', false, 16_000_000_000n]);
    const synced = statusFromAdjtimex(parseAdjtimexLine('0 8193 -250 1500 20')!); // STA_PLL|STA_NANO, offset in ns
    assert.deepEqual([synced.source, synced.synced, synced.offsetNs, synced.errorBoundNs], ['ntp', true, -250n, 1_500_000n]);
    assert.equal(parseAdjtimexLine('garbage'), undefined);
  });
});

describe('ClockSyncMonitor', () => {
  it('prefers a synced PTP source over chrony and the kernel', async () => {
    const m = new ClockSyncMonitor({
      pmcPath: '/bin/true',
      chronycPath: '/bin/true',
      log: silentLogger(),
      run: async (cmd, args) => (args.includes('tracking') ? CHRONY_SYNCED : PMC),
      readKernel: async () => statusFromAdjtimex(parseAdjtimexLine('0 1 0 1000 10')!),
    });
    const s = await m.start();
    await m.stop();
    assert.equal(s.source, 'ptp');
  });
  it('says none, with the reasons, when no source answers', async () => {
    const m = new ClockSyncMonitor({
      pmcPath: '/nonexistent/pmc',
      chronycPath: '/bin/true',
      log: silentLogger(),
      run: async () => {
        throw new Error('506 Cannot talk to daemon');
      },
      readKernel: async () => statusFromAdjtimex(parseAdjtimexLine('5 64 0 16000000 16000000')!),
    });
    const s = await m.start();
    await m.stop();
    assert.equal(s.source, 'none');
    assert.equal(s.synced, false);
    assert.match(s.detail, /pmc not installed/);
    assert.match(s.detail, /chronyc: 506 Cannot talk to daemon/);
  });
  it('reads the real kernel state through the compiled adjtimex helper', async (t) => {
    const m = new ClockSyncMonitor({ pmcPath: false, chronycPath: false, log: silentLogger() });
    const s = await m.start();
    await m.stop();
    if (s.detail.startsWith('no clock sync source')) return t.skip(`adjtimex helper unavailable (no C compiler?): ${s.detail}`);
    assert.match(s.detail, /^adjtimex: /);
    assert.ok(s.errorBoundNs > 0n, 'the kernel always states a maxerror');
  });
});
