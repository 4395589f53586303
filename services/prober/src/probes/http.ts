/**
 * HTTP/1.1 probe (http and https URLs) on node:http/https, a fresh connection per probe
 * (like blackbox_exporter) so connect and TLS are measured every time.
 *
 * Phases (blackbox names), contiguous on `ctx.clock.monoNs()`:
 *   resolve    probe start → address known (our own lookup; 0 for IP literals)
 *   connect    → TCP connected
 *   tls        → TLS handshake done (0 for http)
 *   processing → first response byte (includes writing the request, as blackbox's
 *                gotConn → responseStart)
 *   transfer   → body end (read and discarded, up to `body_size_limit`)
 */
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { isIP, Socket } from 'node:net';
import { lookup as dnsLookup } from 'node:dns/promises';
import { TLSSocket, PeerCertificate, DetailedPeerCertificate } from 'node:tls';
import { bool, Infer, list, num, obj, optional, record, str, VERSION } from '@probemesh/common';
import { FailureCode, FailureCodes, failureCodeOf } from './failure';
import { phasesFromMarks } from './phases';
import { GaugeValue, Probe, ProbeContext, ProbeOutcome, ProbeTarget } from './types';

/** Options of an `http` probe module (blackbox `http:` block, the subset supported). */
export const httpProbeSchema = obj({
  valid_status_codes: list(num({ int: true, min: 100, max: 599 }), { default: [], doc: 'Accepted status codes; empty = any 2xx. @default []' }),
  method: str({ default: 'GET', pattern: /^[A-Z]+$/, doc: 'HTTP method. @default "GET"' }),
  headers: record(str(), { default: {}, doc: 'Extra request headers. @default {}' }),
  body_size_limit: num({ int: true, min: 0, default: 10 * 1024 * 1024, doc: 'Largest response body read, in bytes (0 = unlimited); a larger body fails the probe with `error`. @default 10485760' }),
  tls_config: obj({
    ca_file: optional(str({ nonEmpty: true, doc: 'PEM file of CA certificates trusted instead of the system ones.' })),
    server_name: optional(str({ nonEmpty: true, doc: 'Name sent in SNI and checked against the certificate (default: the URL host).' })),
    insecure_skip_verify: bool({ default: false, doc: 'Accept any server certificate. @default false' }),
  }),
});

/** Parsed options of an `http` probe module. */
export type HttpProbeOptions = Infer<typeof httpProbeSchema>;

/** Resolves a host name to one address; injectable so tests need no DNS. */
export type LookupFn = (hostname: string, signal: AbortSignal) => Promise<{ address: string; family: number }>;

/** The system resolver (getaddrinfo), first address. */
export const systemLookup: LookupFn = async (hostname) => {
  const r = await dnsLookup(hostname, { verbatim: true });
  return { address: r.address, family: r.family };
};

/** Phase names of the http probe, in order. */
export const HTTP_PHASES = ['resolve', 'connect', 'tls', 'processing', 'transfer'] as const;
const RESOLVE = 0;
const CONNECT = 1;
const TLS = 2;
const PROCESSING = 3;
const TRANSFER = 4;

/** Creates an http probe with `options`; `deps.lookup` replaces the system resolver. */
export function httpProbe(options: HttpProbeOptions, deps: { lookup?: LookupFn } = {}): Probe {
  const lookup = deps.lookup ?? systemLookup;
  // Read once at module set-up: a missing CA file is a configuration error, not a probe failure.
  const ca = options.tls_config.ca_file !== undefined ? readFileSync(options.tls_config.ca_file) : undefined;
  const valid = options.valid_status_codes.length > 0 ? new Set(options.valid_status_codes) : undefined;
  const statusValid = (s: number): boolean => (valid ? valid.has(s) : s >= 200 && s <= 299);
  return {
    kind: 'http',
    run: (target, signal, ctx) => runHttp(options, { lookup, ca, statusValid }, target, signal, ctx),
  };
}

interface Prepared {
  lookup: LookupFn;
  ca: Buffer | undefined;
  statusValid(status: number): boolean;
}

function timeoutCode(phase: number): FailureCode {
  if (phase === RESOLVE) return FailureCodes.DNS_TIMEOUT;
  if (phase === CONNECT) return FailureCodes.CONNECT_TIMEOUT;
  return FailureCodes.TIMEOUT;
}

