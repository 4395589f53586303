/**
 * NATS helpers: connection from config, the JetStream resources probemesh uses, and
 * their names (the contract in DESIGN.md).
 */
import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, DiscardPolicy, JetStreamManager, KV, NatsConnection, nanos, RetentionPolicy, StorageType, StreamConfig } from 'nats';
import { ErrorCodes, ProbemeshError } from './errors';
import { Logger } from './log';
import { duration, Infer, list, num, obj, optional, str } from './schema';

/** KV bucket of targets (key = target id, value = probemesh.v1.Target). */
export const KV_TARGETS = 'pm_targets';
/** KV bucket of prober registrations (key = prober id, value = probemesh.v1.Heartbeat). */
export const KV_PROBERS = 'pm_probers';
/** KV bucket of assignments (key = prober id, value = probemesh.v1.Assignment). */
export const KV_ASSIGNMENTS = 'pm_assignments';
/** KV bucket holding the coordinator leader lease. */
export const KV_LEADER = 'pm_leader';
/** JetStream stream of result batches. */
export const STREAM_RESULTS = 'PM_RESULTS';
/** Subjects of result batches: `pm.results.<prober>`. */
export const SUBJECT_RESULTS = 'pm.results';
/** Subjects of heartbeats: `pm.heartbeat.<prober>`. */
export const SUBJECT_HEARTBEAT = 'pm.heartbeat';

/** Returns `pm.results.<prober>`. */
export function resultsSubject(prober: string): string {
  return `${SUBJECT_RESULTS}.${prober}`;
}
/** Returns `pm.heartbeat.<prober>`. */
export function heartbeatSubject(prober: string): string {
  return `${SUBJECT_HEARTBEAT}.${prober}`;
}

/** NATS connection settings (`nats:` in every service config). */
export const natsSchema = obj({
  servers: list(str({ nonEmpty: true }), { default: ['nats://127.0.0.1:4222'], minItems: 1, doc: 'NATS server URLs (comma-separated in the env override).' }),
  connect_timeout: duration({ default: '5s', doc: 'Timeout of each connection attempt.' }),
  user: optional(str({ doc: 'User name for NATS authentication.' })),
  password: optional(str({ doc: 'Password for NATS authentication (never logged).' })),
  password_file: optional(str({ doc: 'File holding the NATS password (instead of password).' })),
  creds_file: optional(str({ doc: 'NATS credentials file (JWT + NKey seed) for decentralized auth.' })),
  tls: optional(
    obj({
      ca_file: optional(str({ doc: 'CA bundle the server certificate must chain to.' })),
      cert_file: optional(str({ doc: 'Client certificate (PEM) for mutual TLS.' })),
      key_file: optional(str({ doc: 'Client key (PEM), never logged.' })),
    }),
  ),
});

/** Parsed `nats:` settings. */
export type NatsSettings = Infer<typeof natsSchema>;

/** Settings of the `PM_RESULTS` stream (`stream:` in the aggregator/coordinator config). */
export const resultsStreamFields = {
  max_age: duration({ default: '24h', doc: 'How long unacknowledged and acknowledged results are kept.' }),
  max_bytes: num({ int: true, min: -1, default: 1024 * 1024 * 1024, doc: 'Byte limit of the stream (-1 = unlimited).' }),
  replicas: num({ int: true, min: 1, max: 5, default: 1, doc: 'JetStream replicas of the stream (3 on a 3-node cluster).' }),
};
export const resultsStreamSchema = obj(resultsStreamFields);

/** Parsed `stream:` settings. */
export type ResultsStreamSettings = Infer<typeof resultsStreamSchema>;

/**
 * Connects to NATS, retrying the first connection until `opts.waitMs` has passed, and
 * reconnecting forever afterwards. Logs disconnects and reconnects.
 */
