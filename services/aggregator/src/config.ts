/**
 * Aggregator configuration (`probemesh aggregator --config aggregator.yaml`).
 *
 * ```yaml
 * job: probemesh
 * consumer: { durable: pm-aggregator, fetch_batch: 256, ack_wait: 30s }
 * remote_write:
 *   - name: central-a
 *     url: https://prom-a:9090/api/v1/write
 *     tls: { ca_file: /etc/probemesh/ca.pem, cert_file: /etc/probemesh/agg.pem, key_file: /etc/probemesh/agg.key }
 *     basic_auth: { username: probemesh, password_file: /etc/probemesh/rw-password }
 *     headers: { X-Scope-OrgID: edge }
 *   - name: central-b
 *     url: https://prom-b:9090/api/v1/write
 *     bearer_token_file: /etc/probemesh/rw-token
 *     native_histograms: never   # auto (default) | always | never
 * ```
 */
import { hostname } from 'node:os';
import {
  addIssue,
  bool,
  duration,
  httpSchema,
  Infer,
  list,
  logSchema,
  natsSchema,
  num,
  obj,
  optional,
  ParseContext,
  record,
  resultsStreamSchema,
  Schema,
  str,
  url,
} from '@probemesh/common';

/** Headers the remote-write protocol sets itself; configuring them is an error. */
export const RESERVED_REMOTE_WRITE_HEADERS = ['content-encoding', 'content-type', 'x-prometheus-remote-write-version', 'user-agent'] as const;

/** Default remote_write URL: a local Prometheus with `--web.enable-remote-write-receiver`. */
export const DEFAULT_REMOTE_WRITE_URL = 'http://127.0.0.1:9090/api/v1/write';

const tlsSchema = obj({
  ca_file: optional(str({ nonEmpty: true, doc: 'CA certificate(s) (PEM) to verify the server with, instead of the system roots.' })),
  cert_file: optional(str({ nonEmpty: true, doc: 'Client certificate (PEM) for mTLS; needs key_file.' })),
  key_file: optional(str({ nonEmpty: true, doc: 'Client private key (PEM) for mTLS; needs cert_file.' })),
  server_name: optional(str({ nonEmpty: true, doc: 'Server name to verify (and send as SNI) instead of the URL host.' })),
  insecure_skip_verify: bool({ default: false, doc: 'Do not verify the server certificate (tests only).' }),
});

const basicAuthSchema = obj({
  username: str({ nonEmpty: true, doc: 'Basic auth user name.' }),
  password: optional(str({ doc: 'Basic auth password (never logged).' })),
  password_file: optional(str({ nonEmpty: true, doc: 'File holding the password (read at start; trailing newline trimmed).' })),
});

