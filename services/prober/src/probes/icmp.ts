/**
 * ICMP probe (blackbox `prober: icmp`): `packets` echo requests `interval` apart through
 * a batched fping (fping.ts explains why fping and why batches). Success = at least one
 * reply. Reports loss ratio and RTT min/avg/max/stddev (jitter) — blackbox sends one
 * packet and has neither.
 *
 * Phases, contiguous on the monotonic clock: resolve → address known (0 for an IP
 * literal); setup → our fping run started (batch window + spawn); exchange → all
 * replies in or timed out. The blackbox gauge probe_icmp_duration_seconds{phase} is
 * reported as blackbox means it: resolve, setup, and rtt = the average echo RTT.
 * probe_icmp_reply_hop_limit is not reported: fping 5.1 (Debian 12) does not print the
 * reply TTL.
 */
import { isIP } from 'node:net';
import { bool, duration, Infer, num, obj, optional, str } from '@probemesh/common';
import { FailureCode, FailureCodes } from './failure';
import { FpingCommand, FpingHostResult, FpingPool } from './fping';
import { phasesFromMarks } from './phases';
import { ipProtocolFallback, preferredIpProtocol, resolveAddress, ResolveAllFn, systemResolveAll, addressGauges } from './target-addr';
import { GaugeValue, Probe, ProbeContext, ProbeOutcome, ProbeTarget } from './types';

/** Options of an `icmp` probe module (blackbox `icmp:` block + `packets`, `interval`). */
export const icmpProbeSchema = obj({
  preferred_ip_protocol: preferredIpProtocol(),
  ip_protocol_fallback: ipProtocolFallback(),
  source_ip_address: optional(str({ nonEmpty: true, doc: 'Source address of the echo requests (fping -S).' })),
  payload_size: optional(num({ int: true, min: 0, max: 65507, doc: 'ICMP payload bytes (fping -b). @default 56 (fping)' })),
  dont_fragment: bool({ default: false, doc: 'Set the DF bit (IPv4; with payload_size 1472 the classic 1500-byte path-MTU check). @default false' }),
  ttl: optional(num({ int: true, min: 1, max: 255, doc: 'IP TTL / hop limit of the requests (fping -H).' })),
  packets: num({ int: true, min: 1, max: 100, default: 3, doc: 'Echo requests per probe (probemesh; blackbox sends 1): loss ratio and jitter need several. @default 3' }),
  interval: duration({ default: '100ms', minMs: 10, doc: 'Time between the requests of one probe (probemesh). @default "100ms"' }),
});

/** Parsed options of an `icmp` probe module. */
export type IcmpProbeOptions = Infer<typeof icmpProbeSchema>;

/** Phase names of the icmp probe, in order. */
export const ICMP_PHASES = ['resolve', 'setup', 'exchange'] as const;

/** Dependencies of the icmp probe. */
export interface IcmpDeps {
  resolveAll?: ResolveAllFn;
  /** A shared pool (default: one per module). */
  pool?: FpingPool;
  /** The fping command for a new pool (tests: `nsenter --net=... fping`). */
  fping?: FpingCommand;
}

/** Creates an icmp probe. */
export function icmpProbe(options: IcmpProbeOptions, deps: IcmpDeps = {}): Probe {
  const pool = deps.pool ?? new FpingPool(deps.fping);
  const resolveAll = deps.resolveAll ?? systemResolveAll;
  return { kind: 'icmp', run: (target, signal, ctx) => runIcmp(options, pool, resolveAll, target, signal, ctx) };
}

/** The RTT statistics (seconds) of the replies; undefined without replies. */
export function rttStats(rttsMs: readonly (number | null)[]): { min: number; avg: number; max: number; stddev: number } | undefined {
  const got = rttsMs.filter((x): x is number => x !== null).map((ms) => ms / 1000);
  if (got.length === 0) return undefined;
  const avg = got.reduce((a, b) => a + b, 0) / got.length;
  const variance = got.reduce((a, b) => a + (b - avg) ** 2, 0) / got.length;
  return { min: Math.min(...got), avg, max: Math.max(...got), stddev: Math.sqrt(variance) };
}

function lossFailure(r: FpingHostResult, opts: IcmpProbeOptions, address: string): { code: FailureCode; message: string } {
  const errs = r.icmpErrors;
  const seen = errs.length > 0 ? ` (${[...new Set(errs)].join('; ')})` : '';
  if (errs.some((e) => /Fragmentation Needed|Packet Too Big/i.test(e))) return { code: FailureCodes.ICMP_FRAG_NEEDED, message: `path MTU below the ${opts.payload_size ?? 56}-byte payload with DF set: ${address}${seen}` };
  if (errs.some((e) => /Time Exceeded/i.test(e))) return { code: FailureCodes.ICMP_TTL_EXCEEDED, message: `TTL ${opts.ttl ?? ''} exceeded on the way to ${address}${seen}` };
  if (errs.some((e) => /Unreachable|Prohibited/i.test(e))) return { code: FailureCodes.ICMP_UNREACHABLE, message: `${address} unreachable${seen}` };
  // A DF packet larger than the local interface MTU is refused by our own kernel
  // (EMSGSIZE) and fping prints nothing: say so rather than only "timeout".
  const hint = opts.dont_fragment && opts.payload_size !== undefined ? ` (with dont_fragment, a ${opts.payload_size}-byte payload larger than the local interface MTU is never sent)` : '';
  return { code: FailureCodes.ICMP_TIMEOUT, message: `no echo reply from ${address} to ${r.rttsMs.length || opts.packets} request(s)${hint}` };
}

