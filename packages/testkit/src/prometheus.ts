/**
 * A real Prometheus per test, with the remote-write receiver on, on a loopback random port,
 * plus a small client for its HTTP API. Tests check results by reading what it stored.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findBinary } from './binaries';
import { launch, retryOnAddressInUse } from './launch';
import { freePort, httpGet, removeDir, tempDir } from './net';
import { ChildProc, Procs } from './procs';

/**
 * Config used when none is given: no scrape jobs, and a 30 min out-of-order window so
 * samples carrying probe timestamps are accepted even when batches arrive out of order.
 */
export const DEFAULT_PROMETHEUS_CONFIG = ['global:', '  scrape_interval: 15s', 'storage:', '  tsdb:', '    out_of_order_time_window: 30m', ''].join('\n');

/** A time for the API: a Date, or seconds since the Unix epoch (as the API and its results use). */
export type PromTime = Date | number;

/** One sample of an instant vector, exactly as the API returns it. */
export interface PromSample {
  /** Labels, including `__name__`. */
  metric: Record<string, string>;
  /** `[unix seconds, "value"]`; parse the value with {@link sampleValue}. */
  value: [number, string];
}

/** One series of a range result (a matrix), exactly as the API returns it. */
export interface PromSeries {
  /** Labels, including `__name__` when selected directly. */
  metric: Record<string, string>;
  /** `[unix seconds, "value"]` pairs in time order. */
  values: [number, string][];
}

/** The numeric value of a sample or pair (`"NaN"`, `"+Inf"` parse too). */
export function sampleValue(s: PromSample | [number, string]): number {
  return Number(Array.isArray(s) ? s[1] : s.value[1]);
}

/** The timestamp of a sample or pair in ms since the epoch. */
export function sampleTimeMs(s: PromSample | [number, string]): number {
  return Math.round((Array.isArray(s) ? s[0] : s.value[0]) * 1000);
}

/** A Prometheus API call answered with status "error" (or not JSON). `code` is stable. */
export class PrometheusApiError extends Error {
  override readonly name = 'PrometheusApiError';
  /** Stable code. */
  readonly code = 'PM_TEST_PROMETHEUS_API';
  constructor(
    message: string,
    /** HTTP status. */
    readonly status: number,
    /** Prometheus `errorType` (e.g. `bad_data`), if any. */
    readonly errorType?: string,
  ) {
    super(message);
  }
}

/** A Prometheus started by the harness. */
export interface PrometheusServer extends AsyncDisposable {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** `<url>/api/v1/write` (remote-write receiver). */
  readonly writeUrl: string;
  readonly port: number;
  /** PID of the current process (a new one after {@link PrometheusServer.restart}). */
  readonly pid: number;
  /** Directory holding prometheus.yml and the TSDB (`data/`). */
  readonly dir: string;
  /** Instant query (`/api/v1/query`): the vector `result` array; throws PrometheusApiError on failure or if the result is not a vector. */
  query(promql: string, time?: PromTime): Promise<PromSample[]>;
  /** Instant query of a range selector (e.g. `probe_success[1h]`): the raw stored samples. */
  queryMatrix(promql: string, time?: PromTime): Promise<PromSeries[]>;
  /** Range query (`/api/v1/query_range`); `stepSeconds` defaults to 1. */
  queryRange(promql: string, start: PromTime, end: PromTime, stepSeconds?: number): Promise<PromSeries[]>;
  /** Label sets of the series matching the selectors (`/api/v1/series`). */
  series(match: string | string[], start?: PromTime, end?: PromTime): Promise<Record<string, string>[]>;
  /** Any GET API path (e.g. `/api/v1/labels`); returns `data`. */
  api<T = unknown>(path: string, params?: Record<string, string | string[]>): Promise<T>;
  /** Whether the current process is still running. */
  running(): boolean;
  /** Last output of the current process. */
  output(): string;
  /** Sends `signal` by PID (SIGKILL = crash; SIGSTOP/SIGCONT = hang). @default 'SIGKILL' */
  kill(signal?: NodeJS.Signals): void;
  /** Stops the process (SIGTERM, SIGKILL after 5 s), keeping config and data for {@link PrometheusServer.restart}. */
  shutdown(): Promise<void>;
  /** Stops it if running, then starts it again on the same port and data dir; waits for `/-/ready`. */
  restart(): Promise<void>;
  /** Stops the process and removes its directory. */
  stop(): Promise<void>;
}

/** Options of {@link startPrometheus}. */
export interface StartPrometheusOptions {
  /** Extra command-line arguments. */
  extraArgs?: string[];
  /** Feature flags passed as `--enable-feature=<a>,<b>` (e.g. `['native-histograms']`). @default none */
  features?: string[];
  /** prometheus.yml text. @default DEFAULT_PROMETHEUS_CONFIG */
  config?: string;
  /** Track the process here. */
  procs?: Procs;
  /** @default 30000 */
  startTimeoutMs?: number;
}

function toApiTime(t: PromTime): string {
  return t instanceof Date ? (t.getTime() / 1000).toFixed(3) : String(t);
}

class Prometheus implements PrometheusServer {
  readonly url: string;
  readonly writeUrl: string;
  private proc!: ChildProc;
  private removed = false;

  constructor(
    private readonly binary: string,
    readonly port: number,
    readonly dir: string,
    private readonly args: string[],
    private readonly procs: Procs | undefined,
    private readonly startTimeoutMs: number,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    this.writeUrl = `${this.url}/api/v1/write`;
  }

