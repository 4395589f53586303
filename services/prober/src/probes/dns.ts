/**
 * DNS probe (blackbox `prober: dns`): the target is the DNS server (`host[:port]`,
 * port 53 by default); one query for `query_name` over UDP or TCP (optionally DNS over
 * TLS), with our own wire codec (dns-wire.ts).
 *
 * Phases (blackbox probe_dns_duration_seconds names), contiguous on the monotonic clock:
 *   resolve  → server address known (0 for an IP literal)
 *   connect  → TCP (and TLS) connected; 0 for UDP
 *   request  → query sent and the reply with our id received
 */
import { createSocket, Socket as UdpSocket } from 'node:dgram';
import { randomInt } from 'node:crypto';
import { isIP, Socket } from 'node:net';
import { addIssue, bool, Infer, list, obj, optional, str } from '@probemesh/common';
import { goRegExp, goRegExpSchema } from './go-regexp';
import { DNS_CLASSES, DNS_RCODES, DNS_TYPES, DnsMessage, DnsRecord, decodeMessage, encodeQuery, rcodeName } from './dns-wire';
import { dialTcp } from './dial';
import { FailureCode, FailureCodes, failureCodeOf } from './failure';
import { phasesFromMarks } from './phases';
import { StreamReader } from './stream-reader';
import { ipProtocolFallback, parseHostPort, preferredIpProtocol, resolveAddress, ResolveAllFn, systemResolveAll, addressGauges } from './target-addr';
import { handshake } from './tls-client';
import { prepareTls, tlsConfigSchema } from './tls-info';
import { GaugeValue, Probe, ProbeContext, ProbeOutcome, ProbeTarget } from './types';

/**
 * blackbox 0.23 `validate_*_rrs` (prober/dns.go validRRs), each rule as blackbox applies
 * it to the records' text (miekg/dns String()): see {@link checkRecords}.
 */
const rrValidation = (section: string) =>
  obj({
    fail_if_matches_regexp: list(goRegExpSchema(), { default: [], doc: `Fail if any ${section} record matches any of these. @default []` }),
    fail_if_all_match_regexp: list(goRegExpSchema(), { default: [], doc: `Fail unless every ${section} record matches every one of these (blackbox 0.23 behaviour, despite the name; no record passes). @default []` }),
    fail_if_not_matches_regexp: list(goRegExpSchema(), { default: [], doc: `Fail if any ${section} record does not match one of these, or there is no ${section} record. @default []` }),
    fail_if_none_matches_regexp: list(goRegExpSchema(), { default: [], doc: `Fail if no ${section} record matches any of these (also when there is none). @default []` }),
  });

/** Options of a `dns` probe module (blackbox `dns:` block). */
export const dnsProbeSchema = obj({
  query_name: str({ nonEmpty: true, doc: 'Name to query (required).' }),
  query_type: str({ oneOf: Object.keys(DNS_TYPES).filter((t) => t !== 'OPT'), default: 'ANY', doc: 'Record type. @default "ANY"' }),
  query_class: str({ oneOf: Object.keys(DNS_CLASSES), default: 'IN', doc: 'Query class. @default "IN"' }),
  recursion_desired: bool({ default: true, doc: 'Set the RD flag. @default true' }),
  valid_rcodes: list(str({ oneOf: Object.keys(DNS_RCODES) }), { default: ['NOERROR'], doc: 'Response codes that count as success. @default ["NOERROR"]' }),
  transport_protocol: str({ oneOf: ['udp', 'tcp'], default: 'udp', doc: 'Transport. @default "udp"' }),
  dns_over_tls: bool({ default: false, doc: 'DNS over TLS (needs transport_protocol tcp). @default false' }),
  tls_config: tlsConfigSchema,
  preferred_ip_protocol: preferredIpProtocol(),
  ip_protocol_fallback: ipProtocolFallback(),
  source_ip_address: optional(str({ nonEmpty: true, doc: 'Local address to send from.' })),
  validate_answer_rrs: rrValidation('answer'),
  validate_authority_rrs: rrValidation('authority'),
  validate_additional_rrs: rrValidation('additional'),
}, {
  check(v, path, ctx) {
    if (v.dns_over_tls && v.transport_protocol !== 'tcp') addIssue(ctx, path ? `${path}.dns_over_tls` : 'dns_over_tls', 'dns_over_tls needs transport_protocol: tcp');
  },
});

