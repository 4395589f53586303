import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { prometheus } from '@probemesh/proto';
import { loadConfig, toNumber } from '@probemesh/common';
import { aggregatorConfigSchema, RemoteWriteSettings, remoteWriteSettings } from './config';
import { backoffMs, classifyResponse, parseRetryAfter, RemoteWriteClient, snappyUncompress } from './remote-write';
import { TimeSeries } from './series';

/** A fake receiver: answers from a script of responses, records decoded requests. */
interface Received {
  headers: IncomingMessage['headers'];
  request: prometheus.WriteRequest;
}
let server: Server;
let baseUrl: string;
let script: ((res: ServerResponse) => void)[] = [];
const received: Received[] = [];

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const h = req.headers;
      const headersOk =
        h['content-encoding'] === 'snappy' &&
        h['content-type'] === 'application/x-protobuf' &&
        h['x-prometheus-remote-write-version'] === '0.1.0' &&
        /^probemesh\/\d+\.\d+\.\d+/.test(h['user-agent'] ?? '');
      if (!headersOk) {
        res.writeHead(415).end('bad headers');
        return;
      }
      received.push({ headers: h, request: prometheus.WriteRequest.decode(snappyUncompress(Buffer.concat(chunks))) });
      const next = script.shift();
      if (next) next(res);
      else res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((r) => server.close(() => r())));

function settings(over: Partial<RemoteWriteSettings> = {}): RemoteWriteSettings {
  return remoteWriteSettings(`${baseUrl}/api/v1/write`, { timeout: 5000, max_samples_per_send: 2000, batch_deadline: 1000, min_backoff: 30, max_backoff: 5000, ...over });
}

const SERIES: TimeSeries[] = [
  {
    labels: [
      { name: '__name__', value: 'probe_success' },
      { name: 'instance', value: 'https://a/' },
      { name: 'job', value: 'probemesh' },
    ],
    samples: [
      { value: 1, timestampMs: 1_700_000_000_123 },
      { value: 0, timestampMs: 1_700_000_015_123 },
    ],
  },
  { labels: [{ name: '__name__', value: 'probe_duration_seconds' }], samples: [{ value: 0.012345, timestampMs: 1_700_000_000_123 }] },
];

function reset(s: ((res: ServerResponse) => void)[] = []): void {
  script = s;
  received.length = 0;
}
const status = (code: number, body = '', headers: Record<string, string> = {}) => (res: ServerResponse) => res.writeHead(code, headers).end(body);

/** The outcome without its free-text `detail`. */
function strip<T extends { detail?: string }>(o: T): Omit<T, 'detail'> {
  const { detail: _detail, ...rest } = o;
  return rest;
}

function recorder(): { sleeps: number[]; sleep: (ms: number) => Promise<void> } {
  const sleeps: number[] = [];
  return { sleeps, sleep: async (ms: number) => void sleeps.push(ms) };
}

test('sends a snappy protobuf WriteRequest with the protocol headers that decodes to what was sent', async () => {
  reset();
  const c = new RemoteWriteClient(settings({ headers: { 'X-Scope-OrgID': 'edge' } }));
  const out = await c.send(SERIES);
  assert.deepEqual(strip(out), { status: 204, ok: true, reason: 'ok', retryable: false, attempts: 1, samples: 3 });
  assert.equal(received.length, 1);
  assert.equal(received[0]!.headers['x-scope-orgid'], 'edge');
  const got = received[0]!.request.timeseries.map((ts) => ({
    labels: (ts.labels ?? []).map((l) => ({ name: l.name, value: l.value })),
    samples: (ts.samples ?? []).map((s) => ({ value: s.value, timestampMs: toNumber(s.timestamp) })),
  }));
  assert.deepEqual(got, SERIES);
});

test('503 twice then 204: three attempts with growing jittered backoff', async () => {
  reset([status(503, 'busy'), status(503, 'busy')]);
  const r = recorder();
  const c = new RemoteWriteClient(settings({ min_backoff: 100, max_backoff: 1000 }), { sleep: r.sleep, random: () => 0.999999 });
  const out = await c.send(SERIES);
  assert.equal(out.ok, true);
  assert.equal(out.attempts, 3);
  assert.equal(received.length, 3);
  assert.deepEqual(r.sleeps, [100, 200]);
});

test('429 with Retry-After: 2 sleeps 2000 ms; an HTTP date is honoured too', async () => {
  reset([status(429, 'slow down', { 'Retry-After': '2' })]);
  const r = recorder();
  const out = await new RemoteWriteClient(settings(), { sleep: r.sleep }).send(SERIES);
  assert.equal(out.ok, true);
  assert.equal(out.attempts, 2);
  assert.deepEqual(r.sleeps, [2000]);
  assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT')), 10_000);
  assert.equal(parseRetryAfter('soon', 0), undefined);
});

test('400 is not retried', async () => {
  reset([status(400, 'bad request')]);
  const r = recorder();
  const out = await new RemoteWriteClient(settings(), { sleep: r.sleep }).send(SERIES);
  assert.deepEqual(strip(out), { status: 400, ok: false, reason: 'http_400', retryable: false, attempts: 1, samples: 3 });
  assert.deepEqual(r.sleeps, []);
});

test('500 "out of order sample" is not retried and says why', async () => {
  reset([status(500, 'out of order sample\n')]);
  const r = recorder();
  const out = await new RemoteWriteClient(settings(), { sleep: r.sleep }).send(SERIES);
  assert.deepEqual(strip(out), { status: 500, ok: false, reason: 'out_of_order', retryable: false, attempts: 1, samples: 3 });
  assert.deepEqual(r.sleeps, []);
});

