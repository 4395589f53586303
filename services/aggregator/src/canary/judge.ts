/**
 * The canary judge: runs every metric's comparisons, controls the false-FAIL rate
 * (alpha spent over the planned looks, Holm's step-down across every hypothesis of
 * every metric), classifies each metric and combines them into a scored verdict that
 * says which rule decided it.
 */
import type { JudgeConfig, MetricSpec } from './config';
import { ArmPair, Classification, classifyTested, errorRateTests, latencyTests, LookLevel, SEVERITY, TestResult, Effect } from './metric-tests';
import { holm, lookAlpha } from './stats';
import type { Attribution } from './attribution';

/** The overall verdict. */
export type Verdict = 'PASS' | 'MARGINAL' | 'FAIL' | 'INSUFFICIENT_DATA';

/** Numeric code of a verdict in `probemesh_canary_verdict`. */
export const VERDICT_CODE: Readonly<Record<Verdict, number>> = { PASS: 0, MARGINAL: 1, FAIL: 2, INSUFFICIENT_DATA: 3 };

/** One metric's outcome. */
export interface MetricVerdict {
  /** Metric name from the config. */
  name: string;
  /** Prometheus metric and matchers. */
  query: string;
  kind: MetricSpec['kind'];
  direction: MetricSpec['direction'];
  critical: boolean;
  groups: string[];
  /** Worst classification of its tests. */
  classification: Classification;
  /** The deciding test's reason. */
  reason: string;
  /** The central (or failure-rate) effect, for the headline. */
  effect?: Effect;
  /** Samples per arm (and failures). */
  samples: Record<string, number>;
  /** Every comparison. */
  tests: TestResult[];
  /** Tolerances applied. */
  tolerances: { pass: number; marginal: number };
}

/** Which rule decided the verdict. */
export interface DecidedBy {
  /** critical_metric, slo, score_marginal, score_pass, metric_marginal, insufficient_data, all_pass. */
  rule: string;
  /** The metric (and test) that decided, when one did. */
  metric?: string;
  test?: string;
  /** The threshold and the value compared with it. */
  threshold?: string;
  limit?: number;
  value?: number;
  /** Human sentence. */
  detail: string;
}

/** A canary verdict with its evidence. */
export interface CanaryVerdict {
  verdict: Verdict;
  /** 0..100: weighted share of passing metrics (MARGINAL counts half; INSUFFICIENT_DATA left out). */
  score: number;
  decidedBy: DecidedBy;
  /** Look number (1-based) and planned looks. */
  look: number;
  looks: number;
  /** Whole-run alpha and the level used at this look. */
  alpha: number;
  lookAlpha: number;
  metrics: MetricVerdict[];
  /** Where a latency regression lives (when computed). */
  attribution?: Attribution;
  /** Analysis windows (filled by the analysis). */
  window?: { baseline: { selector: string; startMs: number; endMs: number }; canary: { selector: string; startMs: number; endMs: number } };
  /** When the verdict was made (ms since the epoch; 0 when not set). */
  generatedAtMs: number;
}

/** Samples per metric name. */
export type MetricSamples = ReadonlyMap<string, ArmPair>;

/** Judges `samples` under `config` at look `look` (1-based) of `config.looks`. Pure and deterministic. */
export function judge(config: JudgeConfig, samples: MetricSamples, opts: { look?: number; nowMs?: number } = {}): CanaryVerdict {
  const look = Math.min(Math.max(1, opts.look ?? 1), config.looks);
  const level = lookAlpha(config.alpha, look, config.looks);
  const lv: LookLevel = { alpha: level, runAlpha: config.alpha, minSamples: config.minSamples, tailPower: config.tailPower, tailDetectableRatio: config.tailDetectableRatio, minTailObservations: config.minTailObservations };
  const perMetric = config.metrics.map((spec) => {
    const pair = samples.get(spec.name) ?? { baseline: [], canary: [] };
    const r = spec.kind === 'error_rate' ? errorRateTests(spec, pair, lv) : latencyTests(spec, pair, lv);
    return { spec, ...r };
  });
  const family = perMetric.flatMap((m) => m.tests.filter((t) => t.inFamily));
  const rejected = holm(family.map((t) => t.pValue ?? 1), level);
  family.forEach((t, i) => (t.significant = rejected[i]));
  const metrics: MetricVerdict[] = perMetric.map(({ spec, tests, counts }) => {
    for (const t of tests) if (t.pValue !== undefined) classifyTested(t, spec, t.test === 'central' || t.test === 'failure_rate');
    const noData = counts.baseline === 0 || counts.canary === 0;
    let worst = tests.reduce<TestResult | undefined>((w, t) => (!w || SEVERITY[t.classification] > SEVERITY[w.classification] ? t : w), undefined);
    let classification: Classification = worst?.classification ?? 'INSUFFICIENT_DATA';
    let reason = worst?.reason ?? 'no tests';
    if (noData && spec.mustHaveData) {
      classification = 'FAIL';
      reason = `no data (baseline ${counts.baseline}, canary ${counts.canary}) and mustHaveData is set`;
      worst = undefined;
    }
    const headline = tests.find((t) => t.test === 'central' || t.test === 'failure_rate');
    return {
      name: spec.name,
      query: `${spec.metric}{${spec.matchers.join(',')}}`,
      kind: spec.kind,
      direction: spec.direction,
      critical: spec.critical,
      groups: spec.groups,
      classification,
      reason: worst ? `${worst.test}: ${reason}` : reason,
      effect: headline?.effect,
      samples: counts,
      tests,
      tolerances: { pass: spec.passTolerance, marginal: spec.marginalTolerance },
    };
  });
  const score = scoreOf(metrics, config.groupWeights);
  const d = decide(metrics, score, config);
  return { verdict: d.verdict, decidedBy: d.decidedBy, score: score ?? 0, look, looks: config.looks, alpha: config.alpha, lookAlpha: level, metrics, generatedAtMs: opts.nowMs ?? 0 };
}