/** Parsed options of a `dns` probe module. */
export type DnsProbeOptions = Infer<typeof dnsProbeSchema>;

/** Phase names of the dns probe, in order. */
export const DNS_PHASES = ['resolve', 'connect', 'request'] as const;

type RrValidation = Infer<ReturnType<typeof rrValidation>>;
interface CompiledValidation {
  matches: RegExp[];
  allMatch: RegExp[];
  notMatches: RegExp[];
  noneMatches: RegExp[];
}
const compile = (v: RrValidation): CompiledValidation => ({
  matches: v.fail_if_matches_regexp.map((r) => goRegExp(r)),
  allMatch: v.fail_if_all_match_regexp.map((r) => goRegExp(r)),
  notMatches: v.fail_if_not_matches_regexp.map((r) => goRegExp(r)),
  noneMatches: v.fail_if_none_matches_regexp.map((r) => goRegExp(r)),
});

/**
 * blackbox 0.23 `validRRs`: the first violated rule as a message, or undefined.
 * - no record: fails with fail_if_not_matches_regexp or fail_if_none_matches_regexp set;
 * - then per record, in order: fail if it matches any fail_if_matches_regexp, or fails to
 *   match any fail_if_not_matches_regexp;
 * - at the end: fail if some record missed some fail_if_all_match_regexp (blackbox fails
 *   when NOT all match, whatever the name says), or no record matched any
 *   fail_if_none_matches_regexp.
 */
export function checkRecords(rrs: readonly DnsRecord[], v: CompiledValidation, section: string): string | undefined {
  const texts = rrs.map((r) => r.text ?? '');
  if (texts.length === 0 && v.notMatches.length > 0) return `fail_if_not_matches_regexp set but no ${section} record returned`;
  if (texts.length === 0 && v.noneMatches.length > 0) return `fail_if_none_matches_regexp set but no ${section} record returned`;
  let notAll: { text: string; re: RegExp } | undefined;
  let anyMatch = false;
  for (const t of texts) {
    for (const re of v.matches) if (re.test(t)) return `${section} record ${JSON.stringify(t)} matches fail_if_matches_regexp ${re.source}`;
    if (!notAll) for (const re of v.allMatch) if (!re.test(t)) notAll = { text: t, re };
    for (const re of v.notMatches) if (!re.test(t)) return `${section} record ${JSON.stringify(t)} does not match fail_if_not_matches_regexp ${re.source}`;
    if (!anyMatch) anyMatch = v.noneMatches.some((re) => re.test(t));
  }
  if (notAll) return `not every ${section} record matches fail_if_all_match_regexp: ${JSON.stringify(notAll.text)} does not match ${notAll.re.source}`;
  if (v.noneMatches.length > 0 && !anyMatch) return `no ${section} record matches fail_if_none_matches_regexp ${v.noneMatches.map((r) => r.source).join(', ')}`;
  return undefined;
}

/** Creates a dns probe; `deps.resolveAll` replaces the system resolver (for server names). */
export function dnsProbe(options: DnsProbeOptions, deps: { resolveAll?: ResolveAllFn } = {}): Probe {
  const prepared = {
    resolveAll: deps.resolveAll ?? systemResolveAll,
    tls: options.dns_over_tls ? prepareTls(options.tls_config) : undefined,
    validRcodes: new Set(options.valid_rcodes.map((r) => DNS_RCODES[r]!)),
    sections: [compile(options.validate_answer_rrs), compile(options.validate_authority_rrs), compile(options.validate_additional_rrs)] as const,
  };
  return { kind: 'dns', run: (target, signal, ctx) => runDns(options, prepared, target, signal, ctx) };
}

