/**
 * The judge configuration: a JSON (or YAML) document compatible with the useful subset
 * of Kayenta's canary config (`metrics[].analysisConfigurations.canary.{direction,
 * critical, effectSize}`, `groups`, `classifier.groupWeights`, score thresholds) plus
 * what Kayenta lacks: absolute SLOs, tail quantiles, the false-fail budget and the
 * number of planned looks. See docs/CANARY.md for every key.
 */
import { addIssue, bool, Infer, InvalidArgumentError, list, num, obj, optional, ParseContext, record, Schema, str } from '@probemesh/common';
import { parseSelector } from './selector';

/** Which change of a metric is bad. */
export type Direction = 'increase' | 'decrease' | 'either';
/** What a metric's samples are: latencies (seconds, compared as ratios) or probe outcomes (0/1). */
export type MetricKind = 'latency' | 'error_rate';

/** Metric names the judge knows without a `query` (alias → selector, kind). */
export const KNOWN_METRICS: Readonly<Record<string, { query: string; kind: MetricKind }>> = {
  latency: { query: 'probe_duration_seconds', kind: 'latency' },
  errors: { query: 'probe_success', kind: 'error_rate' },
  probe_duration_seconds: { query: 'probe_duration_seconds', kind: 'latency' },
  probe_success: { query: 'probe_success', kind: 'error_rate' },
  phase_resolve: { query: 'probe_http_duration_seconds{phase="resolve"}', kind: 'latency' },
  phase_connect: { query: 'probe_http_duration_seconds{phase="connect"}', kind: 'latency' },
  phase_tls: { query: 'probe_http_duration_seconds{phase="tls"}', kind: 'latency' },
  phase_processing: { query: 'probe_http_duration_seconds{phase="processing"}', kind: 'latency' },
  phase_transfer: { query: 'probe_http_duration_seconds{phase="transfer"}', kind: 'latency' },
  probe_tcp_kernel_connect_seconds: { query: 'probe_tcp_kernel_connect_seconds', kind: 'latency' },
  probe_tcp_kernel_first_byte_seconds: { query: 'probe_tcp_kernel_first_byte_seconds', kind: 'latency' },
  probe_tcp_srtt_seconds: { query: 'probe_tcp_srtt_seconds', kind: 'latency' },
  probe_dns_lookup_time_seconds: { query: 'probe_dns_lookup_time_seconds', kind: 'latency' },
  probe_icmp_duration_seconds: { query: 'probe_icmp_duration_seconds{phase="rtt"}', kind: 'latency' },
};

const thresholdsSchema = obj({
  pass: num({ min: 0, doc: 'Pass threshold: relative growth (< 1, e.g. 0.05 = +5 %) or a score (1..100).' }),
  marginal: num({ min: 0, doc: 'Marginal threshold: relative growth (< 1) or a score (1..100).' }),
});
const toleranceSchema = obj(
  {
    pass: num({ min: 0, max: 0.999, doc: 'Largest relative growth (absolute for error rates) still classified PASS.' }),
    marginal: num({ min: 0, max: 0.999, doc: 'Largest growth still classified MARGINAL; above it the metric FAILs.' }),
  },
  { check: (v, path, ctx) => (v.pass > v.marginal ? addIssue(ctx, path, `out of order: pass (${v.pass}) must be <= marginal (${v.marginal})`) : undefined) },
);
const sloSchema = obj({
  quantile: num({ min: 0.5, max: 0.9999, doc: 'Quantile of the canary latency, e.g. 0.95.' }),
  max_seconds: num({ min: 0, doc: 'Largest allowed value of that quantile, seconds.' }),
});
const quantileList = list(num({ min: 0.5, max: 0.9999 }));

const effectSizeSchema = obj({
  allowedIncrease: optional(num({ min: 1, doc: 'Kayenta: canary/baseline ratio still PASS (1.05 = +5 %).' })),
  criticalIncrease: optional(num({ min: 1, doc: 'Kayenta: ratio above which the metric FAILs.' })),
  allowedDecrease: optional(num({ min: 0, max: 1, doc: 'Kayenta: ratio (≤ 1) still PASS for decreases.' })),
  criticalDecrease: optional(num({ min: 0, max: 1, doc: 'Kayenta: ratio below which the metric FAILs.' })),
});

