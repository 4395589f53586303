/**
 * The per-metric comparisons of the judge: central tendency (Mann-Whitney U + Hodges-
 * Lehmann ratio on log latency), tails (exceedance test + order-statistic quantile
 * ratio), absolute SLOs, and failure rates (Fisher). Each returns the hypothesis'
 * p-value; classification happens after Holm's procedure in the judge.
 */
import type { MetricSpec } from './config';
import { exceedanceTest, fisherExact, lnChoose, hodgesLehmann, mannWhitney, normalQuantile, quantileWithInterval, requiredTailSamples, sorted } from './stats';

/** A classification, worst last: PASS < INSUFFICIENT_DATA < MARGINAL < FAIL. */
export type Classification = 'PASS' | 'MARGINAL' | 'FAIL' | 'INSUFFICIENT_DATA';
/** Severity order used to combine classifications. */
export const SEVERITY: Readonly<Record<Classification, number>> = { PASS: 0, INSUFFICIENT_DATA: 1, MARGINAL: 2, FAIL: 3 };

/** An effect estimate with its interval. */
export interface Effect {
  /** Point estimate (canary/baseline ratio, or failure-rate difference). */
  value: number;
  /** Lower end of the interval. */
  lower: number;
  /** Upper end of the interval. */
  upper: number;
  /** Two-sided confidence of the interval. */
  confidence: number;
  /** What `value` is: "ratio" (canary/baseline) or "difference" (canary − baseline). */
  kind: 'ratio' | 'difference';
}

/** One comparison within a metric. */
export interface TestResult {
  /** "central", "p95", "p99", "slo_p99", "failure_rate". */
  test: string;
  /** Classification (set by the judge after Holm for tested hypotheses). */
  classification: Classification;
  /** Why. */
  reason: string;
  /** One-sided (or two-sided for `either`) p-value; undefined when not tested. */
  pValue?: number;
  /** Part of the Holm family (an SLO is not). */
  inFamily: boolean;
  /** Rejected by Holm at this look's level. */
  significant?: boolean;
  /** Effect size with its interval. */
  effect?: Effect;
  /** Growth in the bad direction (ratio − 1, or rate difference) used against the tolerances. */
  growth?: number;
  /** Upper confidence bound of the growth (central tests). */
  growthUpper?: number;
  /** Samples per arm this test needs. */
  requiredSamples?: number;
  /** Extra figures (quantile values, medians, counts). */
  detail: Record<string, number | string>;
}

/** Samples of one metric in both arms (latency seconds with +Infinity for failures; or 0/1 outcomes). */
export interface ArmPair {
  baseline: ArrayLike<number>;
  canary: ArrayLike<number>;
}

/** Level and interval confidence of the current look. */
export interface LookLevel {
  /** Nominal level of this look (alpha spent since the previous look). */
  alpha: number;
  /** Whole-run alpha (sizes the tail power requirement). */
  runAlpha: number;
  minSamples: number;
  tailPower: number;
  tailDetectableRatio: number;
  minTailObservations: number;
}

/** Smallest latency used before taking logs (0.1 µs: below the probes' resolution). */
export const LATENCY_FLOOR_S = 1e-7;

function finiteMax(a: Float64Array): number {
  for (let i = a.length - 1; i >= 0; i--) if (Number.isFinite(a[i]!)) return a[i]!;
  return 0;
}