type Prepared = { resolveAll: ResolveAllFn; tls: ReturnType<typeof prepareTls> | undefined; validRcodes: Set<number>; sections: readonly [CompiledValidation, CompiledValidation, CompiledValidation] };

async function runDns(opts: DnsProbeOptions, prep: Prepared, target: ProbeTarget, signal: AbortSignal, ctx: ProbeContext): Promise<ProbeOutcome> {
  const clock = ctx.clock;
  const t0 = clock.monoNs();
  const marks: (bigint | undefined)[] = [undefined, undefined, undefined];
  const gauges: GaugeValue[] = [];
  let succeeded = 0;
  // Like blackbox: the record counts are answered on every probe, 0 without a reply.
  let counts: readonly [number, number, number] = [0, 0, 0];
  const outcome = (code: FailureCode | '', message: string): ProbeOutcome => {
    const end = marks[2] ?? clock.monoNs();
    const phases = phasesFromMarks(DNS_PHASES, t0, marks, end);
    gauges.push(
      { name: 'probe_dns_query_succeeded', value: succeeded },
      { name: 'probe_dns_answer_rrs', value: counts[0] },
      { name: 'probe_dns_authority_rrs', value: counts[1] },
      { name: 'probe_dns_additional_rrs', value: counts[2] },
    );
    return { success: code === '', failureCode: code, failureMessage: message, phases, httpStatusCode: 0, httpVersion: 0, gauges };
  };

  const hp = parseHostPort(target.url, 53);
  if (!hp) return outcome(FailureCodes.INVALID_TARGET, `invalid DNS server ${JSON.stringify(target.url)} (want host[:port])`);
  const addr = await resolveAddress(hp.host, opts.preferred_ip_protocol, opts.ip_protocol_fallback, prep.resolveAll, signal);
  if (!addr.ok) return outcome(addr.code, addr.message);
  gauges.push(...addressGauges(addr));
  marks[0] = isIP(hp.host) ? t0 : clock.monoNs();
  gauges.push({ name: 'probe_dns_lookup_time_seconds', value: Number(marks[0] - t0) / 1e9 });

  const id = randomInt(0, 0x10000);
  const query = encodeQuery(id, opts.query_name, DNS_TYPES[opts.query_type]!, DNS_CLASSES[opts.query_class]!, opts.recursion_desired);
  const server = `${addr.address}:${hp.port}`;
  let reply: DnsMessage | { code: FailureCode; message: string };
  if (opts.transport_protocol === 'udp') {
    marks[1] = marks[0];
    reply = await exchangeUdp(query, id, addr.address, addr.family, hp.port, opts.source_ip_address, signal);
  } else {
    const dialed = await dialTcp({ address: addr.address, family: addr.family, port: hp.port, sourceIp: opts.source_ip_address }, signal);
    if (!dialed.ok) return outcome(dialed.code, dialed.message);
    let sock: Socket = dialed.socket;
    try {
      if (prep.tls) {
        const hs = await handshake(sock, hp.host, prep.tls, signal);
        gauges.push(...hs.gauges);
        if (!hs.ok) return outcome(hs.code === 'timeout' ? FailureCodes.DNS_TIMEOUT : hs.code, hs.message);
        sock = hs.socket;
      }
      marks[1] = clock.monoNs();
      reply = await exchangeTcp(sock, query, id, signal);
    } finally {
      sock.destroy();
    }
  }
  if ('code' in reply) return outcome(reply.code, `${server}: ${reply.message}`);
  marks[2] = clock.monoNs();
  succeeded = 1;
  counts = [reply.answers.length, reply.authority.length, reply.additional.length];
  // blackbox: for an SOA query, the serial of the (last) SOA answer; 0 when none (NXDOMAIN, …).
  if (opts.query_type === 'SOA') {
    const soa = reply.answers.filter((r) => r.type === DNS_TYPES.SOA).pop();
    gauges.push({ name: 'probe_dns_serial', value: Number(soa?.text?.split('\t')[4]?.split(' ')[2] ?? 0) || 0 });
  }

  if (!prep.validRcodes.has(reply.rcode)) {
    const code = reply.rcode === DNS_RCODES.NXDOMAIN ? FailureCodes.DNS_NXDOMAIN : FailureCodes.DNS_RCODE;
    return outcome(code, `${server} answered ${rcodeName(reply.rcode)} for ${opts.query_name} ${opts.query_type} (valid: ${opts.valid_rcodes.join(', ')})`);
  }
  const names = ['answer', 'authority', 'additional'] as const;
  const sections = [reply.answers, reply.authority, reply.additional] as const;
  for (let i = 0; i < 3; i++) {
    const bad = checkRecords(sections[i]!, prep.sections[i]!, names[i]!);
    if (bad) return outcome(FailureCodes.DNS_ANSWER_REGEX, bad);
  }
  return outcome('', '');
}