const metricSchema = obj(
  {
    name: str({ nonEmpty: true, doc: 'Metric name: a known alias/metric (see KNOWN_METRICS) or any label when `query` is given.' }),
    query: optional(str({ nonEmpty: true, doc: 'PromQL selector of the series, e.g. `probe_http_duration_seconds{phase="processing"}`; the arm selector is added.' })),
    kind: optional(str({ oneOf: ['latency', 'error_rate'], doc: 'latency (default) or error_rate (0/1 samples, 0 = failure).' })),
    scope: optional(str({ doc: 'Kayenta scope name (informational).' })),
    scopeName: optional(str({ doc: 'Kayenta scope name (informational).' })),
    groups: list(str({ nonEmpty: true }), { default: [], doc: 'Kayenta groups (score weights).' }),
    weight: optional(num({ min: 0, doc: 'Weight within its group. @default 1' })),
    direction: optional(str({ oneOf: ['increase', 'decrease', 'either'], doc: 'Shorthand of analysisConfigurations.canary.direction.' })),
    critical: optional(bool({ doc: 'Shorthand of analysisConfigurations.canary.critical.' })),
    analysisConfigurations: optional(
      obj({
        canary: optional(
          obj({
            direction: optional(str({ oneOf: ['increase', 'decrease', 'either'] })),
            critical: optional(bool()),
            mustHaveData: optional(bool({ doc: 'Kayenta: no data fails the metric instead of INSUFFICIENT_DATA.' })),
            effectSize: optional(effectSizeSchema),
          }),
        ),
      }),
    ),
    thresholds: optional(toleranceSchema),
    tails: optional(quantileList),
    slos: optional(list(sloSchema)),
  },
  {
    check(m, path, ctx) {
      if (m.query === undefined && !(m.name in KNOWN_METRICS)) {
        addIssue(ctx, `${path}.name`, `unknown metric ${JSON.stringify(m.name)} (known: ${Object.keys(KNOWN_METRICS).join(', ')}; give a \`query\` to use another series)`);
      }
      if (m.query !== undefined) checkSelector(m.query, `${path}.query`, ctx, true);
      const cc = m.analysisConfigurations?.canary;
      if (m.direction !== undefined && cc?.direction !== undefined && m.direction !== cc.direction) addIssue(ctx, `${path}.direction`, 'conflicts with analysisConfigurations.canary.direction');
      const es = cc?.effectSize;
      if (es?.allowedIncrease !== undefined && es.criticalIncrease !== undefined && es.allowedIncrease > es.criticalIncrease) {
        addIssue(ctx, `${path}.analysisConfigurations.canary.effectSize`, `out of order: allowedIncrease (${es.allowedIncrease}) must be <= criticalIncrease (${es.criticalIncrease})`);
      }
    },
  },
);

function checkSelector(text: string, path: string, ctx: ParseContext, needMetric: boolean): void {
  try {
    const s = parseSelector(text, path);
    if (needMetric && s.metric === undefined) addIssue(ctx, path, `must name a metric, e.g. probe_duration_seconds${text.trim()}`);
  } catch (err) {
    addIssue(ctx, path, (err as Error).message.replace(`${path}: `, ''));
  }
}

/** The judge config schema (unknown keys rejected with their path). */
export const judgeConfigSchema = obj(
  {
    name: optional(str({ doc: 'Config name (Kayenta; informational).' })),
    description: optional(str({ doc: 'Description (informational).' })),
    configVersion: optional(str({ doc: 'Kayenta config version (informational).' })),
    applications: optional(list(str(), { doc: 'Kayenta applications (informational).' })),
    metrics: list(metricSchema, { default: [], doc: 'Metrics to compare; default: latency (critical, p95/p99 tails) and errors (critical).' }),
    classifier: obj({
      groupWeights: record(num({ min: 0 }), { default: {}, doc: 'Kayenta group weights (relative).' }),
      scoreThresholds: optional(thresholdsSchema),
    }),
    thresholds: optional(thresholdsSchema),
    slos: list(sloSchema, { default: [], doc: 'Absolute SLOs on the canary latency, e.g. [{quantile: 0.99, max_seconds: 0.5}].' }),
    tails: optional(quantileList),
    alpha: num({ min: 1e-6, max: 0.2, default: 0.005, doc: 'False-FAIL budget of the whole run (all looks, all metrics).' }),
    looks: num({ int: true, min: 1, max: 1000, default: 1, doc: 'Planned looks (analyses) of the run; alpha is spent over them.' }),
    min_samples: num({ int: true, min: 5, default: 30, doc: 'Fewest samples per arm for any comparison.' }),
    tail_power: num({ min: 0.5, max: 0.999, default: 0.8, doc: 'Power a tail test must have to be evaluated.' }),
    tail_detectable_ratio: num({ min: 1.1, max: 100, default: 2, doc: 'Growth of the tail exceedance rate that tail_power refers to.' }),
    min_tail_observations: num({ int: true, min: 1, default: 10, doc: 'Fewest samples above a tail quantile per arm.' }),
    attribution: bool({ default: true, doc: 'Attribute a latency regression to network / TLS / server processing / transfer.' }),
  },
  {
    check(c, path, ctx) {
      const p = (k: string) => (path ? `${path}.${k}` : k);
      const checkPair = (t: { pass: number; marginal: number }, at: string) => {
        const rel = t.pass < 1 && t.marginal < 1;
        const score = t.pass >= 1 && t.marginal >= 1;
        if (!rel && !score) return addIssue(ctx, at, `pass (${t.pass}) and marginal (${t.marginal}) must both be relative growth (< 1, e.g. 0.05 = +5 %) or both scores (1..100)`);
        if (rel && t.pass > t.marginal) return addIssue(ctx, at, `out of order: relative growth pass (${t.pass}) must be <= marginal (${t.marginal})`);
        if (score && (t.pass > 100 || t.marginal > 100)) return addIssue(ctx, at, 'scores must be <= 100');
        if (score && t.pass < t.marginal) return addIssue(ctx, at, `out of order: score pass (${t.pass}) must be >= marginal (${t.marginal})`);
        return undefined;
      };
      if (c.thresholds) checkPair(c.thresholds, p('thresholds'));
      if (c.classifier.scoreThresholds) {
        checkPair(c.classifier.scoreThresholds, p('classifier.scoreThresholds'));
        if (c.classifier.scoreThresholds.pass < 1) addIssue(ctx, p('classifier.scoreThresholds'), 'scores are 1..100');
      }
      const names = new Set<string>();
      const groups = new Set<string>();
      c.metrics.forEach((m, i) => {
        if (names.has(m.name)) addIssue(ctx, p(`metrics[${i}].name`), `duplicate metric name ${JSON.stringify(m.name)}`);
        names.add(m.name);
        for (const g of m.groups) groups.add(g);
      });
      for (const g of Object.keys(c.classifier.groupWeights)) {
        if (!groups.has(g)) addIssue(ctx, p(`classifier.groupWeights.${g}`), `no metric is in group ${JSON.stringify(g)}`);
      }
    },
  },
);