async function runHttp(opts: HttpProbeOptions, prep: Prepared, target: ProbeTarget, signal: AbortSignal, ctx: ProbeContext): Promise<ProbeOutcome> {
  const clock = ctx.clock;
  const t0 = clock.monoNs();
  const marks: (bigint | undefined)[] = [undefined, undefined, undefined, undefined, undefined];
  const phaseNow = (): number => {
    const i = marks.findIndex((m) => m === undefined);
    return i < 0 ? TRANSFER : i;
  };
  const outcome = (code: FailureCode | '', message: string, extra: Partial<ProbeOutcome> = {}): ProbeOutcome => ({
    success: code === '',
    failureCode: code,
    failureMessage: message,
    phases: phasesFromMarks(HTTP_PHASES, t0, marks, marks[TRANSFER] ?? clock.monoNs()),
    httpStatusCode: 0,
    httpVersion: 0,
    gauges: [],
    ...extra,
  });

  let url: URL;
  try {
    url = new URL(target.url);
  } catch {
    return outcome(FailureCodes.INVALID_TARGET, `invalid URL ${JSON.stringify(target.url)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return outcome(FailureCodes.INVALID_TARGET, `unsupported URL scheme ${url.protocol} (http probe needs http or https)`);
  if (signal.aborted) return outcome(timeoutCode(RESOLVE), `timeout after ${target.timeoutMs}ms before the probe started`);
  const useTls = url.protocol === 'https:';
  const host = url.hostname.replace(/^\[|\]$/g, '');

  let address = host;
  let family = isIP(host);
  if (family !== 0) marks[RESOLVE] = t0;
  else {
    try {
      const r = await raceAbort(prep.lookup(host, signal), signal);
      address = r.address;
      family = r.family;
    } catch (err) {
      if (signal.aborted) return outcome(FailureCodes.DNS_TIMEOUT, `DNS lookup of ${host} timed out after ${target.timeoutMs}ms`);
      const code = failureCodeOf(err);
      const dnsCode = code === FailureCodes.DNS_NXDOMAIN || code === FailureCodes.DNS_TIMEOUT ? code : FailureCodes.DNS_ERROR;
      return outcome(dnsCode, `DNS lookup of ${host} failed: ${(err as Error).message}`);
    }
    marks[RESOLVE] = clock.monoNs();
  }

  return new Promise<ProbeOutcome>((resolve) => {
    let done = false;
    let status = 0;
    let version = 0;
    const gauges: GaugeValue[] = [];
    const tlsOpts: https.RequestOptions = useTls
      ? {
          servername: opts.tls_config.server_name ?? (isIP(host) ? undefined : host),
          ca: prep.ca,
          rejectUnauthorized: !opts.tls_config.insecure_skip_verify,
        }
      : {};
    const req = (useTls ? https : http).request({
      host: address,
      family,
      port: Number(url.port) || (useTls ? 443 : 80),
      path: `${url.pathname}${url.search}`,
      method: opts.method,
      headers: { host: url.host, 'user-agent': `probemesh/${VERSION}`, ...opts.headers },
      agent: false,
      ...tlsOpts,
    });

    const finish = (code: FailureCode | '', message: string): void => {
      if (done) return;
      done = true;
      signal.removeEventListener('abort', onAbort);
      const result = outcome(code, message, { httpStatusCode: status, httpVersion: version, gauges });
      req.destroy();
      resolve(result);
    };
    const onAbort = (): void => {
      const phase = phaseNow();
      finish(timeoutCode(phase), `timeout after ${target.timeoutMs}ms during ${HTTP_PHASES[phase]}`);
    };
    signal.addEventListener('abort', onAbort, { once: true });

    req.on('socket', (sock: Socket) => {
      sock.once('connect', () => {
        marks[CONNECT] = clock.monoNs();
        if (!useTls) marks[TLS] = marks[CONNECT];
      });
      if (useTls) sock.once('secureConnect', () => (marks[TLS] = clock.monoNs()));
      sock.once('data', () => (marks[PROCESSING] ??= clock.monoNs()));
    });
    req.on('response', (res: http.IncomingMessage) => {
      marks[PROCESSING] ??= clock.monoNs();
      status = res.statusCode ?? 0;
      version = Number(res.httpVersion) || 0;
      if (useTls) gauges.push(...tlsGauges(res.socket as TLSSocket));
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (opts.body_size_limit > 0 && bytes > opts.body_size_limit) finish(FailureCodes.ERROR, `response body exceeds body_size_limit (${opts.body_size_limit} bytes)`);
      });
      res.on('end', () => {
        if (done) return;
        marks[TRANSFER] = clock.monoNs();
        if (prep.statusValid(status)) finish('', '');
        else finish(FailureCodes.HTTP_STATUS, `HTTP status ${status} is not valid (want ${opts.valid_status_codes.length ? opts.valid_status_codes.join(',') : '2xx'})`);
      });
      res.on('error', (err) => finish(failureCodeOf(err, HTTP_PHASES[phaseNow()]), `reading response body: ${err.message}`));
    });
    req.on('error', (err) => {
      const phase = phaseNow();
      finish(failureCodeOf(err, HTTP_PHASES[phase]), `${HTTP_PHASES[phase]}: ${err.message}`);
    });
    req.end();
  });
}

/** blackbox's probe_ssl_earliest_cert_expiry and probe_tls_version_info. */
function tlsGauges(sock: TLSSocket): GaugeValue[] {
  const out: GaugeValue[] = [];
  const version = sock.getProtocol?.();
  if (version) out.push({ name: 'probe_tls_version_info', value: 1, labels: { version: version.replace('TLSv', 'TLS ') } });
  let cert: PeerCertificate | DetailedPeerCertificate | undefined = sock.getPeerCertificate?.(true);
  let earliest = Infinity;
  const seen = new Set<string>();
  while (cert && cert.valid_to && !seen.has(cert.fingerprint256)) {
    seen.add(cert.fingerprint256);
    earliest = Math.min(earliest, Date.parse(cert.valid_to) / 1000);
    cert = (cert as DetailedPeerCertificate).issuerCertificate;
  }
  if (Number.isFinite(earliest)) out.push({ name: 'probe_ssl_earliest_cert_expiry', value: earliest });
  return out;
}

function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason ?? new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