async function runIcmp(opts: IcmpProbeOptions, pool: FpingPool, resolveAll: ResolveAllFn, target: ProbeTarget, signal: AbortSignal, ctx: ProbeContext): Promise<ProbeOutcome> {
  const clock = ctx.clock;
  const t0 = clock.monoNs();
  const marks: (bigint | undefined)[] = [undefined, undefined, undefined];
  const gauges: GaugeValue[] = [];
  const outcome = (code: FailureCode | '', message: string): ProbeOutcome => ({
    success: code === '',
    failureCode: code,
    failureMessage: message,
    phases: phasesFromMarks(ICMP_PHASES, t0, marks, marks[2] ?? clock.monoNs()),
    httpStatusCode: 0,
    httpVersion: 0,
    gauges,
  });

  const host = target.url.trim().replace(/^\[(.*)\]$/, '$1');
  if (isIP(host) === 0 && !/^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_.])?$/.test(host)) {
    return outcome(FailureCodes.INVALID_TARGET, `invalid ICMP target ${JSON.stringify(target.url)} (want a host name or IP address)`);
  }
  const hp = { host };
  const addr = await resolveAddress(hp.host, opts.preferred_ip_protocol, opts.ip_protocol_fallback, resolveAll, signal);
  if (!addr.ok) return outcome(addr.code, addr.message);
  gauges.push(...addressGauges(addr));
  marks[0] = isIP(hp.host) ? t0 : clock.monoNs();
  const resolveS = Number(marks[0] - t0) / 1e9;
  gauges.push({ name: 'probe_dns_lookup_time_seconds', value: resolveS });

  // Fit the whole run into the probe timeout: the last request leaves at
  // (packets-1)*interval, then gets the rest minus a margin for process start/exit.
  const sendSpanMs = (opts.packets - 1) * opts.interval;
  const replyTimeoutMs = Math.min(10_000, Math.floor(target.timeoutMs - sendSpanMs - 50));
  if (replyTimeoutMs < 10) return outcome(FailureCodes.INVALID_TARGET, `timeout ${target.timeoutMs}ms is too short for ${opts.packets} packets ${opts.interval}ms apart`);
  if (signal.aborted) return outcome(FailureCodes.TIMEOUT, 'timeout before the ICMP run started');

  const result = await new Promise<FpingHostResult | undefined>((resolve) => {
    const onAbort = (): void => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    pool
      .ping(addr.address, {
        family: addr.family,
        count: opts.packets,
        periodMs: opts.interval,
        timeoutMs: replyTimeoutMs,
        payloadSize: opts.payload_size,
        dontFragment: opts.dont_fragment && addr.family === 4,
        ttl: opts.ttl,
        sourceIp: opts.source_ip_address,
      }, () => (marks[1] ??= clock.monoNs()))
      .then((r) => {
        signal.removeEventListener('abort', onAbort);
        resolve(r);
      });
  });
  if (!result) return outcome(FailureCodes.TIMEOUT, `timeout after ${target.timeoutMs}ms waiting for fping`);
  marks[2] = clock.monoNs();
  if (result.error) return outcome(FailureCodes.ERROR, result.error);

  const sent = result.rttsMs.length;
  const stats = rttStats(result.rttsMs);
  const received = result.rttsMs.filter((x) => x !== null).length;
  if (sent > 0) gauges.push({ name: 'probemesh_icmp_packet_loss_ratio', value: (sent - received) / sent });
  const setupS = Number((marks[1] ?? marks[0]) - marks[0]) / 1e9;
  gauges.push({ name: 'probe_icmp_duration_seconds', value: resolveS, labels: { phase: 'resolve' } }, { name: 'probe_icmp_duration_seconds', value: setupS, labels: { phase: 'setup' } });
  if (stats) {
    gauges.push({ name: 'probe_icmp_duration_seconds', value: stats.avg, labels: { phase: 'rtt' } });
    for (const stat of ['min', 'avg', 'max', 'stddev'] as const) gauges.push({ name: 'probemesh_icmp_rtt_seconds', value: stats[stat], labels: { stat } });
    return outcome('', '');
  }
  if (sent === 0) return outcome(FailureCodes.ERROR, `fping reported nothing for ${addr.address}`);
  const f = lossFailure(result, opts, addr.address);
  return outcome(f.code, f.message);
}