function scoreOf(metrics: MetricVerdict[], groupWeights: Record<string, number>): number | undefined {
  const groups = new Map<string, { sum: number; weight: number }>();
  for (const m of metrics) {
    if (m.classification === 'INSUFFICIENT_DATA') continue;
    const s = m.classification === 'PASS' ? 1 : m.classification === 'MARGINAL' ? 0.5 : 0;
    for (const g of m.groups) {
      const e = groups.get(g) ?? { sum: 0, weight: 0 };
      e.sum += s;
      e.weight += 1;
      groups.set(g, e);
    }
  }
  let total = 0;
  let weights = 0;
  for (const [g, e] of groups) {
    const w = groupWeights[g] ?? 1;
    total += w * (e.sum / e.weight);
    weights += w;
  }
  return weights > 0 ? (100 * total) / weights : undefined;
}

function decide(metrics: MetricVerdict[], score: number | undefined, config: JudgeConfig): { verdict: Verdict; decidedBy: DecidedBy } {
  for (const m of metrics) {
    const slo = m.tests.find((t) => t.test.startsWith('slo_') && t.classification === 'FAIL');
    if (slo) return { verdict: 'FAIL', decidedBy: { rule: 'slo', metric: m.name, test: slo.test, threshold: 'max_seconds', limit: Number(slo.detail.max_seconds), value: Number(slo.detail.lower), detail: `${m.name} ${slo.test}: ${slo.reason}` } };
  }
  for (const m of metrics) {
    if (m.critical && m.classification === 'FAIL') {
      const t = m.tests.find((x) => x.classification === 'FAIL');
      return { verdict: 'FAIL', decidedBy: { rule: 'critical_metric', metric: m.name, test: t?.test, threshold: 'marginal', limit: m.tolerances.marginal, value: t?.growth, detail: `critical metric ${m.reason}` } };
    }
  }
  const th = config.scoreThresholds;
  if (score !== undefined && score < th.marginal) {
    return { verdict: 'FAIL', decidedBy: { rule: 'score_marginal', threshold: 'score marginal', limit: th.marginal, value: score, detail: `score ${score.toFixed(1)} < marginal score threshold ${th.marginal}` } };
  }
  const marginal = metrics.find((m) => m.classification === 'MARGINAL' || m.classification === 'FAIL');
  if (score !== undefined && score < th.pass) {
    return { verdict: 'MARGINAL', decidedBy: { rule: 'score_pass', threshold: 'score pass', limit: th.pass, value: score, metric: marginal?.name, detail: `score ${score.toFixed(1)} < pass score threshold ${th.pass}${marginal ? ` (${marginal.reason})` : ''}` } };
  }
  if (marginal) {
    const t = marginal.tests.find((x) => x.classification === marginal.classification);
    return { verdict: 'MARGINAL', decidedBy: { rule: 'metric_marginal', metric: marginal.name, test: t?.test, threshold: 'pass', limit: marginal.tolerances.pass, value: t?.growth, detail: marginal.reason } };
  }
  const insufficient = metrics.find((m) => m.classification === 'INSUFFICIENT_DATA');
  if (insufficient || score === undefined) {
    return { verdict: 'INSUFFICIENT_DATA', decidedBy: { rule: 'insufficient_data', metric: insufficient?.name, detail: insufficient ? insufficient.reason : 'no metric could be evaluated' } };
  }
  return { verdict: 'PASS', decidedBy: { rule: 'all_pass', threshold: 'score pass', limit: th.pass, value: score, detail: `every metric within its tolerances (score ${score.toFixed(1)})` } };
}

/** JSON text of a verdict; non-finite numbers become "+Inf" / "-Inf" / "NaN" (JSON has none). */
export function verdictToJson(v: unknown, space?: number): string {
  return JSON.stringify(v, (_k, x) => (typeof x === 'number' && !Number.isFinite(x) ? (Number.isNaN(x) ? 'NaN' : x > 0 ? '+Inf' : '-Inf') : x), space);
}
