/**
 * gRPC probe (blackbox `prober: grpc`): one `grpc.health.v1.Health/Check` unary call for
 * `service` over a fresh connection (like blackbox, so connect and TLS are paid every
 * time), plaintext (h2c, prior knowledge) or TLS (ALPN h2), with optional metadata.
 * Target: `host[:port]` (port 80, or 443 with TLS, when absent, as blackbox), or a URL
 * (`https://` turns TLS on, as in blackbox).
 *
 * Why not grpc-js: it owns its sockets, so the probe could not read the TLS version or
 * the peer certificates (blackbox answers probe_tls_version_info and
 * probe_ssl_last_chain_info on grpc) nor verify the peer itself; and it sets an IP
 * literal as TLS servername (Node warns, DEP0123). The call is small enough to speak on
 * node:http2 (grpc-health.ts) over our own TCP dial and TLS handshake (tls-info.ts: SNI
 * only for names, our own verification, the same TLS gauges as the http and tcp probes).
 *
 * Metrics as blackbox 0.23 answers them (prober/grpc.go): probe_grpc_status_code,
 * probe_grpc_ssl and probe_ssl_earliest_cert_expiry on every probe (0 when unknown), the
 * four probe_grpc_healthcheck_response{serving_status} series once the check was tried
 * (all 0 when it failed), and over TLS probe_tls_version_info and
 * probe_ssl_last_chain_info. Differences on purpose: probe_grpc_ssl is 1 when the call
 * went over a verified TLS connection (blackbox: only when the call returned a health
 * response); the TLS details are kept when the certificate fails verification (issue 3),
 * where blackbox answers probe_ssl_earliest_cert_expiry 0; probe_tls_cipher_info is ours.
 *
 * Phases (blackbox probe_grpc_duration_seconds names): resolve → address known (0 for
 * an IP literal); check → the call (connect + TLS + HTTP/2 + request + reply).
 */
import { isIP, Socket } from 'node:net';
import { bool, Infer, obj, record, str } from '@probemesh/common';
import { dialTcp } from './dial';
import { FailureCode, FailureCodes } from './failure';
import { GrpcStatus, healthCheck, SERVING_STATUSES, STATUS_NAMES } from './grpc-health';
import { phasesFromMarks } from './phases';
import { handshake } from './tls-client';
import { ipProtocolFallback, parseHostPort, preferredIpProtocol, resolveAddress, ResolveAllFn, systemResolveAll, addressGauges } from './target-addr';
import { prepareTls, PreparedTls, tlsConfigSchema, verifyName } from './tls-info';
import { GaugeValue, Probe, ProbeContext, ProbeOutcome, ProbeTarget } from './types';

/** Options of a `grpc` probe module (blackbox `grpc:` block + `metadata`). */
export const grpcProbeSchema = obj({
  service: str({ default: '', doc: 'Service name asked about ("" = the whole server). @default ""' }),
  preferred_ip_protocol: preferredIpProtocol(),
  ip_protocol_fallback: ipProtocolFallback(),
  tls: bool({ default: false, doc: 'Connect with TLS (also implied by an https:// target). @default false' }),
  tls_config: tlsConfigSchema,
  metadata: record(str(), { default: {}, keyPattern: /^[0-9a-z_.-]+$/, doc: 'Request metadata (probemesh extension; keys lower-case). @default {}' }),
});

/** Parsed options of a `grpc` probe module. */
export type GrpcProbeOptions = Infer<typeof grpcProbeSchema>;

/** Phase names of the grpc probe, in order. */
export const GRPC_PHASES = ['resolve', 'check'] as const;

/** Creates a grpc probe. */
export function grpcProbe(options: GrpcProbeOptions, deps: { resolveAll?: ResolveAllFn } = {}): Probe {
  const prep = { resolveAll: deps.resolveAll ?? systemResolveAll, tls: prepareTls(options.tls_config) };
  return { kind: 'grpc', run: (target, signal, ctx) => runGrpc(options, prep, target, signal, ctx) };
}

/** blackbox's grpc gauges come from this set of TLS gauges (no last-chain expiry on grpc). */
const GRPC_TLS_GAUGES = new Set(['probe_tls_version_info', 'probe_tls_cipher_info', 'probe_ssl_earliest_cert_expiry', 'probe_ssl_last_chain_info']);