/** The judge config as written (validated). */
export type JudgeConfigInput = Infer<typeof judgeConfigSchema>;

/** One metric, resolved. */
export interface MetricSpec {
  /** Name in the verdict. */
  name: string;
  /** Prometheus metric name. */
  metric: string;
  /** The metric's own matchers (e.g. phase="tls"), added to the arm selector. */
  matchers: string[];
  /** latency or error_rate. */
  kind: MetricKind;
  /** Which change is bad. */
  direction: Direction;
  /** A FAIL of this metric fails the run by itself. */
  critical: boolean;
  /** No data FAILs the metric (Kayenta mustHaveData) instead of INSUFFICIENT_DATA. */
  mustHaveData: boolean;
  /** Groups (for the score). */
  groups: string[];
  /** Weight within each group. */
  weight: number;
  /** Largest growth still PASS (relative for latency, absolute failure-rate points for error_rate). */
  passTolerance: number;
  /** Largest growth still MARGINAL. */
  marginalTolerance: number;
  /** Tail quantiles compared (latency). */
  tails: number[];
  /** Absolute SLOs on the canary arm (latency). */
  slos: { quantile: number; max_seconds: number }[];
  /** Failed probes count as +Infinity latency (probe_duration_seconds). */
  failuresAsInfinity: boolean;
}

/** The judge config, resolved with defaults. */
export interface JudgeConfig {
  /** Metrics compared. */
  metrics: MetricSpec[];
  /** Group weights (missing groups weigh 1). */
  groupWeights: Record<string, number>;
  /** Score thresholds (0..100): below `marginal` FAIL, below `pass` MARGINAL. */
  scoreThresholds: { pass: number; marginal: number };
  /** Whole-run false-FAIL budget. */
  alpha: number;
  /** Planned looks. */
  looks: number;
  /** Fewest samples per arm. */
  minSamples: number;
  /** Tail test power requirement. */
  tailPower: number;
  /** Tail exceedance growth the power refers to. */
  tailDetectableRatio: number;
  /** Fewest tail observations per arm. */
  minTailObservations: number;
  /** Compute attribution. */
  attribution: boolean;
}

/** Default relative tolerances of latency metrics: +2 % PASS, +5 % MARGINAL. */
export const DEFAULT_LATENCY_TOLERANCE = { pass: 0.02, marginal: 0.05 } as const;
/** Default absolute tolerances of error rates: +0.1 pp PASS, +1 pp MARGINAL. */
export const DEFAULT_ERROR_TOLERANCE = { pass: 0.001, marginal: 0.01 } as const;
/** Default score thresholds (Kayenta/Spinnaker's usual 95 / 75). */
export const DEFAULT_SCORE_THRESHOLDS = { pass: 95, marginal: 75 } as const;
/** Default tails of latency metrics. */
export const DEFAULT_TAILS: readonly number[] = [0.95, 0.99];

