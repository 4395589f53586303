/**
 * Clock sync state from the tools that know it: linuxptp `pmc`, chrony `chronyc`, and the
 * kernel's own `adjtimex` (through a tiny helper, see adjtimex.ts). Parsers are pure
 * functions, unit-tested on captured outputs.
 */

/** Where the clock's time comes from (proto `ClockStatus.source`). */
export type ClockSource = 'ptp' | 'ntp' | 'none';

/** Sync state of the system clock (proto `ClockStatus`). */
export interface ClockSyncStatus {
  /** `ptp`, `ntp` or `none`. */
  readonly source: ClockSource;
  /** Synchronised to that source now. */
  readonly synced: boolean;
  /** System clock minus source time, ns (0 when unknown). */
  readonly offsetNs: bigint;
  /** Estimated maximum error of the system clock, ns (0 = unknown). */
  readonly errorBoundNs: bigint;
  /** What the figures were read from, e.g. "chronyc tracking", "adjtimex", "no sync daemon found". */
  readonly detail: string;
}

/** The state said when nothing could be read. */
export function unsyncedStatus(detail: string, errorBoundNs = 0n): ClockSyncStatus {
  return { source: 'none', synced: false, offsetNs: 0n, errorBoundNs, detail };
}

/**
 * `chronyc -c tracking` (CSV): ref id, ref name, stratum, ref time, system time (the
 * correction chronyd still applies: > 0 = system clock slow), last offset, RMS offset,
 * frequency, residual freq, skew, root delay, root dispersion, update interval, leap status.
 * Error bound as chrony documents it: |system time| + root dispersion + root delay / 2.
 */
export function parseChronyTracking(csv: string): ClockSyncStatus | undefined {
  const line = csv.split('\n').find((l) => l.includes(','));
  if (!line) return undefined;
  const f = line.trim().split(',');
  if (f.length < 14) return undefined;
  const stratum = Number(f[2]);
  const correction = Number(f[4]);
  const rootDelay = Number(f[10]);
  const rootDispersion = Number(f[11]);
  const leap = f[13] ?? '';
  if (![stratum, correction, rootDelay, rootDispersion].every(Number.isFinite)) return undefined;
  const synced = leap !== 'Not synchronised' && stratum > 0 && stratum < 16 && f[0] !== '00000000';
  const boundS = Math.abs(correction) + rootDispersion + rootDelay / 2;
  return {
    source: 'ntp',
    synced,
    offsetNs: BigInt(Math.round(-correction * 1e9)),
    errorBoundNs: synced ? BigInt(Math.round(boundS * 1e9)) : 0n,
    detail: `chronyc tracking: ${f[1] || f[0]} stratum ${stratum}, ${leap}`,
  };
}

/**
 * `pmc -u -b 0 'GET TIME_STATUS_NP'`: `master_offset` (ns, PHC minus grandmaster) and
 * `gmPresent`. The system clock follows the PHC through phc2sys; the bound used is
 * |master_offset| (the PTP path's own error estimate), 0 when no grandmaster.
 */
export function parsePmcTimeStatus(text: string): ClockSyncStatus | undefined {
  if (!/TIME_STATUS_NP/.test(text)) return undefined;
  const offset = /master_offset\s+([+-]?\d+)/.exec(text);
  const gm = /gmPresent\s+(true|false)/.exec(text);
  if (!offset || !gm) return undefined;
  const off = BigInt(offset[1]!);
  const synced = gm[1] === 'true';
  const abs = off < 0n ? -off : off;
  const gmId = /gmIdentity\s+(\S+)/.exec(text)?.[1] ?? '?';
  return { source: 'ptp', synced, offsetNs: off, errorBoundNs: synced ? abs : 0n, detail: `pmc TIME_STATUS_NP: grandmaster ${gmId}${synced ? '' : ' (not present)'}` };
}

/** What the adjtimex helper prints: `ret status offset maxerror esterror` (see adjtimex.ts). */
export interface Adjtimex {
  /** Return value: clock state (TIME_OK 0 … TIME_ERROR 5). */
  readonly ret: number;
  /** `status` flags (STA_*). */
  readonly status: number;
  /** Current offset (µs, or ns with STA_NANO). */
  readonly offset: number;
  /** Maximum error, µs. */
  readonly maxerror: number;
  /** Estimated error, µs. */
  readonly esterror: number;
}

const STA_UNSYNC = 0x0040;
const STA_NANO = 0x2000;
const TIME_ERROR = 5;

/** Parses the helper's line. */
export function parseAdjtimexLine(line: string): Adjtimex | undefined {
  const m = /^(-?\d+) (\d+) (-?\d+) (\d+) (\d+)\s*$/.exec(line.trim());
  if (!m) return undefined;
  return { ret: Number(m[1]), status: Number(m[2]), offset: Number(m[3]), maxerror: Number(m[4]), esterror: Number(m[5]) };
}

/**
 * The kernel's view: synced when a daemon disciplines the clock (STA_UNSYNC clear, not
 * TIME_ERROR); then the source is `ntp` (some NTP daemon set it) and the bound is
 * `maxerror`. Unsynced: source `none`, and the bound is still the kernel's `maxerror`
 * (16 s when nothing ever set it) — an honest "could be this far off".
 */
export function statusFromAdjtimex(a: Adjtimex): ClockSyncStatus {
  const synced = (a.status & STA_UNSYNC) === 0 && a.ret !== TIME_ERROR;
  const offsetNs = BigInt(a.status & STA_NANO ? a.offset : a.offset * 1000);
  const boundNs = BigInt(a.maxerror) * 1000n;
  if (synced) return { source: 'ntp', synced: true, offsetNs, errorBoundNs: boundNs, detail: `adjtimex: kernel clock disciplined (maxerror ${a.maxerror}µs, esterror ${a.esterror}µs)` };
  return { source: 'none', synced: false, offsetNs: 0n, errorBoundNs: boundNs, detail: `adjtimex: kernel clock unsynchronised (STA_UNSYNC; maxerror ${a.maxerror}µs)` };
}
