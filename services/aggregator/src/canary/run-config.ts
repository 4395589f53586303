/**
 * Configuration of a continuous canary run (`probemesh canary run --config canary.yml`).
 *
 * ```yaml
 * name: checkout
 * prometheus: { url: http://127.0.0.1:9090 }
 * baseline: '{release="stable"}'
 * canary: '{release="canary"}'
 * interval: 1m
 * looks: 5
 * judge: { thresholds: { pass: 0.05, marginal: 0.1 } }
 * remote_write: { url: http://127.0.0.1:9090/api/v1/write }
 * webhooks: [{ url: http://flagger-loadtester.test/rollback/open }]
 * http: { listen: 127.0.0.1:9118 }
 * ```
 */
import { addIssue, bool, duration, Infer, list, listenAddress, logSchema, num, obj, optional, record, str, url } from '@probemesh/common';
import { judgeConfigSchema } from './config';

/** Default Prometheus base URL of the judge. */
export const DEFAULT_PROMETHEUS_URL = 'http://127.0.0.1:9090';

/** The `prometheus:` block (where samples are read). */
export const prometheusSourceSchema = obj({
  url: url({ schemes: ['http', 'https'], default: DEFAULT_PROMETHEUS_URL, doc: 'Prometheus (or Mimir/Thanos/VictoriaMetrics query API) base URL.' }),
  timeout: duration({ default: '30s', minMs: 1, doc: 'Timeout of one query.' }),
  headers: record(str(), { default: {}, doc: 'Extra request headers (e.g. X-Scope-OrgID).' }),
});

/** The canary run schema. */
export const canaryRunConfigSchema = obj(
  {
    name: str({ nonEmpty: true, pattern: /^[A-Za-z0-9_.:-]+$/, doc: 'Canary name: the `canary` label of the verdict metrics and the Flagger payload name.' }),
    namespace: str({ default: '', doc: 'Namespace sent in the Flagger-style webhook payload.' }),
    prometheus: prometheusSourceSchema,
    baseline: str({ default: '', doc: 'Baseline selector, e.g. {release="stable"} (empty with baseline_days_ago: the canary selector N days earlier).' }),
    canary: str({ nonEmpty: true, doc: 'Canary selector, e.g. {release="canary"}.' }),
    baseline_days_ago: num({ int: true, min: 0, max: 400, default: 0, doc: 'Historical baseline: the same window this many days earlier.' }),
    interval: duration({ default: '1m', minMs: 100, doc: 'Time between looks.' }),
    looks: num({ int: true, min: 1, max: 1000, default: 5, doc: 'Planned looks; the false-FAIL budget is spent over them. Overrides judge.looks.' }),
    window: optional(duration({ minMs: 1000, doc: 'Sliding window per look; default: everything since the run started (cumulative looks).' })),
    stop_on_fail: bool({ default: true, doc: 'Stop the run at the first FAIL (after the webhooks).' }),
    judge: judgeConfigSchema,
    remote_write: optional(
      obj({
        url: url({ schemes: ['http', 'https'], doc: 'remote_write URL for probemesh_canary_* metrics.' }),
        headers: record(str(), { default: {}, doc: 'Extra headers.' }),
        timeout: duration({ default: '10s', minMs: 1, doc: 'Timeout of one request.' }),
      }),
    ),
    webhooks: list(
      obj({
        url: url({ schemes: ['http', 'https'], doc: 'URL POSTed on FAIL.' }),
        headers: record(str(), { default: {}, doc: 'Extra headers.' }),
        timeout: duration({ default: '10s', minMs: 1, doc: 'Timeout of one attempt.' }),
        attempts: num({ int: true, min: 1, max: 10, default: 3, doc: 'Attempts on network errors / 5xx.' }),
      }),
      { default: [], doc: 'Rollback webhooks called on FAIL.' },
    ),
    http: optional(obj({ listen: listenAddress({ default: '127.0.0.1:9118', doc: 'Address of the verdict endpoint (/verdict, /flagger/rollback, /flagger/promote, /metrics).' }) })),
    log: logSchema,
  },
  {
    check(v, path, ctx) {
      if (v.baseline_days_ago === 0 && v.baseline.trim() === '') addIssue(ctx, `${path ? path + '.' : ''}baseline`, 'required unless baseline_days_ago > 0');
    },
  },
);

/** A parsed canary run config. */
export type CanaryRunConfig = Infer<typeof canaryRunConfigSchema>;