const remoteWriteObject = obj(
  {
    url: url({ schemes: ['http', 'https'], doc: 'remote_write receiver URL (Prometheus: /api/v1/write). Credentials in the URL are sent as basic auth.' }),
    name: optional(str({ pattern: /^[A-Za-z0-9_.:-]+$/, doc: 'Endpoint name: the `endpoint` label of the aggregator metrics (default: the URL without credentials).' })),
    timeout: duration({ default: '30s', minMs: 1, doc: 'Timeout of one HTTP request.' }),
    headers: record(str(), { default: {}, keyPattern: /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, doc: 'Extra HTTP headers (e.g. X-Scope-OrgID); remote-write\'s own headers are refused.' }),
    tls: tlsSchema,
    basic_auth: optional(basicAuthSchema),
    bearer_token: optional(str({ nonEmpty: true, doc: 'Bearer token sent as `Authorization: Bearer …` (never logged).' })),
    bearer_token_file: optional(str({ nonEmpty: true, doc: 'File holding the bearer token (read at start).' })),
    max_samples_per_send: num({ int: true, min: 1, max: 1_000_000, default: 2000, doc: 'Most samples in one request.' }),
    batch_deadline: duration({ default: '1s', minMs: 1, doc: 'Longest time a sample waits for its batch to fill before being sent.' }),
    shards: num({ int: true, min: 1, max: 256, default: 4, doc: 'Parallel sending shards; a series always goes through the same shard, so it stays in order.' }),
    max_buffered_samples: num({ int: true, min: 1, default: 200_000, doc: 'Most samples queued for this endpoint; when full, the aggregator stops pulling (results wait in JetStream), so a slow endpoint holds back the others by at most this much.' }),
    min_backoff: duration({ default: '30ms', minMs: 1, doc: 'First retry delay (doubled per retry, jittered).' }),
    max_backoff: duration({ default: '5s', minMs: 1, doc: 'Cap of the retry delay (a server\'s Retry-After may ask for longer).' }),
    native_histograms: str({
      oneOf: ['auto', 'always', 'never'],
      default: 'auto',
      doc: 'Native histogram samples (probemesh_probe_duration_seconds) for this endpoint: `auto` sends them until the receiver answers "native histograms are disabled" (Prometheus without --enable-feature=native-histograms), then stops for this endpoint (logged once; the classic samples of the refused request are resent); `always` keeps sending them (each refusal drops and counts them and resends the rest); `never` does not send them. Classic `_bucket`/`_sum`/`_count` series are always written.',
    }) as Schema<'auto' | 'always' | 'never'>,
  },
  {
    check(v, path, ctx) {
      for (const k of Object.keys(v.headers)) {
        if ((RESERVED_REMOTE_WRITE_HEADERS as readonly string[]).includes(k.toLowerCase())) {
          addIssue(ctx, `${path}.headers.${k}`, `header ${JSON.stringify(k)} is set by the remote-write protocol and cannot be configured`);
        }
      }
      if (v.min_backoff > v.max_backoff) addIssue(ctx, `${path}.min_backoff`, `must not exceed max_backoff (${v.max_backoff}ms)`);
      if (!!v.tls.cert_file !== !!v.tls.key_file) addIssue(ctx, `${path}.tls.${v.tls.cert_file ? 'key_file' : 'cert_file'}`, 'cert_file and key_file go together (mTLS)');
      if (v.basic_auth && (v.basic_auth.password === undefined) === (v.basic_auth.password_file === undefined)) {
        addIssue(ctx, `${path}.basic_auth.password`, 'set exactly one of password and password_file');
      }
      const auths = [v.basic_auth && 'basic_auth', v.bearer_token && 'bearer_token', v.bearer_token_file && 'bearer_token_file'].filter(Boolean);
      if (auths.length > 1) addIssue(ctx, `${path}.${auths[1]}`, `only one of basic_auth, bearer_token, bearer_token_file may be set (also ${auths[0]})`);
      if (auths.length > 0 && Object.keys(v.headers).some((h) => h.toLowerCase() === 'authorization')) {
        addIssue(ctx, `${path}.headers.Authorization`, `conflicts with ${auths[0]}`);
      }
      if (v.shards * v.max_samples_per_send > v.max_buffered_samples) {
        addIssue(ctx, `${path}.max_buffered_samples`, `must be at least shards × max_samples_per_send (${v.shards * v.max_samples_per_send})`);
      }
    },
  },
);

/** Parsed settings of one remote_write endpoint (durations in ms). */
export type RemoteWriteSettings = Infer<typeof remoteWriteObject>;

/**
 * One remote_write endpoint. A bare string is accepted as `{url: <string>}`, so the
 * env override `PROBEMESH_REMOTE_WRITE=http://a/api/v1/write,http://b/api/v1/write` works.
 */
const remoteWriteSchema: Schema<RemoteWriteSettings> = {
  ...remoteWriteObject,
  expected: 'a remote_write mapping (or URL string)',
  parse(v: unknown, path: string, ctx: ParseContext) {
    return remoteWriteObject.parse(typeof v === 'string' ? { url: v } : v, path, ctx);
  },
};

/** Settings of one endpoint at `url` with every default applied, overridden by `over` (tests, tools). */
export function remoteWriteSettings(url: string, over: Partial<RemoteWriteSettings> = {}): RemoteWriteSettings {
  const ctx: ParseContext = { issues: [], envSources: new Map() };
  const parsed = remoteWriteObject.parse({ url }, '', ctx);
  if (!parsed) throw new Error(`remote_write settings for ${url} do not parse: ${JSON.stringify(ctx.issues)}`);
  return { ...parsed, ...over };
}