type Exchange = DnsMessage | { code: FailureCode; message: string };
const timedOut = (): Exchange => ({ code: FailureCodes.DNS_TIMEOUT, message: 'no reply before the timeout' });

function exchangeUdp(query: Buffer, id: number, address: string, family: 4 | 6, port: number, sourceIp: string | undefined, signal: AbortSignal): Promise<Exchange> {
  return new Promise<Exchange>((resolve) => {
    const sock: UdpSocket = createSocket(family === 6 ? 'udp6' : 'udp4');
    const done = (r: Exchange): void => {
      signal.removeEventListener('abort', onAbort);
      sock.removeAllListeners('message');
      sock.on('error', () => undefined);
      sock.close();
      resolve(r);
    };
    const onAbort = (): void => done(timedOut());
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    sock.on('error', (err) => done({ code: (err as NodeJS.ErrnoException).code === 'ECONNREFUSED' ? FailureCodes.CONNECT_REFUSED : failureCodeOf(err) === FailureCodes.ERROR ? FailureCodes.DNS_ERROR : failureCodeOf(err), message: err.message }));
    sock.on('message', (buf) => {
      let m: DnsMessage;
      try {
        m = decodeMessage(buf);
      } catch (err) {
        return done({ code: FailureCodes.DNS_ERROR, message: `malformed reply: ${(err as Error).message}` });
      }
      if (m.id === id && m.response) done(m); // a stray/late datagram is ignored
    });
    // A connected UDP socket gets ICMP port-unreachable back as ECONNREFUSED.
    sock.bind({ address: sourceIp, port: 0 }, () => sock.connect(port, address, () => sock.send(query)));
  });
}

async function exchangeTcp(sock: Socket, query: Buffer, id: number, signal: AbortSignal): Promise<Exchange> {
  const reader = new StreamReader(sock);
  const onAbort = (): void => reader.fail(Object.assign(new Error('timeout'), { code: 'PM_ABORT' }));
  if (signal.aborted) return timedOut();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const len = Buffer.alloc(2);
    len.writeUInt16BE(query.length);
    sock.write(Buffer.concat([len, query]));
    const head = await reader.exact(2);
    const body = head && (await reader.exact(head.readUInt16BE(0)));
    if (!body) return { code: FailureCodes.DNS_ERROR, message: 'connection closed before a complete reply' };
    const m = decodeMessage(body);
    if (m.id !== id) return { code: FailureCodes.DNS_ERROR, message: `reply id ${m.id} does not match query id ${id}` };
    return m;
  } catch (err) {
    if ((err as { code?: string }).code === 'PM_ABORT') return timedOut();
    const code = failureCodeOf(err);
    return { code: code === FailureCodes.ERROR ? FailureCodes.DNS_ERROR : code, message: (err as Error).message };
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
