/**
 * Reads raw samples back from Prometheus through its HTTP API: an instant query of a
 * range selector (`m{…}[300s]`) returns every stored sample of the window (a matrix),
 * never pre-aggregated percentiles.
 */
import { ProbemeshError, VERSION } from '@probemesh/common';

/** Error codes of the canary judge. */
export const CanaryErrorCodes = {
  /** Prometheus could not be reached or answered an error. */
  QUERY_FAILED: 'PM_CANARY_QUERY',
} as const;

/** A Prometheus query failed (network, HTTP status or API error). */
export class PrometheusQueryError extends ProbemeshError {
  constructor(
    message: string,
    /** The PromQL query. */
    readonly query: string,
    options?: { cause?: unknown },
  ) {
    super(CanaryErrorCodes.QUERY_FAILED, message, options);
    this.name = 'PrometheusQueryError';
  }
}

/** One series of a range selector: its labels and raw samples. */
export interface RawSeries {
  /** Labels including `__name__`. */
  labels: Record<string, string>;
  /** Sample timestamps, ms since the epoch. */
  timestampsMs: number[];
  /** Sample values (NaN / ±Inf parsed). */
  values: number[];
}

/** Where samples come from (Prometheus, or a fake in tests). */
export interface SampleSource {
  /** Raw samples of `selector` (PromQL series selector) over (endMs − windowMs, endMs]. */
  rawSamples(selector: string, windowMs: number, endMs: number, signal?: AbortSignal): Promise<RawSeries[]>;
}

/** Options of a {@link PrometheusReader}. */
export interface PrometheusReaderOptions {
  /** Base URL, e.g. http://127.0.0.1:9090 (a path prefix is kept). */
  url: string;
  /** Per-query timeout, ms. @default 30000 */
  timeoutMs?: number;
  /** Extra headers (e.g. X-Scope-OrgID, Authorization). @default {} */
  headers?: Record<string, string>;
  /** HTTP client. @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** {@link SampleSource} over the Prometheus HTTP API (`POST /api/v1/query`). */
export class PrometheusReader implements SampleSource {
  private readonly base: string;
  private readonly fetch: typeof fetch;

  constructor(private readonly opts: PrometheusReaderOptions) {
    this.base = opts.url.replace(/\/+$/, '');
    this.fetch = opts.fetch ?? globalThis.fetch;
  }

  async rawSamples(selector: string, windowMs: number, endMs: number, signal?: AbortSignal): Promise<RawSeries[]> {
    const query = `${selector}[${Math.max(1, Math.round(windowMs))}ms]`;
    const body = new URLSearchParams({ query, time: (endMs / 1000).toFixed(3) });
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new Error('timeout')), this.opts.timeoutMs ?? 30_000);
    const onAbort = () => ac.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    let text: string;
    let status: number;
    try {
      const res = await this.fetch(`${this.base}/api/v1/query`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': `probemesh-canary/${VERSION}`, ...(this.opts.headers ?? {}) },
        body,
        signal: ac.signal,
      });
      status = res.status;
      text = await res.text();
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      throw new PrometheusQueryError(`Prometheus at ${this.base} unreachable: ${[e.message, e.cause?.code].filter(Boolean).join(': ')}`, query, { cause: err });
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
    let json: { status?: string; error?: string; errorType?: string; data?: { resultType?: string; result?: { metric: Record<string, string>; values?: [number, string][] }[] } };
    try {
      json = JSON.parse(text);
    } catch {
      throw new PrometheusQueryError(`Prometheus at ${this.base} answered HTTP ${status} with a non-JSON body: ${text.slice(0, 200)}`, query);
    }
    if (json.status !== 'success') throw new PrometheusQueryError(`Prometheus query ${query} failed (HTTP ${status}, ${json.errorType ?? 'error'}): ${json.error ?? text.slice(0, 200)}`, query);
    if (json.data?.resultType !== 'matrix') throw new PrometheusQueryError(`Prometheus query ${query} returned ${json.data?.resultType}, expected a matrix`, query);
    return (json.data.result ?? []).map((r) => {
      const vs = r.values ?? [];
      const timestampsMs = new Array<number>(vs.length);
      const values = new Array<number>(vs.length);
      for (let i = 0; i < vs.length; i++) {
        timestampsMs[i] = Math.round(vs[i]![0] * 1000);
        values[i] = parsePromValue(vs[i]![1]);
      }
      return { labels: r.metric, timestampsMs, values };
    });
  }
}

/** Parses a Prometheus sample value string ("1.5", "NaN", "+Inf", "-Inf"). */
export function parsePromValue(s: string): number {
  if (s === '+Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  return Number(s);
}

/** Identity of a series without its metric name (and without `drop` labels), for joins. */
export function probeJoinKey(labels: Record<string, string>, drop: readonly string[] = []): string {
  return Object.keys(labels)
    .filter((k) => k !== '__name__' && !drop.includes(k))
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}