/** Resolves a validated config: defaults, aliases, Kayenta shapes, threshold interpretation. */
export function resolveJudgeConfig(c: JudgeConfigInput): JudgeConfig {
  const globalRel = c.thresholds && c.thresholds.pass < 1 ? c.thresholds : undefined;
  const globalScore = c.thresholds && c.thresholds.pass >= 1 ? c.thresholds : undefined;
  const inputs = c.metrics.length > 0 ? c.metrics : [{ name: 'latency', critical: true, groups: [] as string[] }, { name: 'errors', critical: true, groups: [] as string[] }];
  const firstLatency = inputs.findIndex((m) => (KNOWN_METRICS[m.name]?.query ?? (m as { query?: string }).query ?? '').startsWith('probe_duration_seconds'));
  const metrics = inputs.map((m0, i): MetricSpec => {
    const m = m0 as Partial<JudgeConfigInput['metrics'][number]> & { name: string; groups: string[] };
    const known = KNOWN_METRICS[m.name];
    const sel = parseSelector(m.query ?? known!.query, `metrics[${i}].query`);
    const kind: MetricKind = (m.kind as MetricKind | undefined) ?? (m.query === undefined ? known!.kind : sel.metric === 'probe_success' ? 'error_rate' : 'latency');
    const cc = m.analysisConfigurations?.canary;
    const direction = (m.direction ?? cc?.direction ?? 'increase') as Direction;
    const es = cc?.effectSize;
    const fromEffect =
      direction === 'decrease'
        ? es?.allowedDecrease !== undefined || es?.criticalDecrease !== undefined
          ? { pass: 1 - (es?.allowedDecrease ?? 1), marginal: 1 - (es?.criticalDecrease ?? es?.allowedDecrease ?? 1) }
          : undefined
        : es?.allowedIncrease !== undefined || es?.criticalIncrease !== undefined
          ? { pass: (es?.allowedIncrease ?? 1) - 1, marginal: (es?.criticalIncrease ?? es?.allowedIncrease ?? 1) - 1 }
          : undefined;
    const tol = m.thresholds ?? fromEffect ?? (kind === 'latency' ? globalRel ?? DEFAULT_LATENCY_TOLERANCE : DEFAULT_ERROR_TOLERANCE);
    return {
      name: m.name,
      metric: sel.metric!,
      matchers: sel.matchers,
      kind,
      direction,
      critical: m.critical ?? cc?.critical ?? false,
      mustHaveData: cc?.mustHaveData ?? false,
      groups: m.groups.length ? [...m.groups] : ['default'],
      weight: m.weight ?? 1,
      passTolerance: tol.pass,
      marginalTolerance: Math.max(tol.pass, tol.marginal),
      tails: kind === 'latency' ? [...(m.tails ?? (sel.metric === 'probe_duration_seconds' ? c.tails ?? DEFAULT_TAILS : []))] : [],
      slos: kind === 'latency' ? [...(m.slos ?? []), ...(i === firstLatency ? c.slos : [])] : [],
      failuresAsInfinity: kind === 'latency' && sel.metric === 'probe_duration_seconds' && direction !== 'decrease',
    };
  });
  return {
    metrics,
    groupWeights: { ...c.classifier.groupWeights },
    scoreThresholds: c.classifier.scoreThresholds ?? globalScore ?? DEFAULT_SCORE_THRESHOLDS,
    alpha: c.alpha,
    looks: c.looks,
    minSamples: c.min_samples,
    tailPower: c.tail_power,
    tailDetectableRatio: c.tail_detectable_ratio,
    minTailObservations: c.min_tail_observations,
    attribution: c.attribution,
  };
}

/** Validates a judge config value against {@link judgeConfigSchema}; throws InvalidArgumentError naming every bad field under `field`. */
export function validateJudgeConfig(raw: unknown, field = 'config'): JudgeConfigInput {
  const ctx: ParseContext = { issues: [], envSources: new Map() };
  const parsed = (judgeConfigSchema as Schema<JudgeConfigInput>).parse(raw ?? {}, field, ctx);
  if (parsed === undefined || ctx.issues.length > 0) {
    const first = ctx.issues[0];
    const rest = ctx.issues.map((i) => `${i.path}: ${i.message}`);
    throw new InvalidArgumentError(first?.path ?? field, `${first?.message ?? 'invalid'}${rest.length > 1 ? ` (all problems: ${rest.join('; ')})` : ''}`);
  }
  return parsed;
}

/** Parses a judge config from JSON text ('' = defaults) and resolves it. */
export function parseJudgeConfig(json: string, field = 'config'): JudgeConfig {
  let raw: unknown = {};
  if (json.trim() !== '') {
    try {
      raw = JSON.parse(json);
    } catch (err) {
      throw new InvalidArgumentError(field, `not valid JSON: ${(err as Error).message}`);
    }
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new InvalidArgumentError(field, 'must be a JSON object');
  return resolveJudgeConfig(validateJudgeConfig(raw, field));
}
