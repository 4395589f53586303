/** Configuration of a coordinator (`probemesh coordinator --config coordinator.yml`). */
import { hostname } from 'node:os';
import { grpcAuthSchema, grpcTlsSchema } from './grpc-auth';
import { addIssue, duration, httpSchema, Infer, listenAddress, logSchema, natsSchema, num, obj, optional, record, resultsStreamSchema, str, url } from '@probemesh/common';

/** Module names: blackbox_exporter `modules:` keys. */
export const MODULE_NAME_RE = /^[a-zA-Z0-9_.-]+$/;

/** Defaults applied to AddTarget requests that leave a field unset (0 / empty). */
export const targetDefaultsSchema = obj({
  module: str({ default: 'http_2xx', pattern: MODULE_NAME_RE, doc: 'Probe module of targets added without one.' }),
  interval: duration({ default: '15s', minMs: 100, maxMs: 3_600_000, doc: 'Probe interval of targets added without one.' }),
  timeout: duration({ default: '5s', minMs: 1, doc: 'Probe timeout of targets added without one (capped at 80% of the interval).' }),
  replication: num({ int: true, min: 1, max: 10, default: 1, doc: 'Replication factor (distinct probers per target) of targets added without one.' }),
});

/** Parsed `target_defaults:`. */
export type TargetDefaults = Infer<typeof targetDefaultsSchema>;

/** AnalyzeCanary settings (`canary:`): where the judge reads samples. */
export const canarySchema = obj({
  prometheus_url: url({ schemes: ['http', 'https'], default: 'http://127.0.0.1:9090', doc: 'Prometheus (query API) the canary judge reads raw samples from.' }),
  prometheus_headers: record(str(), { default: {}, doc: 'Extra headers of the Prometheus queries (e.g. X-Scope-OrgID).' }),
  query_timeout: duration({ default: '30s', minMs: 1, doc: 'Timeout of one Prometheus query.' }),
  default_window: duration({ default: '5m', minMs: 1000, doc: 'Analysis window when a request leaves window_seconds at 0.' }),
});

/** Parsed `canary:` settings. */
export type CanarySettings = Infer<typeof canarySchema>;

/** The coordinator's configuration schema (snake_case keys, `PROBEMESH_*` env overrides). */
export const coordinatorConfigSchema = obj({
  id: str({ default: hostname(), nonEmpty: true, doc: 'Coordinator id, written into every assignment it issues. Default: the host name.' }),
  nats: natsSchema,
  stream: resultsStreamSchema,
  grpc: obj({
    listen: listenAddress({ default: '0.0.0.0:50051', doc: 'Address of the gRPC AdminService (port 0 picks a free port).' }),
    advertise: optional(str({ nonEmpty: true, doc: 'host:port other coordinators forward admin calls to when this one leads (written into the leader lease). Default: the bound address (wildcard shown as 127.0.0.1).' })),
    tls: optional(grpcTlsSchema),
    auth: grpcAuthSchema,
    client_tls: optional(
      obj({
        ca_file: str({ nonEmpty: true, doc: 'CA of the other coordinators\' server certificates.' }),
        cert_file: optional(str({ doc: 'This coordinator\'s client certificate (its identity must be in grpc.auth.admins of the others).' })),
        key_file: optional(str({ doc: 'Key of the client certificate.' })),
        server_name: optional(str({ doc: 'Name to check the leader\'s certificate against instead of the dialled host.' })),
      }),
    ),
  }),
  http: httpSchema('0.0.0.0:9117'),
  dead_after: duration({ default: '3s', minMs: 10, doc: 'A prober is declared dead after this long without a heartbeat.' }),
  rebalance_delay: duration({ default: '200ms', doc: 'Debounce of placement recomputation after a change.' }),
  target_defaults: targetDefaultsSchema,
  leader: obj({
    lease: duration({ default: '3s', minMs: 100, doc: 'Leader lease (KV pm_leader): a standby takes over when the lease was not renewed for this long.' }),
    renew_every: duration({ default: '1s', minMs: 20, doc: 'How often the leader renews its lease (and standbys check it). Must be below leader.lease.' }),
  }),
  kv_replicas: num({ int: true, min: 1, max: 5, default: 1, doc: 'JetStream replicas of the KV buckets the coordinator creates (3 on a 3-node cluster).' }),
  vnodes_per_capacity: num({ int: true, min: 1, max: 10_000, default: 400, doc: 'Hash-ring virtual nodes per unit of prober capacity (each gives 4 ring points).' }),
  canary: canarySchema,
  log: logSchema,
}, {
  check(v, path, ctx) {
    if (v.leader.renew_every >= v.leader.lease) addIssue(ctx, path ? `${path}.leader.renew_every` : 'leader.renew_every', `must be below leader.lease (${v.leader.lease}ms)`);
  },
});

/** A parsed, frozen coordinator configuration. */
export type CoordinatorConfig = Infer<typeof coordinatorConfigSchema>;