/** Tests of a latency metric. */
export function latencyTests(spec: MetricSpec, pair: ArmPair, lv: LookLevel): { tests: TestResult[]; counts: Record<string, number> } {
  const bx = sorted(pair.baseline);
  const cx = sorted(pair.canary);
  const failures = (a: Float64Array) => a.length - (a.findIndex((v) => v === Infinity) === -1 ? a.length : a.findIndex((v) => v === Infinity));
  const counts = { baseline: bx.length, canary: cx.length, baseline_failures: failures(bx), canary_failures: failures(cx) };
  const tests: TestResult[] = [];
  const sign = spec.direction === 'decrease' ? -1 : 1;
  // Log scale (ratios become shifts); failures become a finite sentinel far above every
  // real value so that they rank last, tie with each other, and keep differences finite.
  const toLog = (a: Float64Array, sentinel: number) => {
    const out = new Float64Array(a.length);
    for (let i = 0; i < a.length; i++) out[i] = a[i] === Infinity ? sentinel : sign * Math.log(Math.max(LATENCY_FLOOR_S, a[i]!));
    if (sign < 0) out.reverse();
    return out;
  };
  const sentinel = Math.log(Math.max(LATENCY_FLOOR_S, finiteMax(bx), finiteMax(cx))) + 100;
  if (bx.length < lv.minSamples || cx.length < lv.minSamples) {
    tests.push({ test: 'central', classification: 'INSUFFICIENT_DATA', reason: `fewer than min_samples (${lv.minSamples}) per arm: baseline ${bx.length}, canary ${cx.length}`, inFamily: false, requiredSamples: lv.minSamples, detail: {} });
  } else {
    const by = toLog(bx, sentinel);
    const cy = toLog(cx, sentinel);
    const mw = mannWhitney(by, cy);
    const confidence = 1 - 2 * lv.alpha;
    const hl = hodgesLehmann(by, cy, confidence);
    const big = (d: number) => (d > 50 ? Infinity : d < -50 ? -Infinity : d);
    const shift = big(hl.shift);
    const lo = big(hl.lower);
    const hi = big(hl.upper);
    const either = spec.direction === 'either';
    const ratio = Math.exp(sign * shift);
    const [rlo, rhi] = sign > 0 ? [Math.exp(lo), Math.exp(hi)] : [Math.exp(-hi), Math.exp(-lo)];
    const growth = either ? Math.exp(Math.abs(shift)) - 1 : Math.exp(shift) - 1;
    const growthUpper = either ? Math.exp(Math.max(Math.abs(lo), Math.abs(hi))) - 1 : Math.exp(hi) - 1;
    tests.push({
      test: 'central',
      classification: 'PASS',
      reason: '',
      pValue: either ? Math.min(1, 2 * Math.min(mw.pGreater, mw.pLess)) : mw.pGreater,
      inFamily: true,
      effect: { value: ratio, lower: rlo, upper: rhi, confidence, kind: 'ratio' },
      growth,
      growthUpper,
      detail: { superiority: mw.superiority, z: mw.z, baseline_median: quantileWithInterval(bx, 0.5, 0.95).value, canary_median: quantileWithInterval(cx, 0.5, 0.95).value },
    });
  }
  if (spec.direction !== 'decrease') {
    for (const q of spec.tails) {
      const name = `p${+(q * 100).toFixed(2)}`;
      const need = requiredTailSamples(q, { alpha: lv.runAlpha, power: lv.tailPower, ratio: lv.tailDetectableRatio, minTail: lv.minTailObservations });
      if (bx.length < need || cx.length < need) {
        tests.push({ test: name, classification: 'INSUFFICIENT_DATA', reason: `${name} needs ${need} samples per arm for power ${lv.tailPower} (baseline ${bx.length}, canary ${cx.length})`, inFamily: false, requiredSamples: need, detail: {} });
        continue;
      }
      const ex = exceedanceTest(bx, cx, q);
      const conf = 1 - lv.alpha; // each quantile at 1−α: the ratio interval holds with ≥ 1−2α
      const qb = quantileWithInterval(bx, q, conf);
      const qc = quantileWithInterval(cx, q, conf);
      const ratio = qc.value / qb.value;
      const either = spec.direction === 'either';
      tests.push({
        test: name,
        classification: 'PASS',
        reason: '',
        pValue: either ? Math.min(1, 2 * Math.min(ex.pGreater, ex.pLess)) : ex.pGreater,
        inFamily: true,
        effect: { value: ratio, lower: qc.lower / qb.upper, upper: qc.upper / qb.lower, confidence: 1 - 2 * lv.alpha, kind: 'ratio' },
        growth: either ? Math.max(ratio, 1 / ratio) - 1 : ratio - 1,
        requiredSamples: need,
        detail: { baseline: qb.value, canary: qc.value, difference_seconds: qc.value - qb.value, pooled_threshold: ex.threshold, baseline_above: ex.baselineAbove, canary_above: ex.canaryAbove },
      });
    }
    for (const slo of spec.slos) {
      const name = `slo_p${+(slo.quantile * 100).toFixed(2)}`;
      const need = Math.ceil(lv.minTailObservations / (1 - slo.quantile));
      if (cx.length < need) {
        tests.push({ test: name, classification: 'INSUFFICIENT_DATA', reason: `${name} needs ${need} canary samples (${cx.length})`, inFamily: false, requiredSamples: need, detail: { max_seconds: slo.max_seconds } });
        continue;
      }
      const qc = quantileWithInterval(cx, slo.quantile, 1 - 2 * lv.alpha);
      const cls: Classification = qc.lower > slo.max_seconds ? 'FAIL' : qc.value > slo.max_seconds ? 'MARGINAL' : 'PASS';
      const reason =
        cls === 'FAIL'
          ? `canary p${slo.quantile * 100} ≥ ${fmt(qc.lower)}s (lower bound) > SLO ${slo.max_seconds}s`
          : cls === 'MARGINAL'
            ? `canary p${slo.quantile * 100} ${fmt(qc.value)}s > SLO ${slo.max_seconds}s, not yet beyond doubt (lower bound ${fmt(qc.lower)}s)`
            : `canary p${slo.quantile * 100} ${fmt(qc.value)}s ≤ SLO ${slo.max_seconds}s`;
      tests.push({ test: name, classification: cls, reason, inFamily: false, requiredSamples: need, detail: { canary: qc.value, lower: qc.lower, upper: qc.upper, max_seconds: slo.max_seconds } });
    }
  }
  return { tests, counts };
}

