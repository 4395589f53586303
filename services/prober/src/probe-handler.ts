/**
 * `GET /probe?target=&module=[&debug=true]`, answering like blackbox_exporter 0.23 so
 * Prometheus can scrape a prober with the usual multi-target relabel config: same metric
 * names, types (gauges) and help, same status codes and error messages, same timeout
 * rule (X-Prometheus-Scrape-Timeout-Seconds minus an offset, capped by the module's
 * timeout, 120 s without the header), default module `http_2xx`. Extras: the failure
 * code as `probe_failure_info{failure_code}` when the probe failed.
 *
 * Each request builds its own prom-client Registry (never a global one).
 */
import { Writable } from 'node:stream';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Clock, Logger, Route, targetId } from '@probemesh/common';
import pino from 'pino';
import { Gauge, Registry } from 'prom-client';
import { ProbeModules } from './modules';
import { outcomeDurationNs, ProbeOutcome } from './probes';

/** Dependencies of the /probe route. */
export interface ProbeHandlerDeps {
  /** The prober's modules. */
  readonly modules: ProbeModules;
  readonly clock: Clock;
  /** The prober's logger (probe logs go to a child of it, or to the debug buffer). */
  readonly log: Logger;
  /** Subtracted from the Prometheus scrape timeout (blackbox --timeout-offset), ms. @default 500 */
  readonly timeoutOffsetMs?: number;
  /** Called after each probe (e.g. to count it in /metrics). @default none */
  readonly observe?: (module: string, outcome: ProbeOutcome) => void;
}

/** blackbox's help texts, so a scrape looks the same. */
const HELP: Readonly<Record<string, string>> = {
  probe_success: 'Displays whether or not the probe was a success',
  probe_duration_seconds: 'Returns how long the probe took to complete in seconds',
  probe_dns_lookup_time_seconds: 'Returns the time taken for probe dns lookup in seconds',
  probe_failed_due_to_regex: 'Indicates if probe failed due to regex',
  probe_http_content_length: 'Length of http content response',
  probe_http_duration_seconds: 'Duration of http request by phase, summed over all redirects',
  probe_http_last_modified_timestamp_seconds: 'Returns the Last-Modified HTTP response header in unixtime',
  probe_http_redirects: 'The number of redirects',
  probe_http_ssl: 'Indicates if SSL was used for the final redirect',
  probe_http_status_code: 'Response HTTP status code',
  probe_http_uncompressed_body_length: 'Length of uncompressed response body',
  probe_http_version: 'Returns the version of HTTP of the probe response',
  probe_ip_addr_hash: "Specifies the hash of IP address. It's useful to detect if the IP address changes.",
  probe_ip_protocol: 'Specifies whether probe ip protocol is IP4 or IP6',
  probe_ssl_earliest_cert_expiry: 'Returns last SSL chain expiry in unixtime',
  probe_ssl_last_chain_expiry_timestamp_seconds: 'Returns last SSL chain expiry in timestamp',
  probe_ssl_last_chain_info: 'Contains SSL leaf certificate information',
  probe_tls_version_info: 'Returns the TLS version used or NaN when unknown',
  probe_tls_cipher_info: 'Returns the TLS cipher negotiated during handshake',
  probe_failure_info: 'probemesh: why the probe failed (stable failure code), 1 when it failed',
};

/** blackbox getTimeout: header (default 120 s) minus offset, capped by the module timeout. */
export function probeTimeoutSeconds(header: string | undefined, moduleTimeoutMs: number | undefined, offsetSeconds: number): number {
  let t = 0;
  if (header !== undefined && header !== '') {
    t = Number(header);
    if (!Number.isFinite(t)) throw new Error(`strconv.ParseFloat: parsing ${JSON.stringify(header)}: invalid syntax`);
  }
  if (t === 0) t = 120;
  const max = t - offsetSeconds;
  const mod = (moduleTimeoutMs ?? 0) / 1000;
  return (mod > 0 && mod < max) || max < 0 ? mod : max;
}

function httpError(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' });
  res.end(`${message}\n`);
}

