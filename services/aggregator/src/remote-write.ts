/**
 * Prometheus remote-write 1.0 client: protobuf `WriteRequest`, snappy block
 * compression, the protocol's headers, response classification and retries with
 * capped, jittered exponential backoff (honouring Retry-After).
 */
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { checkServerIdentity, PeerCertificate } from 'node:tls';
import { prometheus } from '@probemesh/proto';
import { ConfigError, VERSION } from '@probemesh/common';
import { toWriteRequest, TimeSeries, sampleCount } from './series';
import type { RemoteWriteSettings } from './config';

// snappyjs ships no types; we only need block-format compress/uncompress.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const snappy = require('snappyjs') as { compress(b: Uint8Array): Uint8Array; uncompress(b: Uint8Array): Uint8Array };

/** Snappy block-compresses `data` (Buffer in, Buffer out, avoiding snappyjs's slow Uint8Array path). */
export function snappyCompress(data: Uint8Array): Buffer {
  return Buffer.from(snappy.compress(Buffer.from(data.buffer, data.byteOffset, data.byteLength)));
}

/** Inverse of {@link snappyCompress} (tests, receivers). */
export function snappyUncompress(data: Uint8Array): Buffer {
  return Buffer.from(snappy.uncompress(Buffer.from(data.buffer, data.byteOffset, data.byteLength)));
}

/** Encodes series as a snappy-compressed `prometheus.WriteRequest` body. */
export function encodeWriteRequest(series: readonly TimeSeries[]): Buffer {
  return snappyCompress(prometheus.WriteRequest.encode(toWriteRequest(series)).finish());
}

/** Classification of one HTTP attempt. */
export interface AttemptResult {
  /** HTTP status, 0 when no response was received. */
  status: number;
  /** True for 2xx. */
  ok: boolean;
  /** True when sending the same request again may succeed. */
  retryable: boolean;
  /** Short stable reason ("ok", "out_of_order", "http_400", "network", ...). */
  reason: string;
  /** Response body excerpt or error message, for logs. */
  detail: string;
  /** Retry-After in ms when the server sent one on 429/503. */
  retryAfterMs?: number;
}

/** One attempt as reported to {@link RemoteWriteDeps.onAttempt}. */
export interface AttemptObservation extends AttemptResult {
  /** 1-based attempt number within the send. */
  attempt: number;
  /** Wall time of the attempt, seconds. */
  durationS: number;
  /** Samples in the request. */
  samples: number;
}

/** Outcome of a whole send (all attempts). */
export interface SendOutcome {
  /** Status of the last attempt (0 = no response). */
  status: number;
  /** Accepted (2xx). */
  ok: boolean;
  /** Reason of the last attempt ("ok" when accepted, "aborted" when stopped while retrying). */
  reason: string;
  /** False when the receiver refused the request for good. */
  retryable: boolean;
  /** HTTP attempts made. */
  attempts: number;
  /** Samples in the request. */
  samples: number;
  /** Response body excerpt or error of the last attempt (logs). */
  detail?: string;
}

// Prometheus (2.42 and others) answers some permanent TSDB rejections with 500 when
// the error arrives wrapped; retrying them would block the queue forever.
const PERMANENT_500: readonly [RegExp, string][] = [
  [/out of order sample/i, 'out_of_order'],
  [/too old sample|out of bounds/i, 'too_old'],
  [/duplicate sample for timestamp/i, 'duplicate_timestamp'],
  [/native histograms are disabled/i, 'native_histograms_disabled'],
  [/empty labelset/i, 'empty_labelset'],
];

/** Classifies a response: 2xx accepted, 429/5xx retryable (except permanent TSDB errors), other 4xx not. */
export function classifyResponse(status: number, body: string, retryAfter?: string | null, nowMs = Date.now()): AttemptResult {
  const detail = body.trim().slice(0, 512);
  if (status >= 200 && status < 300) return { status, ok: true, retryable: false, reason: 'ok', detail };
  for (const [re, reason] of PERMANENT_500) {
    if ((status === 500 || (status >= 400 && status < 500 && status !== 429)) && re.test(body)) return { status, ok: false, retryable: false, reason, detail };
  }
  if (status === 429 || status >= 500) {
    const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(retryAfter, nowMs) : undefined;
    return { status, ok: false, retryable: true, reason: `http_${status}`, detail, retryAfterMs };
  }
  return { status, ok: false, retryable: false, reason: `http_${status}`, detail };
}