function defaultRemoteWrite(): RemoteWriteSettings {
  return remoteWriteSettings(DEFAULT_REMOTE_WRITE_URL);
}

/** The aggregator's config schema. */
export const aggregatorConfigSchema = obj({
  /** Aggregator id (logs, NATS connection name). @default os.hostname() */
  id: str({ default: hostname(), nonEmpty: true, doc: 'Aggregator id (default: host name).' }),
  nats: natsSchema,
  stream: resultsStreamSchema,
  http: httpSchema('0.0.0.0:9116'),
  /** `job` label of every written series. @default "probemesh" */
  job: str({ default: 'probemesh', nonEmpty: true, doc: 'Value of the `job` label of every written series.' }),
  consumer: obj({
    durable: str({ default: 'pm-aggregator', pattern: /^[A-Za-z0-9_-]+$/, doc: 'Prefix of the durable pull consumers (one per prober subject, `<durable>-<hash>`), shared by all aggregators.' }),
    fetch_batch: num({ int: true, min: 1, max: 10_000, default: 256, doc: 'Messages asked for in one pull request.' }),
    max_ack_pending: num({ int: true, min: 1, default: 10_000, doc: 'Most delivered-but-unacknowledged messages over all aggregators.' }),
    ack_wait: duration({ default: '30s', minMs: 1000, doc: 'Redelivery delay of an unacknowledged message (kept alive while a send is retried); also how long a new owner of a prober waits for a dead owner\'s messages.' }),
    max_buffered_samples: num({ int: true, min: 1, default: 400_000, doc: 'Most samples held in memory over all endpoints\' queues before pulling pauses.' }),
  }),
  ownership: obj({
    heartbeat_interval: duration({ default: '1s', minMs: 50, doc: 'How often this aggregator announces itself to the others.' }),
    dead_after: duration({ default: '3s', minMs: 100, doc: 'An aggregator silent this long is dead: its probers move to the others.' }),
    discovery_interval: duration({ default: '5s', minMs: 100, doc: 'How often the stream is scanned for prober subjects with results.' }),
  }),
  series: obj({
    histogram_buckets: list(num({ min: 0 }), { default: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], doc: 'Upper bounds (seconds) of probemesh_probe_duration_seconds buckets.' }),
    jitter_window: num({ int: true, min: 2, max: 10_000, default: 30, doc: 'probemesh_probe_jitter_seconds = standard deviation of the last N probe durations of a series.' }),
    max_series: num({ int: true, min: 100, default: 1_000_000, doc: 'Most series kept (labels encoded once, histogram/jitter state); beyond it the oldest-created are forgotten, logged once. An HTTP result makes 30–45 series per target and prober (10,000 targets ≈ 300,000–450,000).' }),
    native_histogram_schema: num({ int: true, min: -4, max: 8, default: 3, doc: 'Schema of the native duration histogram: bucket boundaries are powers of 2^(2^-schema) (3: each bucket ~9 % wider than the previous, like client_golang\'s bucket factor 1.1). Lowered per series when it needs more than native_histogram_max_buckets buckets.' }),
    native_histogram_max_buckets: num({ int: true, min: 1, max: 10_000, default: 160, doc: 'Most populated buckets of one native histogram series before its schema is lowered (buckets merged pairwise).' }),
    native_histogram_zero_threshold: num({ min: 0, default: 2.938735877055719e-39, doc: 'Width of the native histogram zero bucket, seconds (durations at or below it are counted there).' }),
    stale_markers: bool({ default: true, doc: 'Write stale markers when a target is removed or moves away from a prober (watches KV pm_targets and pm_assignments).' }),
  }),
  skew_threshold: duration({ default: '1s', minMs: 1, doc: 'Warn (rate-limited) when a prober\'s batch send time differs from the NATS arrival time by more than this.' }),
  remote_write: list(remoteWriteSchema, { minItems: 1, default: [defaultRemoteWrite()], doc: 'remote_write endpoints; every batch is written to each.' }),
  log: logSchema,
});

/** Parsed aggregator configuration. */
export type AggregatorConfig = Infer<typeof aggregatorConfigSchema>;
