/**
 * The http probe (blackbox `prober: http`): http and https URLs, HTTP/1.1 and HTTP/2
 * (ALPN over TLS, h2c with `http2_prior_knowledge`), a fresh connection per request like
 * blackbox_exporter so connect and TLS are measured every time, redirects followed with a
 * timing per hop, then blackbox's checks in blackbox's order: status, header regexes,
 * body regexes, HTTP version, fail_if_ssl / fail_if_not_ssl.
 *
 * Phases (blackbox names), contiguous on `ctx.clock.monoNs()` and summed over the hops
 * (like blackbox's "summed over all redirects"), so they add up to the probe duration:
 *   resolve    → address known (0 for IP literals)
 *   connect    → TCP connected
 *   tls        → TLS handshake done and verified (0 for http)
 *   processing → first response byte (HTTP/1.1) / response headers (HTTP/2)
 *   transfer   → body end (read, decoded, discarded unless a body regex needs it)
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { VERSION } from '@probemesh/common';
import { FailureCode, FailureCodes } from './failure';
import { exchange, HopRequest, HopResult, HTTP_PHASES } from './http-exchange';
import { HttpProbeOptions, PreparedHttp, prepareHttp } from './http-options';
import { phasesFromMarks } from './phases';
import { ResolveAllFn, systemResolveAll, addressGauges } from './target-addr';
import { GaugeValue, PhaseTiming, Probe, ProbeContext, ProbeOutcome, ProbeTarget, RedirectHopTiming } from './types';

/**
 * probe_http_content_length as Go's http client (and so blackbox) reports it: 0 without a
 * response, and for responses that cannot have a body whatever their header says (HEAD,
 * 1xx, 204, 304: RFC 9110 §6.4.1); else the Content-Length header, -1 when absent.
 */
function contentLength(method: string, last: HopResult): number {
  if (last.status === 0 || method === 'HEAD' || last.status < 200 || last.status === 204 || last.status === 304) return 0;
  return last.contentLength;
}

export { HTTP_PHASES } from './http-exchange';
export { httpProbeSchema, HTTP_VERSION_NAMES } from './http-options';
export type { HttpProbeOptions } from './http-options';

/** Resolves a host name to one address; injectable so tests need no DNS. */
export type LookupFn = (hostname: string, signal: AbortSignal) => Promise<{ address: string; family: number }>;

/** The system resolver (getaddrinfo), first address. */
export const systemLookup: LookupFn = async (hostname) => {
  const r = await dnsLookup(hostname, { verbatim: true });
  return { address: r.address, family: r.family };
};

/** Most redirects followed (Go's and blackbox's limit). */
export const MAX_REDIRECTS = 10;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Dependencies of the http probe (tests inject a resolver). */
export interface HttpProbeDeps {
  /** One-address resolver (wrapped; the preferred-protocol choice then sees only that address). */
  lookup?: LookupFn;
  /** All-addresses resolver. @default getaddrinfo */
  resolveAll?: ResolveAllFn;
}

/** Creates an http probe with `options`; throws when a configured file cannot be read. */
export function httpProbe(options: HttpProbeOptions, deps: HttpProbeDeps = {}): Probe {
  const lookup = deps.lookup;
  const resolveAll: ResolveAllFn = deps.resolveAll ?? (lookup ? async (h, s) => [await lookup(h, s)] : systemResolveAll);
  const prep = prepareHttp(options, `probemesh/${VERSION}`);
  return { kind: 'http', run: (target, signal, ctx) => runHttp(prep, resolveAll, target, signal, ctx) };
}