/** The failure-rate test of an error_rate metric (samples: 1 = success, 0 = failure). */
export function errorRateTests(spec: MetricSpec, pair: ArmPair, lv: LookLevel): { tests: TestResult[]; counts: Record<string, number> } {
  const fails = (a: ArrayLike<number>) => {
    let f = 0;
    for (let i = 0; i < a.length; i++) if (a[i] === 0) f++;
    return f;
  };
  const nb = pair.baseline.length;
  const nc = pair.canary.length;
  const fb = fails(pair.baseline);
  const fc = fails(pair.canary);
  const counts = { baseline: nb, canary: nc, baseline_failures: fb, canary_failures: fc };
  if (nb < lv.minSamples || nc < lv.minSamples) {
    return { counts, tests: [{ test: 'failure_rate', classification: 'INSUFFICIENT_DATA', reason: `fewer than min_samples (${lv.minSamples}) per arm: baseline ${nb}, canary ${nc}`, inFamily: false, requiredSamples: lv.minSamples, detail: {} }] };
  }
  const rb = fb / nb;
  const rc = fc / nc;
  const f = fisherExact(fc, nc, fb, nb);
  const up = spec.direction !== 'decrease';
  const either = spec.direction === 'either';
  const z = normalQuantile(1 - lv.alpha);
  const wilson = (p: number, n: number, s: 1 | -1) => (p + (z * z) / (2 * n) + s * z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / (1 + (z * z) / n);
  // Tarone: a table whose smallest attainable p-value exceeds the level can never be
  // significant; leaving it out of the Holm family keeps the others' power.
  const K = fb + fc;
  const attainable = K === 0 ? 1 : Math.exp(lnChoose(up ? nc : nb, K) - lnChoose(nb + nc, K));
  const diff = rc - rb;
  const growth = either ? Math.abs(diff) : up ? diff : -diff;
  const growthUpper = either ? Math.max(wilson(rc, nc, 1) - rb, rb - wilson(rc, nc, -1)) : up ? wilson(rc, nc, 1) - rb : rb - wilson(rc, nc, -1);
  return {
    counts,
    tests: [
      {
        test: 'failure_rate',
        classification: 'PASS',
        reason: '',
        pValue: either ? Math.min(1, 2 * Math.min(f.pGreater, f.pLess)) : up ? f.pGreater : f.pLess,
        inFamily: attainable <= lv.alpha,
        effect: { value: diff, lower: wilson(rc, nc, -1) - rb, upper: wilson(rc, nc, 1) - rb, confidence: 1 - 2 * lv.alpha, kind: 'difference' },
        growth,
        growthUpper,
        detail: { baseline_rate: rb, canary_rate: rc, rate_ratio: rb === 0 ? (rc === 0 ? 1 : Infinity) : rc / rb },
      },
    ],
  };
}

/** Classifies a tested hypothesis once Holm decided whether it is significant. */
export function classifyTested(t: TestResult, spec: MetricSpec, isCentralLike: boolean): void {
  const g = t.growth ?? 0;
  const unit = spec.kind === 'error_rate' ? (x: number) => `${(x * 100).toFixed(2)} pp` : (x: number) => `${x === Infinity ? '+∞' : (x * 100).toFixed(1)} %`;
  if (t.significant) {
    if (g > spec.marginalTolerance) {
      t.classification = 'FAIL';
      t.reason = `significant (p=${fmtP(t.pValue)}) growth ${unit(g)} > marginal tolerance ${unit(spec.marginalTolerance)}`;
    } else if (g > spec.passTolerance) {
      t.classification = 'MARGINAL';
      t.reason = `significant (p=${fmtP(t.pValue)}) growth ${unit(g)} > pass tolerance ${unit(spec.passTolerance)}, ≤ marginal ${unit(spec.marginalTolerance)}`;
    } else {
      t.classification = 'PASS';
      t.reason = `significant (p=${fmtP(t.pValue)}) but growth ${unit(g)} ≤ pass tolerance ${unit(spec.passTolerance)}`;
    }
    return;
  }
  if (isCentralLike && t.growthUpper !== undefined && t.growthUpper > spec.marginalTolerance) {
    t.classification = 'INSUFFICIENT_DATA';
    t.reason = `no significant change (p=${fmtP(t.pValue)}) but the data cannot rule out growth up to ${unit(t.growthUpper)} > marginal tolerance ${unit(spec.marginalTolerance)}`;
    return;
  }
  t.classification = 'PASS';
  t.reason = `no significant change (p=${fmtP(t.pValue)})${t.growthUpper !== undefined ? `, growth ≤ ${unit(Math.max(0, t.growthUpper))} at the upper bound` : ''}`;
}

function fmt(x: number): string {
  return Number.isFinite(x) ? x.toPrecision(4) : String(x);
}

function fmtP(p: number | undefined): string {
  return p === undefined ? '-' : p < 1e-4 ? p.toExponential(1) : p.toFixed(4);
}
