/**
 * gRPC probe (blackbox `prober: grpc`): one `grpc.health.v1.Health/Check` call for
 * `service` over a fresh channel (like blackbox, so connect and TLS are paid every
 * time), plaintext or TLS, with optional metadata. Target: `host:port`, or a URL
 * (`https://` turns TLS on, as in blackbox).
 *
 * Phases (blackbox probe_grpc_duration_seconds names): resolve → address known (0 for
 * an IP literal); check → the call (connect + TLS + HTTP/2 + request + reply; grpc-js
 * does not expose the sub-steps).
 */
import { isIP } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { bool, Infer, obj, record, str } from '@probemesh/common';
import { FailureCode, FailureCodes } from './failure';
import { decodeHealthResponse, encodeHealthRequest, HEALTH_CHECK_PATH, SERVING_STATUSES } from './grpc-health';
import { phasesFromMarks } from './phases';
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

function credentials(tls: PreparedTls): grpc.ChannelCredentials {
  const o = tls.options;
  const buf = (v: unknown): Buffer | null => (Buffer.isBuffer(v) ? v : null);
  return grpc.credentials.createSsl(buf(o.ca), buf(o.key), buf(o.cert), { rejectUnauthorized: !tls.config.insecure_skip_verify });
}

/** Maps a failed call to a failure code: grpc-js puts the socket/TLS error in `details`. */
function callFailure(err: grpc.ServiceError): FailureCode {
  if (err.code === grpc.status.NOT_FOUND) return FailureCodes.GRPC_UNKNOWN_SERVICE;
  if (err.code === grpc.status.DEADLINE_EXCEEDED || err.code === grpc.status.CANCELLED) return FailureCodes.TIMEOUT;
  const d = err.details ?? '';
  if (err.code === grpc.status.UNAVAILABLE) {
    if (/ECONNREFUSED/.test(d)) return FailureCodes.CONNECT_REFUSED;
    if (/ECONNRESET|socket hang up|closed/i.test(d)) return FailureCodes.RESET;
    if (/self[- ]signed|unable to verify|unable to get (local )?issuer/i.test(d)) return FailureCodes.TLS_UNTRUSTED;
    if (/certificate has expired|not yet valid/i.test(d)) return FailureCodes.TLS_CERT_EXPIRED;
    if (/Hostname\/IP does not match|altnames/i.test(d)) return FailureCodes.TLS_CERT_HOSTNAME;
    if (/SSL|TLS|handshake|wrong version/i.test(d)) return FailureCodes.TLS_HANDSHAKE;
  }
  return FailureCodes.GRPC_ERROR;
}

async function runGrpc(opts: GrpcProbeOptions, prep: { resolveAll: ResolveAllFn; tls: PreparedTls }, target: ProbeTarget, signal: AbortSignal, ctx: ProbeContext): Promise<ProbeOutcome> {
  const clock = ctx.clock;
  const t0 = clock.monoNs();
  const marks: (bigint | undefined)[] = [undefined, undefined];
  const gauges: GaugeValue[] = [];
  let statusCode = -1;
  let serving = -1;
  const outcome = (code: FailureCode | '', message: string): ProbeOutcome => {
    if (statusCode >= 0) gauges.push({ name: 'probe_grpc_status_code', value: statusCode });
    if (serving >= 0) for (const [i, s] of SERVING_STATUSES.entries()) gauges.push({ name: 'probe_grpc_healthcheck_response', value: i === serving ? 1 : 0, labels: { serving_status: s } });
    return { success: code === '', failureCode: code, failureMessage: message, phases: phasesFromMarks(GRPC_PHASES, t0, marks, marks[1] ?? clock.monoNs()), httpStatusCode: 0, httpVersion: 0, gauges };
  };

  const hp = parseHostPort(target.url, /^https:/i.test(target.url) ? 443 : /^http:/i.test(target.url) ? 80 : undefined);
  if (!hp) return outcome(FailureCodes.INVALID_TARGET, `invalid gRPC target ${JSON.stringify(target.url)} (want host:port or a URL)`);
  const useTls = opts.tls || /^https:/i.test(target.url);
  const addr = await resolveAddress(hp.host, opts.preferred_ip_protocol, opts.ip_protocol_fallback, prep.resolveAll, signal);
  if (!addr.ok) return outcome(addr.code, addr.message);
  gauges.push(...addressGauges(addr));
  marks[0] = isIP(hp.host) ? t0 : clock.monoNs();
  gauges.push({ name: 'probe_dns_lookup_time_seconds', value: Number(marks[0] - t0) / 1e9 }, { name: 'probe_grpc_ssl', value: useTls ? 1 : 0 });

  const address = addr.family === 6 ? `ipv6:[${addr.address}]:${hp.port}` : `ipv4:${addr.address}:${hp.port}`;
  const channelOptions: grpc.ChannelOptions = { 'grpc.max_reconnect_backoff_ms': 1000, 'grpc.enable_retries': 0, 'grpc.use_local_subchannel_pool': 1 };
  if (useTls) channelOptions['grpc.ssl_target_name_override'] = verifyName(prep.tls, hp.host);
  channelOptions['grpc.default_authority'] = `${hp.host.includes(':') ? `[${hp.host}]` : hp.host}:${hp.port}`;
  const client = new grpc.Client(address, useTls ? credentials(prep.tls) : grpc.credentials.createInsecure(), channelOptions);
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(opts.metadata)) md.set(k, v);
  try {
    const reply = await new Promise<{ err: grpc.ServiceError | null; status?: number }>((resolve) => {
      if (signal.aborted) return resolve({ err: Object.assign(new Error('timeout'), { code: grpc.status.DEADLINE_EXCEEDED, details: 'timeout', metadata: new grpc.Metadata() }) });
      const call = client.makeUnaryRequest(HEALTH_CHECK_PATH, (r: { service: string }) => encodeHealthRequest(r.service), decodeHealthResponse, { service: opts.service }, md, { deadline: Date.now() + target.timeoutMs }, (err, status) => {
        signal.removeEventListener('abort', onAbort);
        resolve({ err, status });
      });
      const onAbort = (): void => call.cancel();
      signal.addEventListener('abort', onAbort, { once: true });
    });
    if (reply.err) {
      statusCode = reply.err.code;
      marks[1] = signal.aborted ? undefined : clock.monoNs();
      const code = signal.aborted ? FailureCodes.TIMEOUT : callFailure(reply.err);
      const what = code === FailureCodes.GRPC_UNKNOWN_SERVICE ? `health service does not know ${JSON.stringify(opts.service)}` : `Health/Check failed`;
      return outcome(code, `${what}: ${grpc.status[reply.err.code] ?? reply.err.code}: ${reply.err.details}`);
    }
    marks[1] = clock.monoNs();
    statusCode = grpc.status.OK;
    serving = reply.status ?? 0;
    if (serving !== 1) return outcome(FailureCodes.GRPC_NOT_SERVING, `service ${JSON.stringify(opts.service)} is ${SERVING_STATUSES[serving] ?? `status ${serving}`}`);
    return outcome('', '');
  } finally {
    client.close();
  }
}
