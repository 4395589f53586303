/**
 * TCP probe (blackbox `prober: tcp`): connect to `host:port`, optionally TLS from the
 * first byte, then the `query_response` dialogue with blackbox semantics: `expect` is a
 * regexp tried on each received line until one matches (its captures feed `${1}` /
 * `${name}` in the same step's `send` and `labels`), `send` is written with a `\n`
 * appended, `starttls` upgrades the connection to TLS after the step's send.
 * `expect_bytes` (exact bytes next in the stream) and `labels` (exported as
 * `probe_expect_info{<name>="<value>"} 1`) are from later blackbox versions (0.25/0.26);
 * a 0.23 blackbox.yml never has them.
 *
 * Phases, contiguous on the monotonic clock:
 *   resolve → address known (0 for an IP literal); connect → TCP connected;
 *   tls → handshake done (0 without `tls: true`); processing → query_response done.
 */
import { isIP, Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { bool, Infer, list, obj, optional, str } from '@probemesh/common';
import { dialTcp } from './dial';
import { goRegExp, goRegExpSchema } from './go-regexp';
import { FailureCode, FailureCodes, failureCodeOf } from './failure';
import { phasesFromMarks } from './phases';
import { StreamReader } from './stream-reader';
import { ipProtocolFallback, parseHostPort, preferredIpProtocol, resolveAddress, ResolveAllFn, systemResolveAll, addressGauges } from './target-addr';
import { handshake } from './tls-client';
import { prepareTls, PreparedTls, tlsConfigSchema } from './tls-info';
import { GaugeValue, Probe, ProbeContext, ProbeOutcome, ProbeTarget } from './types';

const queryResponseSchema = obj({
  expect: optional(goRegExpSchema('Regexp a received line must match (lines are read until one does); captures usable as ${1} in send and labels.')),
  expect_bytes: optional(str({ nonEmpty: true, doc: 'Exact bytes that must come next in the stream (blackbox >= 0.25).' })),
  send: optional(str({ doc: 'Line to send ("\\n" appended); may use ${1}/${name} captures of this step\'s expect.' })),
  starttls: bool({ default: false, doc: 'Upgrade the connection to TLS after this step. @default false' }),
  labels: list(obj({ name: str({ pattern: /^[a-zA-Z_][a-zA-Z0-9_]*$/ }), value: str() }), { default: [], doc: 'Labels of probe_expect_info, values may use captures (blackbox >= 0.26). @default []' }),
});

/** Options of a `tcp` probe module (blackbox `tcp:` block). */
export const tcpProbeSchema = obj({
  preferred_ip_protocol: preferredIpProtocol(),
  ip_protocol_fallback: ipProtocolFallback(),
  source_ip_address: optional(str({ nonEmpty: true, doc: 'Local address to connect from.' })),
  query_response: list(queryResponseSchema, { default: [], doc: 'The dialogue after connecting. @default []' }),
  tls: bool({ default: false, doc: 'TLS from the first byte. @default false' }),
  tls_config: tlsConfigSchema,
});

/** Parsed options of a `tcp` probe module. */
export type TcpProbeOptions = Infer<typeof tcpProbeSchema>;

/** Phase names of the tcp probe, in order. */
export const TCP_PHASES = ['resolve', 'connect', 'tls', 'processing'] as const;

/** Go `Regexp.Expand`: `$1`, `${1}`, `$name`, `${name}`, `$$`; unknown groups expand to ''. */
export function expandTemplate(template: string, m: RegExpExecArray): string {
  return template.replace(/\$(?:\$|\{(\w+)\}|(\w+))/g, (all, braced?: string, bare?: string) => {
    if (all === '$$') return '$';
    const name = braced ?? bare ?? '';
    const v = /^\d+$/.test(name) ? m[Number(name)] : m.groups?.[name];
    return v ?? '';
  });
}

interface Step {
  expect?: RegExp;
  expectBytes?: Buffer;
  send?: string;
  starttls: boolean;
  labels: readonly { name: string; value: string }[];
}

/** Creates a tcp probe. */
export function tcpProbe(options: TcpProbeOptions, deps: { resolveAll?: ResolveAllFn } = {}): Probe {
  const needsTls = options.tls || options.query_response.some((q) => q.starttls);
  const prep = {
    resolveAll: deps.resolveAll ?? systemResolveAll,
    tls: needsTls ? prepareTls(options.tls_config) : undefined,
    steps: options.query_response.map((q): Step => ({
      expect: q.expect !== undefined ? goRegExp(q.expect) : undefined,
      expectBytes: q.expect_bytes !== undefined ? Buffer.from(q.expect_bytes, 'utf8') : undefined,
      send: q.send,
      starttls: q.starttls,
      labels: q.labels,
    })),
  };
  return { kind: 'tcp', run: (target, signal, ctx) => runTcp(options, prep, target, signal, ctx) };
}

interface Prepared {
  resolveAll: ResolveAllFn;
  tls: PreparedTls | undefined;
  steps: Step[];
}

class Failed {
  constructor(readonly code: FailureCode, readonly message: string) {}
}

async function runTcp(opts: TcpProbeOptions, prep: Prepared, target: ProbeTarget, signal: AbortSignal, ctx: ProbeContext): Promise<ProbeOutcome> {
  const clock = ctx.clock;
  const t0 = clock.monoNs();
  const marks: (bigint | undefined)[] = [undefined, undefined, undefined, undefined];
  const gauges: GaugeValue[] = [];
  const outcome = (code: FailureCode | '', message: string): ProbeOutcome => ({
    success: code === '',
    failureCode: code,
    failureMessage: message,
    phases: phasesFromMarks(TCP_PHASES, t0, marks, marks[3] ?? clock.monoNs()),
    httpStatusCode: 0,
    httpVersion: 0,
    // blackbox registers probe_failed_due_to_regex on every tcp probe (0 unless an expect failed).
    gauges: gauges.some((g) => g.name === 'probe_failed_due_to_regex') ? gauges : [...gauges, { name: 'probe_failed_due_to_regex', value: 0 }],
  });

  const hp = parseHostPort(target.url);
  if (!hp) return outcome(FailureCodes.INVALID_TARGET, `invalid TCP target ${JSON.stringify(target.url)} (want host:port)`);
  const addr = await resolveAddress(hp.host, opts.preferred_ip_protocol, opts.ip_protocol_fallback, prep.resolveAll, signal);
  if (!addr.ok) return outcome(addr.code, addr.message);
  gauges.push(...addressGauges(addr));
  marks[0] = isIP(hp.host) ? t0 : clock.monoNs();
  gauges.push({ name: 'probe_dns_lookup_time_seconds', value: Number(marks[0] - t0) / 1e9 });

  const dialed = await dialTcp({ address: addr.address, family: addr.family, port: hp.port, sourceIp: opts.source_ip_address }, signal);
  if (!dialed.ok) return outcome(dialed.code, dialed.message);
  marks[1] = clock.monoNs();
  let sock: Socket = dialed.socket;
  try {
    if (opts.tls && prep.tls) {
      const hs = await handshake(sock, hp.host, prep.tls, signal);
      gauges.push(...hs.gauges);
      if (!hs.ok) return outcome(hs.code === 'timeout' ? FailureCodes.TIMEOUT : hs.code, hs.message);
      sock = hs.socket;
    }
    marks[2] = opts.tls ? clock.monoNs() : marks[1];
    const r = await dialogue(sock, hp.host, prep, gauges, signal, (s) => (sock = s));
    if (r instanceof Failed) return outcome(r.code, r.message);
    marks[3] = clock.monoNs();
    return outcome('', '');
  } finally {
    sock.destroy();
    dialed.socket.destroy();
  }
}

async function dialogue(first: Socket, host: string, prep: Prepared, gauges: GaugeValue[], signal: AbortSignal, swap: (s: TLSSocket) => void): Promise<Failed | undefined> {
  if (prep.steps.length === 0) return undefined;
  let sock = first;
  let reader = new StreamReader(sock);
  const abortErr = Object.assign(new Error('timeout'), { code: 'PM_ABORT' });
  const onAbort = (): void => reader.fail(abortErr);
  signal.addEventListener('abort', onAbort, { once: true });
  let regexFailed = 0;
  try {
    for (const [i, step] of prep.steps.entries()) {
      const where = `query_response[${i}]`;
      let send = step.send;
      if (signal.aborted) throw abortErr;
      if (step.expect) {
        let m: RegExpExecArray | null = null;
        let last = '';
        for (let line = await reader.line(); line !== null; line = await reader.line()) {
          last = line;
          if ((m = step.expect.exec(line))) break;
        }
        if (!m) {
          regexFailed = 1;
          return new Failed(FailureCodes.TCP_EXPECT, `${where}: connection closed before a line matched expect /${step.expect.source}/ (last line ${JSON.stringify(last.slice(0, 200))})`);
        }
        if (send !== undefined) send = expandTemplate(send, m);
        if (step.labels.length > 0) {
          const labels = Object.fromEntries(step.labels.map((l) => [l.name, expandTemplate(l.value, m!)]));
          gauges.push({ name: 'probe_expect_info', value: 1, labels });
        }
      }
      if (step.expectBytes) {
        const want = step.expectBytes;
        const got = await reader.exact(want.length);
        if (!got || !got.equals(want)) {
          return new Failed(FailureCodes.TCP_EXPECT, `${where}: expect_bytes ${JSON.stringify(want.toString('latin1'))} not received (got ${JSON.stringify((got ?? Buffer.alloc(0)).toString('latin1').slice(0, 200))})`);
        }
      }
      if (send !== undefined && send !== '') sock.write(`${send}\n`);
      if (step.starttls && prep.tls) {
        const rest = reader.detach();
        const hs = await handshake(sock, host, prep.tls, signal, rest);
        gauges.push(...hs.gauges);
        if (!hs.ok) return new Failed(hs.code === 'timeout' ? FailureCodes.TIMEOUT : FailureCodes.STARTTLS, `${where}: STARTTLS failed (${hs.code}): ${hs.message}`);
        sock = hs.socket;
        swap(hs.socket);
        reader = new StreamReader(sock);
      }
    }
    return undefined;
  } catch (err) {
    if (err === abortErr || signal.aborted) return new Failed(FailureCodes.TIMEOUT, `timeout during query_response (after ${prep.steps.length} step(s) configured)`);
    return new Failed(failureCodeOf(err), `query_response: ${(err as Error).message}`);
  } finally {
    signal.removeEventListener('abort', onAbort);
    gauges.push({ name: 'probe_failed_due_to_regex', value: regexFailed });
  }
}