  get pid(): number {
    return this.proc.pid;
  }

  async start(): Promise<void> {
    this.proc = await launch({
      name: 'prometheus',
      cmd: this.binary,
      args: this.args,
      cwd: this.dir,
      procs: this.procs,
      timeoutMs: this.startTimeoutMs,
      ready: async () => {
        const r = await httpGet(`${this.url}/-/ready`, 1_000);
        if (r.status !== 200) throw new Error(`/-/ready ${r.status}: ${r.body.trim()}`);
        return true;
      },
    });
  }

  private async call(path: string, params: Record<string, string | string[]>, method: 'GET' | 'POST'): Promise<{ resultType?: string; result?: unknown } & Record<string, unknown>> {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) for (const one of Array.isArray(v) ? v : [v]) body.append(k, one);
    const res =
      method === 'POST'
        ? await fetch(`${this.url}${path}`, { method, body, signal: AbortSignal.timeout(30_000) })
        : await fetch(`${this.url}${path}?${body.toString()}`, { signal: AbortSignal.timeout(30_000) });
    const text = await res.text();
    let json: { status?: string; data?: unknown; errorType?: string; error?: string };
    try {
      json = JSON.parse(text) as typeof json;
    } catch {
      throw new PrometheusApiError(`prometheus ${path} answered ${res.status} with non-JSON: ${text.slice(0, 300)}`, res.status);
    }
    if (json.status !== 'success') {
      throw new PrometheusApiError(`prometheus ${path} ${JSON.stringify(params)} failed (${res.status}): ${json.errorType ?? '?'}: ${json.error ?? text.slice(0, 300)}`, res.status, json.errorType);
    }
    return json.data as { resultType?: string; result?: unknown } & Record<string, unknown>;
  }

  private async instant(promql: string, time: PromTime | undefined, want: 'vector' | 'matrix'): Promise<unknown[]> {
    const params: Record<string, string> = { query: promql };
    if (time !== undefined) params.time = toApiTime(time);
    const data = await this.call('/api/v1/query', params, 'POST');
    if (data.resultType !== want) {
      throw new PrometheusApiError(`prometheus query ${JSON.stringify(promql)} returned a ${data.resultType}, expected a ${want}${want === 'vector' ? ' (use queryMatrix for range selectors)' : ''}`, 200);
    }
    return data.result as unknown[];
  }

  async query(promql: string, time?: PromTime): Promise<PromSample[]> {
    return (await this.instant(promql, time, 'vector')) as PromSample[];
  }

  async queryMatrix(promql: string, time?: PromTime): Promise<PromSeries[]> {
    return (await this.instant(promql, time, 'matrix')) as PromSeries[];
  }

  async queryRange(promql: string, start: PromTime, end: PromTime, stepSeconds = 1): Promise<PromSeries[]> {
    const data = await this.call('/api/v1/query_range', { query: promql, start: toApiTime(start), end: toApiTime(end), step: String(stepSeconds) }, 'POST');
    return data.result as PromSeries[];
  }

  async series(match: string | string[], start?: PromTime, end?: PromTime): Promise<Record<string, string>[]> {
    const params: Record<string, string | string[]> = { 'match[]': match };
    if (start !== undefined) params.start = toApiTime(start);
    if (end !== undefined) params.end = toApiTime(end);
    return (await this.call('/api/v1/series', params, 'POST')) as unknown as Record<string, string>[];
  }

  async api<T = unknown>(path: string, params: Record<string, string | string[]> = {}): Promise<T> {
    return (await this.call(path, params, 'GET')) as T;
  }

  running(): boolean {
    return this.proc.exitInfo() === undefined;
  }
  output(): string {
    return this.proc.output();
  }
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.proc.kill(signal);
  }
  async shutdown(): Promise<void> {
    // A SIGSTOPped process cannot act on SIGTERM; wake it first.
    this.proc.kill('SIGCONT');
    await this.proc.stop(5_000);
  }
  async restart(): Promise<void> {
    if (this.removed) throw new Error('prometheus was stopped and its dir removed; start a new one');
    await this.shutdown();
    await this.start();
  }
  async stop(): Promise<void> {
    await this.shutdown();
    if (!this.removed) await removeDir(this.dir);
    this.removed = true;
  }
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/**
 * Starts `/usr/bin/prometheus` with the remote-write receiver on 127.0.0.1:<random port>,
 * config and TSDB in a temp dir, and waits for `/-/ready`. Throws MissingBinaryError
 * (naming the Debian package) if prometheus is not installed.
 */
export async function startPrometheus(opts: StartPrometheusOptions = {}): Promise<PrometheusServer> {
  const binary = findBinary('prometheus', 'prometheus');
  const dir = await tempDir('prometheus');
  try {
    const config = join(dir, 'prometheus.yml');
    await writeFile(config, opts.config ?? DEFAULT_PROMETHEUS_CONFIG);
    return await retryOnAddressInUse(async () => {
      const port = await freePort();
      const args = [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--web.enable-remote-write-receiver',
        '--storage.tsdb.retention.time=15d',
        ...(opts.features?.length ? [`--enable-feature=${opts.features.join(',')}`] : []),
        ...(opts.extraArgs ?? []),
      ];
      const prom = new Prometheus(binary, port, dir, args, opts.procs, opts.startTimeoutMs ?? 30_000);
      await prom.start();
      return prom;
    });
  } catch (err) {
    await removeDir(dir);
    throw err;
  }
}