/** Parses Retry-After (delay seconds or an HTTP date) into ms from `nowMs`; undefined when absent or invalid. */
export function parseRetryAfter(v: string | null | undefined, nowMs: number): number | undefined {
  if (!v) return undefined;
  const t = v.trim();
  if (/^\d+$/.test(t)) return Number(t) * 1000;
  const at = Date.parse(t);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/** Delay before retry number `retry` (1-based): min·2^(retry−1) capped at max, jittered to [50%, 100%) of that. */
export function backoffMs(retry: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const exp = Math.min(maxMs, minMs * 2 ** Math.min(30, Math.max(0, retry - 1)));
  return Math.max(1, Math.round(exp * (0.5 + random() / 2)));
}

/** Waits `ms` or until `signal` aborts (resolves either way). */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/** A timer-based {@link Sleep} that leaves no timer behind when aborted. */
export const realSleep: Sleep = (ms, signal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });

/** Longest Retry-After we honour; a longer one is treated as this. */
const MAX_RETRY_AFTER_MS = 10 * 60_000;

/** Dependencies of a {@link RemoteWriteClient}. */
export interface RemoteWriteDeps {
  /** HTTP client; when absent a keep-alive node:http(s) agent with the endpoint's TLS settings is used. */
  fetch?: typeof fetch;
  /** Backoff sleeper. @default realSleep */
  sleep?: Sleep;
  /** Random source in [0,1) for jitter. @default Math.random */
  random?: () => number;
  /** Wall clock in ms (Retry-After dates). @default Date.now */
  nowMs?: () => number;
  /** Called after every HTTP attempt (metrics, logs). */
  onAttempt?: (r: AttemptObservation) => void;
}

/** Reads a secret file (trailing newline trimmed), failing with the config path. */
function readSecret(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new ConfigError('remote_write', [{ path: what, message: `cannot read ${file}: ${(err as Error).message}` }]);
  }
}

function readPem(file: string | undefined, what: string): Buffer | undefined {
  if (!file) return undefined;
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError('remote_write', [{ path: what, message: `cannot read ${file}: ${(err as Error).message}` }]);
  }
}

/** What one HTTP POST returned. */
interface RawResponse {
  status: number;
  body: string;
  retryAfter: string | null;
}

/**
 * A remote_write endpoint: sends one request with retries. Safe to use concurrently
 * (one request per sending shard).
 */
export class RemoteWriteClient {
  /** Endpoint label value: the configured `name`, else the URL without credentials or query. */
  readonly endpoint: string;
  private readonly url: string;
  private readonly headers: Record<string, string>;
  private readonly sleep: Sleep;
  private readonly random: () => number;
  private readonly nowMs: () => number;
  private readonly agent?: http.Agent;

  /** Throws ConfigError when a TLS or secret file cannot be read. */
  constructor(readonly settings: RemoteWriteSettings, private readonly deps: RemoteWriteDeps = {}) {
    const u = new URL(settings.url);
    const headers: Record<string, string> = {};
    if (u.username || u.password) {
      // fetch refuses URLs with credentials: send them as basic auth instead.
      headers['authorization'] = 'Basic ' + Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
      u.username = '';
      u.password = '';
    }
    this.url = u.toString();
    this.endpoint = settings.name ?? `${u.origin}${u.pathname}`;
    for (const [k, v] of Object.entries(settings.headers)) headers[k.toLowerCase()] = v;
    const ba = settings.basic_auth;
    if (ba) {
      const pw = ba.password ?? readSecret(ba.password_file!, 'remote_write.basic_auth.password_file');
      headers['authorization'] = 'Basic ' + Buffer.from(`${ba.username}:${pw}`).toString('base64');
    }
    if (settings.bearer_token) headers['authorization'] = `Bearer ${settings.bearer_token}`;
    if (settings.bearer_token_file) headers['authorization'] = `Bearer ${readSecret(settings.bearer_token_file, 'remote_write.bearer_token_file')}`;
    Object.assign(headers, {
      'content-encoding': 'snappy',
      'content-type': 'application/x-protobuf',
      'user-agent': `probemesh/${VERSION}`,
      'x-prometheus-remote-write-version': '0.1.0',
    });
    this.headers = headers;
    this.sleep = deps.sleep ?? realSleep;
    this.random = deps.random ?? Math.random;
    this.nowMs = deps.nowMs ?? Date.now;
    if (!deps.fetch) {
      const tls = settings.tls;
      this.agent =
        u.protocol === 'https:'
          ? new https.Agent({
              keepAlive: true,
              maxSockets: 64,
              ca: readPem(tls.ca_file, 'remote_write.tls.ca_file'),
              cert: readPem(tls.cert_file, 'remote_write.tls.cert_file'),
              key: readPem(tls.key_file, 'remote_write.tls.key_file'),
              servername: tls.server_name,
              rejectUnauthorized: !tls.insecure_skip_verify,
              ...(tls.server_name ? { checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(tls.server_name!, cert) } : {}),
            })
          : new http.Agent({ keepAlive: true, maxSockets: 64 });
    }
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.agent?.destroy();
  }