test('response classification table', () => {
  const c = (s: number, b = '') => {
    const r = classifyResponse(s, b);
    return `${r.retryable ? 'retry' : 'final'}:${r.reason}`;
  };
  assert.equal(c(200), 'final:ok');
  assert.equal(c(500, 'some tsdb hiccup'), 'retry:http_500');
  assert.equal(c(502), 'retry:http_502');
  assert.equal(c(500, 'too old sample'), 'final:too_old');
  assert.equal(c(500, 'out of bounds'), 'final:too_old');
  assert.equal(c(500, 'duplicate sample for timestamp'), 'final:duplicate_timestamp');
  assert.equal(c(500, 'native histograms are disabled'), 'final:native_histograms_disabled');
  assert.equal(c(500, 'empty labelset'), 'final:empty_labelset');
  assert.equal(c(404), 'final:http_404');
  assert.equal(c(429), 'retry:http_429');
});

test('a network error (closed port) is retryable', async () => {
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const r = recorder();
  const c = new RemoteWriteClient(settings({ url: `http://127.0.0.1:${port}/api/v1/write` }), { sleep: r.sleep });
  const out = await c.send(SERIES, { maxAttempts: 2 });
  assert.deepEqual(strip(out), { status: 0, ok: false, reason: 'network', retryable: true, attempts: 2, samples: 3 });
  assert.equal(r.sleeps.length, 1);
});

test('abort while retrying ends the send as "aborted"', async () => {
  reset([status(503), status(503), status(503)]);
  const ac = new AbortController();
  const c = new RemoteWriteClient(settings(), {
    sleep: async () => {
      ac.abort();
    },
  });
  const out = await c.send(SERIES, { signal: ac.signal });
  assert.equal(out.ok, false);
  assert.equal(out.reason, 'aborted');
  assert.equal(out.attempts, 1);
});

test('backoff doubles from min_backoff, caps at max_backoff, jitter keeps it in [50%, 100%)', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 10].map((n) => backoffMs(n, 30, 500, () => 0.999999)), [30, 60, 120, 240, 480, 500, 500]);
  assert.deepEqual([1, 2].map((n) => backoffMs(n, 30, 500, () => 0)), [15, 30]);
});

test('config: defaults, and remote-write reserved headers are refused by name', () => {
  const cfg = loadConfig(aggregatorConfigSchema, { env: {} });
  assert.equal(cfg.job, 'probemesh');
  assert.equal(cfg.http.listen, '0.0.0.0:9116');
  assert.deepEqual(cfg.consumer, { durable: 'pm-aggregator', fetch_batch: 256, max_ack_pending: 10000, ack_wait: 30000, max_buffered_samples: 400000 });
  const defined = (o: object): object => JSON.parse(JSON.stringify(o)) as object;
  assert.deepEqual(defined(cfg.remote_write), [
    {
      url: 'http://127.0.0.1:9090/api/v1/write',
      timeout: 30000,
      headers: {},
      tls: { insecure_skip_verify: false },
      max_samples_per_send: 2000,
      batch_deadline: 1000,
      shards: 4,
      max_buffered_samples: 200000,
      min_backoff: 30,
      max_backoff: 5000,
      native_histograms: 'auto',
    },
  ]);
  assert.throws(() => loadConfig(aggregatorConfigSchema, { text: 'remote_write:\n  - url: http://x/api/v1/write\n    native_histograms: yes\n', env: {} }), /remote_write\[0\]\.native_histograms: expected one of "auto", "always", "never"/);
  assert.throws(() => loadConfig(aggregatorConfigSchema, { text: 'series: { native_histogram_schema: 9 }\n', env: {} }), /series\.native_histogram_schema/);
  assert.equal(cfg.skew_threshold, 1000);
  assert.throws(
    () => loadConfig(aggregatorConfigSchema, { text: 'remote_write:\n  - url: http://x/api/v1/write\n    bearer_token: t\n    basic_auth: { username: u, password: p }\n', env: {} }),
    /remote_write\[0\]\.bearer_token: only one of basic_auth, bearer_token, bearer_token_file may be set/,
  );
  assert.throws(
    () => loadConfig(aggregatorConfigSchema, { text: 'remote_write:\n  - url: https://x/api/v1/write\n    tls: { cert_file: /c.pem }\n', env: {} }),
    /remote_write\[0\]\.tls\.key_file: cert_file and key_file go together/,
  );
  assert.throws(
    () => loadConfig(aggregatorConfigSchema, { text: 'remote_write:\n  - url: http://x/api/v1/write\n    headers: { Content-Type: text/plain, X-Ok: y }\n', env: {} }),
    /remote_write\[0\]\.headers\.Content-Type: header "Content-Type" is set by the remote-write protocol/,
  );
  assert.throws(() => loadConfig(aggregatorConfigSchema, { text: 'remote_write: []\n', env: {} }), /remote_write: needs at least 1 item/);
  assert.throws(() => loadConfig(aggregatorConfigSchema, { text: 'remote_write:\n  - url: ftp://x/\n', env: {} }), /remote_write\[0\]\.url: URL scheme must be http or https/);
  const fromEnv = loadConfig(aggregatorConfigSchema, { env: { PROBEMESH_REMOTE_WRITE: 'http://a:9090/api/v1/write,https://b/api/v1/push' } });
  assert.deepEqual(fromEnv.remote_write.map((r) => r.url), ['http://a:9090/api/v1/write', 'https://b/api/v1/push']);
});
