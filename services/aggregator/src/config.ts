/**
 * Aggregator configuration (`probemesh aggregator --config aggregator.yaml`).
 *
 * ```yaml
 * job: probemesh
 * consumer: { durable: pm-aggregator, fetch_batch: 256 }
 * remote_write:
 *   - url: http://prometheus:9090/api/v1/write
 *     headers: { X-Scope-OrgID: edge }
 * ```
 */
import { hostname } from 'node:os';
import {
  addIssue,
  duration,
  httpSchema,
  Infer,
  list,
  logSchema,
  natsSchema,
  num,
  obj,
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

const remoteWriteObject = obj(
  {
    url: url({ schemes: ['http', 'https'], doc: 'remote_write receiver URL (Prometheus: /api/v1/write). Credentials in the URL are sent as basic auth.' }),
    timeout: duration({ default: '30s', minMs: 1, doc: 'Timeout of one HTTP request.' }),
    headers: record(str(), { default: {}, keyPattern: /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, doc: 'Extra HTTP headers (e.g. X-Scope-OrgID, Authorization); remote-write\'s own headers are refused.' }),
    max_samples_per_send: num({ int: true, min: 1, max: 1_000_000, default: 2000, doc: 'Most samples in one request.' }),
    batch_deadline: duration({ default: '1s', minMs: 1, doc: 'Longest time a sample waits for its batch to fill before being sent.' }),
    min_backoff: duration({ default: '30ms', minMs: 1, doc: 'First retry delay (doubled per retry, jittered).' }),
    max_backoff: duration({ default: '5s', minMs: 1, doc: 'Cap of the retry delay (a server\'s Retry-After may ask for longer).' }),
  },
  {
    check(v, path, ctx) {
      for (const k of Object.keys(v.headers)) {
        if ((RESERVED_REMOTE_WRITE_HEADERS as readonly string[]).includes(k.toLowerCase())) {
          addIssue(ctx, `${path}.headers.${k}`, `header ${JSON.stringify(k)} is set by the remote-write protocol and cannot be configured`);
        }
      }
      if (v.min_backoff > v.max_backoff) addIssue(ctx, `${path}.min_backoff`, `must not exceed max_backoff (${v.max_backoff}ms)`);
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

function defaultRemoteWrite(): RemoteWriteSettings {
  const parsed = remoteWriteObject.parse({ url: DEFAULT_REMOTE_WRITE_URL }, '', { issues: [], envSources: new Map() });
  if (!parsed) throw new Error('default remote_write settings do not parse');
  return parsed;
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
    durable: str({ default: 'pm-aggregator', pattern: /^[A-Za-z0-9_-]+$/, doc: 'Durable pull consumer shared by all aggregators.' }),
    fetch_batch: num({ int: true, min: 1, max: 10_000, default: 256, doc: 'Messages asked for in one pull request.' }),
    max_ack_pending: num({ int: true, min: 1, default: 10_000, doc: 'Most delivered-but-unacknowledged messages over all aggregators.' }),
    ack_wait: duration({ default: '60s', minMs: 1000, doc: 'Redelivery delay of an unacknowledged message (kept alive while a send is retried).' }),
  }),
  remote_write: list(remoteWriteSchema, { minItems: 1, default: [defaultRemoteWrite()], doc: 'remote_write endpoints; every batch is written to each.' }),
  log: logSchema,
});

/** Parsed aggregator configuration. */
export type AggregatorConfig = Infer<typeof aggregatorConfigSchema>;