  private post(body: Uint8Array, signal: AbortSignal): Promise<RawResponse> {
    if (this.deps.fetch) {
      return this.deps.fetch(this.url, { method: 'POST', headers: this.headers, body, signal }).then(async (res) => ({ status: res.status, body: await res.text(), retryAfter: res.headers.get('retry-after') }));
    }
    const u = new URL(this.url);
    const mod = u.protocol === 'https:' ? https : http;
    return new Promise<RawResponse>((resolve, reject) => {
      const req = mod.request(u, { method: 'POST', headers: { ...this.headers, 'content-length': String(body.byteLength) }, agent: this.agent, signal }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          if (size < 4096) chunks.push(c);
          size += c.length;
        });
        res.on('end', () => {
          const ra = res.headers['retry-after'];
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), retryAfter: Array.isArray(ra) ? ra[0] ?? null : ra ?? null });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Makes one HTTP attempt with the configured timeout; never throws. */
  async attempt(body: Uint8Array, signal?: AbortSignal): Promise<AttemptResult> {
    const ac = new AbortController();
    const onAbort = () => ac.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => ac.abort(new Error(`timeout after ${this.settings.timeout}ms`)), this.settings.timeout);
    try {
      const res = await this.post(body, ac.signal);
      return classifyResponse(res.status, res.body, res.retryAfter, this.nowMs());
    } catch (err) {
      const e = err as Error & { code?: string; cause?: { code?: string; message?: string } };
      const detail = [e.message, e.code ?? e.cause?.code ?? e.cause?.message].filter(Boolean).join(': ');
      return { status: 0, ok: false, retryable: true, reason: signal?.aborted ? 'aborted' : ac.signal.aborted ? 'timeout' : 'network', detail };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Sends `series` as one request, retrying retryable failures until accepted,
   * refused for good, `maxAttempts` reached, or `signal` aborted (reason "aborted").
   */
  async send(series: readonly TimeSeries[], opts: { signal?: AbortSignal; maxAttempts?: number } = {}): Promise<SendOutcome> {
    return this.sendBody(encodeWriteRequest(series), sampleCount(series), opts);
  }

  /** Like {@link RemoteWriteClient.send} for an already encoded, snappy-compressed body of `samples` samples. */
  async sendBody(body: Uint8Array, samples: number, opts: { signal?: AbortSignal; maxAttempts?: number } = {}): Promise<SendOutcome> {
    const max = opts.maxAttempts ?? Infinity;
    for (let attempt = 1; ; attempt++) {
      const t0 = process.hrtime.bigint();
      const r = await this.attempt(body, opts.signal);
      this.deps.onAttempt?.({ ...r, attempt, durationS: Number(process.hrtime.bigint() - t0) / 1e9, samples });
      const done = r.ok || !r.retryable || attempt >= max || opts.signal?.aborted;
      if (done) {
        const reason = opts.signal?.aborted && !r.ok ? 'aborted' : r.reason;
        return { status: r.status, ok: r.ok, reason, retryable: r.retryable, attempts: attempt, samples, detail: r.detail };
      }
      const wait = r.retryAfterMs !== undefined ? Math.min(r.retryAfterMs, MAX_RETRY_AFTER_MS) : backoffMs(attempt, this.settings.min_backoff, this.settings.max_backoff, this.random);
      await this.sleep(wait, opts.signal);
      if (opts.signal?.aborted) return { status: r.status, ok: false, reason: 'aborted', retryable: true, attempts: attempt, samples, detail: r.detail };
    }
  }
}
