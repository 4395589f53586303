/** Configuration of a coordinator (`probemesh coordinator --config coordinator.yml`). */
import { hostname } from 'node:os';
import { duration, httpSchema, Infer, listenAddress, logSchema, natsSchema, num, obj, resultsStreamSchema, str } from '@probemesh/common';

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

/** The coordinator's configuration schema (snake_case keys, `PROBEMESH_*` env overrides). */
export const coordinatorConfigSchema = obj({
  id: str({ default: hostname(), nonEmpty: true, doc: 'Coordinator id, written into every assignment it issues. Default: the host name.' }),
  nats: natsSchema,
  stream: resultsStreamSchema,
  grpc: obj({
    listen: listenAddress({ default: '0.0.0.0:50051', doc: 'Address of the gRPC AdminService (port 0 picks a free port).' }),
  }),
  http: httpSchema('0.0.0.0:9117'),
  dead_after: duration({ default: '3s', minMs: 10, doc: 'A prober is declared dead after this long without a heartbeat.' }),
  rebalance_delay: duration({ default: '200ms', doc: 'Debounce of placement recomputation after a change.' }),
  target_defaults: targetDefaultsSchema,
  vnodes_per_capacity: num({ int: true, min: 1, max: 10_000, default: 100, doc: 'Hash-ring virtual nodes per unit of prober capacity.' }),
  log: logSchema,
});

/** A parsed, frozen coordinator configuration. */
export type CoordinatorConfig = Infer<typeof coordinatorConfigSchema>;