/** The next request after a redirect, like Go's client (303/301/302 → GET without body; auth only to the same host). */
function redirected(prev: HopRequest, location: string, status: number, first: URL, hostHeader: string | undefined): HopRequest | undefined {
  let url: URL;
  try {
    url = new URL(location, prev.url);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  const keepMethod = status === 307 || status === 308;
  const sameHost = url.hostname === first.hostname;
  const headers = { ...prev.headers };
  if (!sameHost) delete headers.authorization;
  return {
    url,
    method: keepMethod || prev.method === 'HEAD' ? prev.method : 'GET',
    headers,
    authority: sameHost && hostHeader !== undefined ? hostHeader : url.host,
    body: keepMethod ? prev.body : undefined,
  };
}

/** The first failed blackbox check of a final response, in blackbox's order. */
function check(prep: PreparedHttp, hop: HopResult): { code: FailureCode; message: string; regex: boolean } | undefined {
  if (!prep.statusValid(hop.status)) {
    const want = prep.opts.valid_status_codes.length ? prep.opts.valid_status_codes.join(',') : '2xx';
    return { code: FailureCodes.HTTP_STATUS, message: `HTTP status ${hop.status} is not valid (want ${want})`, regex: false };
  }
  for (const c of prep.headerMatches) {
    const values = hop.headers[c.header];
    if (!values) {
      if (c.allowMissing) continue;
      return { code: FailureCodes.HEADER_REGEX, message: `missing required header ${c.header}`, regex: true };
    }
    if (values.some((v) => c.regexp.test(v))) return { code: FailureCodes.HEADER_REGEX, message: `header ${c.header} matched ${c.regexp.source}`, regex: true };
  }
  for (const c of prep.headerNotMatches) {
    const values = hop.headers[c.header];
    if (!values) {
      if (c.allowMissing) continue;
      return { code: FailureCodes.HEADER_REGEX, message: `missing required header ${c.header}`, regex: true };
    }
    if (!values.some((v) => c.regexp.test(v))) return { code: FailureCodes.HEADER_REGEX, message: `header ${c.header} did not match ${c.regexp.source}`, regex: true };
  }
  if (prep.keepBody) {
    const text = (hop.body ?? Buffer.alloc(0)).toString('utf8');
    for (const re of prep.bodyMatches) if (re.test(text)) return { code: FailureCodes.BODY_REGEX, message: `body matched ${re.source}`, regex: true };
    for (const re of prep.bodyNotMatches) if (!re.test(text)) return { code: FailureCodes.BODY_REGEX, message: `body did not match ${re.source}`, regex: true };
  }
  const versions = prep.opts.valid_http_versions;
  if (versions.length > 0 && !versions.includes(hop.protocol as (typeof versions)[number])) {
    return { code: FailureCodes.HTTP_VERSION, message: `HTTP version ${hop.protocol} is not valid (want ${versions.join(', ')})`, regex: false };
  }
  if (hop.tls && prep.opts.fail_if_ssl) return { code: FailureCodes.HTTP_SSL, message: 'final response came over TLS (fail_if_ssl)', regex: false };
  if (!hop.tls && prep.opts.fail_if_not_ssl) return { code: FailureCodes.HTTP_NOT_SSL, message: 'final response did not come over TLS (fail_if_not_ssl)', regex: false };
  return undefined;
}

async function runHttp(prep: PreparedHttp, resolveAll: ResolveAllFn, target: ProbeTarget, signal: AbortSignal, ctx: ProbeContext): Promise<ProbeOutcome> {
  const clock = ctx.clock;
  const t0 = clock.monoNs();
  let first: URL;
  try {
    first = new URL(target.url);
  } catch {
    return invalid(t0, `invalid URL ${JSON.stringify(target.url)}`);
  }
  if (first.protocol !== 'http:' && first.protocol !== 'https:') return invalid(t0, `unsupported URL scheme ${first.protocol} (http probe needs http or https)`);

  let req: HopRequest = { url: first, method: prep.opts.method, headers: prep.headers, authority: prep.hostHeader ?? first.host, body: prep.body };
  const hops: HopResult[] = [];
  const urls: string[] = [];
  let start = t0;
  let redirectNote = '';
  for (;;) {
    const hop = await exchange(req, prep, resolveAll, signal, clock, start);
    hops.push(hop);
    urls.push(req.url.href);
    start = hop.endNs;
    if (hop.failure || !prep.followRedirects || !REDIRECT_STATUSES.has(hop.status)) break;
    const location = hop.headers.location?.[0];
    if (location === undefined) break;
    if (hops.length > MAX_REDIRECTS) {
      redirectNote = ` (stopped after ${MAX_REDIRECTS} redirects)`;
      break;
    }
    const next = redirected(req, location, hop.status, first, prep.hostHeader);
    if (!next) break;
    ctx.log.debug({ target: target.id, status: hop.status, location }, 'following redirect');
    req = next;
  }

  const last = hops[hops.length - 1]!;
  const sums = new Array<bigint>(HTTP_PHASES.length).fill(0n);
  const hopTimings: RedirectHopTiming[] = [];
  let hopStart = t0;
  hops.forEach((h, i) => {
    phasesFromMarks(HTTP_PHASES, hopStart, h.marks, h.endNs).forEach((p, j) => (sums[j]! += p.durationNs));
    hopTimings.push({ url: urls[i]!, statusCode: h.status, durationNs: h.endNs - hopStart });
    hopStart = h.endNs;
  });
  const phases: PhaseTiming[] = HTTP_PHASES.map((name, i) => ({ name, durationNs: sums[i]! }));
  const failed = last.failure ?? check(prep, last);
  const regexFailed = failed !== undefined && 'regex' in failed && failed.regex;

  const firstHop = hops[0]!;
  const gauges: GaugeValue[] = [];
  const resolveNs = firstHop.marks[0] !== undefined ? firstHop.marks[0] - t0 : 0n;
  gauges.push({ name: 'probe_dns_lookup_time_seconds', value: Number(resolveNs) / 1e9 });
  if (firstHop.family !== 0) {
    gauges.push(...addressGauges(firstHop));
  }
  gauges.push(
    { name: 'probe_http_content_length', value: contentLength(req.method, last) },
    { name: 'probe_http_uncompressed_body_length', value: last.bodyLength },
    { name: 'probe_http_redirects', value: hops.length - 1 },
    // Like blackbox: 1 only when a response came over TLS (a failed verification got none).
    { name: 'probe_http_ssl', value: last.tls && last.status > 0 ? 1 : 0 },
    { name: 'probe_failed_due_to_regex', value: regexFailed ? 1 : 0 },
  );
  const lastModified = last.headers['last-modified']?.[0];
  const lm = lastModified !== undefined ? Date.parse(lastModified) : NaN;
  if (Number.isFinite(lm)) gauges.push({ name: 'probe_http_last_modified_timestamp_seconds', value: lm / 1000 });
  if (last.tls) gauges.push(...last.tlsGauges);

  return {
    success: failed === undefined,
    failureCode: failed?.code ?? '',
    failureMessage: failed ? failed.message + redirectNote : '',
    phases,
    httpStatusCode: last.status,
    httpVersion: last.protocol === 'HTTP/2.0' ? 2 : last.protocol === 'HTTP/1.0' ? 1 : last.protocol === 'HTTP/1.1' ? 1.1 : 0,
    gauges,
    hops: hops.length > 1 ? hopTimings : undefined,
    socketInfo: last.socket,
  };
}

function invalid(t0: bigint, message: string): ProbeOutcome {
  return {
    success: false,
    failureCode: FailureCodes.INVALID_TARGET,
    failureMessage: message,
    phases: phasesFromMarks(HTTP_PHASES, t0, [], t0),
    httpStatusCode: 0,
    httpVersion: 0,
    gauges: [],
  };
}

export { ipAddrHash } from './target-addr';