/** The registry of one probe's metrics, in blackbox names. */
export function probeRegistry(prober: string, outcome: ProbeOutcome, durationNs: bigint): Registry {
  const registry = new Registry();
  const samples: { name: string; value: number; labels: Record<string, string> }[] = [
    { name: 'probe_success', value: outcome.success ? 1 : 0, labels: {} },
    { name: 'probe_duration_seconds', value: Number(durationNs) / 1e9, labels: {} },
  ];
  const phaseMetric = `probe_${prober}_duration_seconds`;
  for (const p of outcome.phases) samples.push({ name: phaseMetric, value: Number(p.durationNs) / 1e9, labels: { phase: p.name } });
  if (prober === 'http' || outcome.httpStatusCode > 0) samples.push({ name: 'probe_http_status_code', value: outcome.httpStatusCode, labels: {} });
  if (prober === 'http' || outcome.httpVersion > 0) samples.push({ name: 'probe_http_version', value: outcome.httpVersion, labels: {} });
  if (!outcome.success) samples.push({ name: 'probe_failure_info', value: 1, labels: { failure_code: outcome.failureCode || 'error' } });
  for (const g of outcome.gauges) samples.push({ name: g.name, value: g.value, labels: Object.fromEntries(Object.entries(g.labels ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) });
  const byName = new Map<string, typeof samples>();
  for (const s of samples) byName.set(s.name, [...(byName.get(s.name) ?? []), s]);
  for (const name of [...byName.keys()].sort()) {
    const list = byName.get(name)!;
    const labelNames = [...new Set(list.flatMap((s) => Object.keys(s.labels)))].sort();
    const g = new Gauge({ name, help: HELP[name] ?? `${name} (probemesh ${prober} probe)`, labelNames, registers: [registry] });
    for (const s of list) g.set(s.labels, s.value);
  }
  return registry;
}

/** A logger writing JSON lines into `lines` (the debug output's probe log). */
function bufferLogger(lines: string[], bindings: Record<string, string>): Logger {
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8').trimEnd());
      cb();
    },
  });
  return pino({ level: 'debug', base: bindings, timestamp: pino.stdTimeFunctions.isoTime }, sink);
}

/** The /probe route handler. */
export function probeRoute(deps: ProbeHandlerDeps): Route {
  const offsetSeconds = (deps.timeoutOffsetMs ?? 500) / 1000;
  return async (req: IncomingMessage, res: ServerResponse, url: URL) => {
    const params = url.searchParams;
    const moduleName = params.get('module') || 'http_2xx';
    const def = deps.modules.definition(moduleName);
    if (!def) return httpError(res, 400, `Unknown module ${JSON.stringify(moduleName)}`);
    let timeoutSeconds: number;
    try {
      const h = req.headers['x-prometheus-scrape-timeout-seconds'];
      timeoutSeconds = probeTimeoutSeconds(Array.isArray(h) ? h[0] : h, def.timeoutMs, offsetSeconds);
    } catch (err) {
      return httpError(res, 500, `Failed to parse timeout from Prometheus header: ${(err as Error).message}`);
    }
    const target = params.get('target') ?? '';
    if (target === '') return httpError(res, 400, 'Target parameter is missing');
    const debug = params.get('debug') === 'true';
    const lines: string[] = [];
    const log = debug ? bufferLogger(lines, { module: moduleName, instance: target }) : deps.log.child({ component: 'probe', module: moduleName, instance: target });
    const timeoutMs = Math.max(1, Math.round(timeoutSeconds * 1000));
    log.info({ probe: def.prober, timeout_seconds: timeoutSeconds }, 'Beginning probe');
    const t0 = deps.clock.monoNs();
    const outcome = await deps.modules.run({ id: targetId(moduleName, target), url: target, module: moduleName, timeoutMs, labels: {} }, AbortSignal.timeout(timeoutMs), { clock: deps.clock, log });
    const durationNs = outcomeDurationNs(outcome, deps.clock.monoNs() - t0);
    for (const h of outcome.hops ?? []) log.info({ url: h.url, status_code: h.statusCode, duration_seconds: Number(h.durationNs) / 1e9 }, 'Request hop');
    if (outcome.success) log.info({ duration_seconds: Number(durationNs) / 1e9 }, 'Probe succeeded');
    else log.error({ duration_seconds: Number(durationNs) / 1e9, failure_code: outcome.failureCode, reason: outcome.failureMessage }, 'Probe failed');
    deps.observe?.(moduleName, outcome);
    const registry = probeRegistry(def.prober, outcome, durationNs);
    const metrics = await registry.metrics();
    if (debug) {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      // JSON is valid YAML: the module as parsed, defaults included.
      res.end(`Logs for the probe:\n${lines.join('\n')}\n\n\n\nMetrics that would have been returned:\n${metrics}\n\n\nModule configuration:\n${JSON.stringify(def, null, 2)}\n`);
      return;
    }
    res.writeHead(200, { 'content-type': registry.contentType });
    res.end(metrics);
  };
}