async function runGrpc(opts: GrpcProbeOptions, prep: { resolveAll: ResolveAllFn; tls: PreparedTls }, target: ProbeTarget, signal: AbortSignal, ctx: ProbeContext): Promise<ProbeOutcome> {
  const clock = ctx.clock;
  const t0 = clock.monoNs();
  const marks: (bigint | undefined)[] = [undefined, undefined];
  const gauges: GaugeValue[] = [];
  // What blackbox answers on every probe, 0 until known.
  let statusCode = 0;
  let ssl = 0;
  let tls: GaugeValue[] = [];
  let checked = false;
  let serving = -1;
  let socketInfo: ProbeOutcome['socketInfo'];
  const outcome = (code: FailureCode | '', message: string): ProbeOutcome => {
    gauges.push({ name: 'probe_grpc_status_code', value: statusCode }, { name: 'probe_grpc_ssl', value: ssl });
    const kept = tls.filter((g) => GRPC_TLS_GAUGES.has(g.name));
    if (!kept.some((g) => g.name === 'probe_ssl_earliest_cert_expiry')) gauges.push({ name: 'probe_ssl_earliest_cert_expiry', value: 0 });
    gauges.push(...kept);
    if (checked) for (const [i, s] of SERVING_STATUSES.entries()) gauges.push({ name: 'probe_grpc_healthcheck_response', value: i === serving ? 1 : 0, labels: { serving_status: s } });
    const phases = phasesFromMarks(GRPC_PHASES, t0, marks, marks[1] ?? clock.monoNs());
    return { success: code === '', failureCode: code, failureMessage: message, phases, httpStatusCode: 0, httpVersion: 0, gauges, socketInfo };
  };

  const useTls = opts.tls || /^https:/i.test(target.url);
  const hp = parseHostPort(target.url, useTls ? 443 : 80);
  if (!hp) return outcome(FailureCodes.INVALID_TARGET, `invalid gRPC target ${JSON.stringify(target.url)} (want host[:port] or a URL)`);
  const addr = await resolveAddress(hp.host, opts.preferred_ip_protocol, opts.ip_protocol_fallback, prep.resolveAll, signal);
  if (!addr.ok) return outcome(addr.code, addr.message);
  gauges.push(...addressGauges(addr));
  marks[0] = isIP(hp.host) ? t0 : clock.monoNs();
  gauges.push({ name: 'probe_dns_lookup_time_seconds', value: Number(marks[0] - t0) / 1e9 });
  checked = true;

  // grpc-go (blackbox) sends the TLS server name (server_name, else the host) as :authority
  // over TLS, host:port in plaintext.
  const bracket = (h: string): string => (h.includes(':') ? `[${h}]` : h);
  const authority = useTls ? bracket(verifyName(prep.tls, hp.host)) : `${bracket(hp.host)}:${hp.port}`;
  const startMonoNs = clock.monoNs();
  let sock: Socket | undefined;
  // A connection that failed below gRPC: UNAVAILABLE, like grpc-go.
  const unavailable = (code: FailureCode, message: string): ProbeOutcome => {
    statusCode = code === FailureCodes.TIMEOUT || code === FailureCodes.CONNECT_TIMEOUT ? GrpcStatus.DEADLINE_EXCEEDED : GrpcStatus.UNAVAILABLE;
    if (!signal.aborted) marks[1] = clock.monoNs();
    return outcome(code, `Health/Check ${STATUS_NAMES[statusCode]}: ${message}`);
  };
  const call = async (): Promise<ProbeOutcome> => {
    const dialed = await dialTcp({ address: addr.address, family: addr.family, port: hp.port }, signal);
    if (!dialed.ok) return unavailable(dialed.code, dialed.message);
    sock = dialed.socket;
    socketInfo = { localPort: sock.localPort, remoteAddress: addr.address, remotePort: hp.port, startMonoNs, endMonoNs: startMonoNs };
    if (useTls) {
      // ALPN h2 (gRPC needs it); a server without ALPN gets HTTP/2 all the same (as grpc-go did in blackbox 0.23).
      const hs = await handshake(sock, hp.host, prep.tls, signal, undefined, ['h2']);
      tls = hs.gauges;
      if (!hs.ok) return unavailable(hs.code, hs.message);
      ssl = 1;
      sock = hs.socket;
    }
    const r = await healthCheck(sock, useTls ? 'https' : 'http', authority, opts.service, opts.metadata, target.timeoutMs, signal);
    if (r.kind === 'transport') return unavailable(r.failure, r.message);
    marks[1] = clock.monoNs();
    statusCode = r.code;
    if (r.code === GrpcStatus.NOT_FOUND) return outcome(FailureCodes.GRPC_UNKNOWN_SERVICE, `health service does not know ${JSON.stringify(opts.service)}: NOT_FOUND: ${r.message}`);
    if (r.code !== GrpcStatus.OK) return outcome(FailureCodes.GRPC_ERROR, `Health/Check failed: ${STATUS_NAMES[r.code] ?? r.code}: ${r.message}`);
    serving = r.serving ?? 0;
    if (serving !== 1) return outcome(FailureCodes.GRPC_NOT_SERVING, `service ${JSON.stringify(opts.service)} is ${SERVING_STATUSES[serving] ?? `status ${serving}`}`);
    return outcome('', '');
  };
  const o = await call();
  (sock as Socket | undefined)?.destroy();
  // After destroy(): the kernel saw the connection inside [startMonoNs, endMonoNs] (eBPF join).
  return socketInfo ? { ...o, socketInfo: { ...socketInfo, endMonoNs: clock.monoNs() } } : o;
}