export async function connectNats(settings: NatsSettings, name: string, log: Logger, opts: { waitMs?: number } = {}): Promise<NatsConnection> {
  const deadline = Date.now() + (opts.waitMs ?? 30_000);
  let lastErr: unknown;
  const secret = (file: string, what: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new ProbemeshError(ErrorCodes.CONFIG_INVALID, `nats.${what}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
  };
  const password = settings.password ?? (settings.password_file ? secret(settings.password_file, 'password_file').trim() : undefined);
  const authenticator = settings.creds_file ? credsAuthenticator(new TextEncoder().encode(secret(settings.creds_file, 'creds_file'))) : undefined;
  const tls = settings.tls ? { caFile: settings.tls.ca_file, certFile: settings.tls.cert_file, keyFile: settings.tls.key_file } : undefined;
  for (;;) {
    try {
      const nc = await connect({
        servers: settings.servers,
        name,
        timeout: settings.connect_timeout,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        reconnectJitter: 100,
        pingInterval: 5_000,
        user: settings.user,
        pass: password,
        authenticator,
        tls,
      });
      void (async () => {
        for await (const s of nc.status()) {
          if (s.type === 'disconnect' || s.type === 'reconnect') log.warn({ nats: s.type, server: String(s.data) }, `nats ${s.type}`);
        }
      })();
      return nc;
    } catch (err) {
      lastErr = err;
      // Bad credentials or TLS will not fix themselves: fail at once.
      if (/AUTHORIZATION_VIOLATION|AUTHENTICATION|certificate|TLS/i.test(`${(err as { code?: string }).code ?? ''} ${(err as Error).message}`)) break;
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new ProbemeshError(ErrorCodes.NATS_UNAVAILABLE, `cannot connect to NATS at ${settings.servers.join(', ')}: ${(lastErr as Error)?.message ?? lastErr}`, { cause: lastErr });
}

/** What {@link ensureResultsStream} did. */
export interface EnsureStreamOutcome {
  /** The stream did not exist and was created with these settings. */
  created: boolean;
  /** Its limits were changed to these settings. */
  updated: boolean;
  /** It exists with other limits and was left as is (`updateLimits: false`). */
  differs?: { max_age_ns: number; max_bytes: number };
}

/**
 * Creates the `PM_RESULTS` stream, or (with `updateLimits`, the default) updates its limits
 * if it exists. Only the services that own the stream's limits update them — coordinator
 * and aggregator; a prober only creates the stream when it is missing, so a prober with
 * default settings never shrinks limits an operator set (with discard-old, a smaller
 * `max_bytes` would throw away results not yet written).
 */
export async function ensureResultsStream(jsm: JetStreamManager, s: ResultsStreamSettings, opts: { updateLimits?: boolean } = {}): Promise<EnsureStreamOutcome> {
  const cfg: Partial<StreamConfig> = {
    name: STREAM_RESULTS,
    subjects: [`${SUBJECT_RESULTS}.>`],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    max_age: nanos(s.max_age),
    max_bytes: s.max_bytes,
    num_replicas: s.replicas,
    duplicate_window: nanos(120_000),
  };
  try {
    const info = await jsm.streams.info(STREAM_RESULTS);
    const c = info.config;
    if (c.max_age === cfg.max_age && c.max_bytes === cfg.max_bytes) return { created: false, updated: false };
    if (opts.updateLimits === false) return { created: false, updated: false, differs: { max_age_ns: c.max_age, max_bytes: c.max_bytes } };
    await jsm.streams.update(STREAM_RESULTS, { ...c, max_age: cfg.max_age!, max_bytes: cfg.max_bytes! });
    return { created: false, updated: true };
  } catch (err) {
    if (!/stream not found/i.test(String((err as Error).message))) throw err;
    try {
      await jsm.streams.add(cfg);
      return { created: true, updated: false };
    } catch (e) {
      // Another service created it between our info and add.
      if (!/already in use|exists/i.test(String((e as Error).message))) throw e;
      return { created: false, updated: false };
    }
  }
}

/** Opens (creating if needed) a KV bucket with `history` revisions per key. */
export async function openKv(nc: NatsConnection, bucket: string, opts: { history?: number; replicas?: number; ttlMs?: number } = {}): Promise<KV> {
  const js = nc.jetstream();
  return js.views.kv(bucket, { history: opts.history ?? 1, replicas: opts.replicas ?? 1, ttl: opts.ttlMs ?? 0 });
}
