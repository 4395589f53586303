/**
 * Distribution-free statistics of the canary judge: one-sided Mann-Whitney U with tie
 * correction, the Hodges-Lehmann shift with its order-statistic interval (exact
 * selection over all m·n pairwise differences in O((m+n)·log(range/tol)) without
 * materialising them), quantiles with binomial order-statistic intervals, a quantile
 * exceedance test, Fisher's exact test, alpha spending and Holm's step-down.
 * All inputs are sorted ascending Float64Arrays (+Infinity allowed where stated).
 */

/** Standard normal CDF Φ(x) (erfc with relative error < 1.2e-7 in the tails). */
export function normalCdf(x: number): number {
  if (x === Infinity) return 1;
  if (x === -Infinity) return 0;
  return 0.5 * erfc(-x / Math.SQRT2);
}

/** Complementary error function (Numerical Recipes' Chebyshev fit, fractional error < 1.2e-7). */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** Standard normal quantile Φ⁻¹(p) (Acklam's rational approximation + one Halley step). */
export function normalQuantile(p: number): number {
  if (p <= 0) return -Infinity;
  if (p >= 1) return Infinity;
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const pl = 0.02425;
  let x: number;
  if (p < pl) {
    const q = Math.sqrt(-2 * Math.log(p));
    x = (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  } else if (p <= 1 - pl) {
    const q = p - 0.5;
    const r = q * q;
    x = ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
  } else {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    x = -(((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  const e = normalCdf(x) - p;
  const u = e * Math.sqrt(2 * Math.PI) * Math.exp((x * x) / 2);
  return x - u / (1 + (x * u) / 2);
}

/** ln Γ(x) for x > 0 (Lanczos, g = 7). */
export function lnGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lnGamma(1 - x);
  const g = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  x -= 1;
  let s = g[0]!;
  for (let i = 1; i < 9; i++) s += g[i]! / (x + i);
  const t = x + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(s);
}

/** ln C(n, k). */
export function lnChoose(n: number, k: number): number {
  return lnGamma(n + 1) - lnGamma(k + 1) - lnGamma(n - k + 1);
}

/** Result of {@link mannWhitney}. */
export interface MannWhitneyResult {
  /** U statistic of the canary (pairs where canary > baseline, ties count ½). */
  u: number;
  /** P(canary > baseline) + ½·P(tie): U / (m·n), the common-language effect size. */
  superiority: number;
  /** Standardised U with continuity correction toward the null, for "canary greater". */
  z: number;
  /** One-sided p-value, H1: canary stochastically greater. */
  pGreater: number;
  /** One-sided p-value, H1: canary stochastically smaller. */
  pLess: number;
}

/**
 * Mann-Whitney U by merging two sorted samples (O(m+n)); normal approximation with
 * the tie-corrected variance  σ² = mn/12·((N+1) − Σ(t³−t)/(N(N−1))) and a ½
 * continuity correction. +Infinity values tie with each other (failures).
 */
export function mannWhitney(baseline: Float64Array, canary: Float64Array): MannWhitneyResult {
  const m = baseline.length;
  const n = canary.length;
  const N = m + n;
  let i = 0;
  let j = 0;
  let rank = 0;
  let rc = 0;
  let tieSum = 0;
  while (i < m || j < n) {
    const v = j >= n || (i < m && baseline[i]! <= canary[j]!) ? baseline[i]! : canary[j]!;
    let tb = 0;
    let tc = 0;
    while (i < m && baseline[i] === v) {
      i++;
      tb++;
    }
    while (j < n && canary[j] === v) {
      j++;
      tc++;
    }
    const t = tb + tc;
    rc += tc * (rank + (t + 1) / 2);
    if (t > 1) tieSum += t * t * t - t;
    rank += t;
  }
  const u = rc - (n * (n + 1)) / 2;
  const mu = (m * n) / 2;
  const variance = N > 1 ? ((m * n) / 12) * (N + 1 - tieSum / (N * (N - 1))) : 0;
  const sd = Math.sqrt(Math.max(0, variance));
  if (sd === 0 || m === 0 || n === 0) return { u, superiority: m && n ? u / (m * n) : 0.5, z: 0, pGreater: 1, pLess: 1 };
  const z = (u - mu - 0.5) / sd;
  return { u, superiority: u / (m * n), z, pGreater: normalCdf(-z), pLess: normalCdf((u - mu + 0.5) / sd) };
}

/** Number of pairs (i, j) with canary[i] − baseline[j] ≤ d (both sorted, finite). */
export function countPairsAtMost(canary: Float64Array, baseline: Float64Array, d: number): number {
  const nb = baseline.length;
  let j = 0;
  let count = 0;
  for (let i = 0; i < canary.length; i++) {
    const ci = canary[i]!;
    while (j < nb && ci - baseline[j]! > d) j++;
    count += nb - j;
  }
  return count;
}

/**
 * The k-th smallest (1-based) of the m·n differences canary[i] − baseline[j] of two
 * sorted finite samples, without materialising them: bisection on the value with an
 * O(m+n) two-pointer count, until the bracket is below `tol`, then snapped to the
 * largest actual difference ≤ the upper end (exact when the bracket holds one value).
 */
export function kthPairwiseDifference(canary: Float64Array, baseline: Float64Array, k: number, tol = 1e-12): number {
  const n = canary.length;
  const m = baseline.length;
  if (n === 0 || m === 0) return NaN;
  const total = n * m;
  const kk = Math.min(total, Math.max(1, Math.round(k)));
  let lo = canary[0]! - baseline[m - 1]!;
  let hi = canary[n - 1]! - baseline[0]!;
  if (kk === 1) return lo;
  if (kk === total) return hi;
  lo -= Math.max(1e-9, Math.abs(lo) * 1e-12); // count(lo) = 0 < k
  const scale = Math.max(1, Math.abs(lo), Math.abs(hi));
  for (let it = 0; it < 200 && hi - lo > tol * scale; it++) {
    const mid = lo + (hi - lo) / 2;
    if (mid <= lo || mid >= hi) break;
    if (countPairsAtMost(canary, baseline, mid) >= kk) hi = mid;
    else lo = mid;
  }
  // Snap: the largest actual difference ≤ hi.
  let best = -Infinity;
  let j = 0;
  for (let i = 0; i < n; i++) {
    const ci = canary[i]!;
    while (j < m && ci - baseline[j]! > hi) j++;
    if (j < m) best = Math.max(best, ci - baseline[j]!);
  }
  return best === -Infinity ? hi : best;
}

/** A Hodges-Lehmann shift estimate with its distribution-free interval. */
export interface ShiftEstimate {
  /** Median of the pairwise differences canary − baseline. */
  shift: number;
  /** Lower end of the interval (−Infinity when the samples are too small for it). */
  lower: number;
  /** Upper end of the interval (+Infinity when the samples are too small for it). */
  upper: number;
  /** Two-sided confidence of [lower, upper]. */
  confidence: number;
}

/**
 * Hodges-Lehmann two-sample shift with the Moses/Lehmann interval:
 * C = ⌊mn/2 − z_{1−a/2}·√(mn(m+n+1)/12)⌋, interval [D_(C), D_(mn+1−C)] of the ordered
 * pairwise differences D (1-based), confidence 1 − a.
 */
export function hodgesLehmann(baseline: Float64Array, canary: Float64Array, confidence: number): ShiftEstimate {
  const m = baseline.length;
  const n = canary.length;
  const mn = m * n;
  if (mn === 0) return { shift: NaN, lower: -Infinity, upper: Infinity, confidence };
  const shift = mn % 2 === 1 ? kthPairwiseDifference(canary, baseline, (mn + 1) / 2) : (kthPairwiseDifference(canary, baseline, mn / 2) + kthPairwiseDifference(canary, baseline, mn / 2 + 1)) / 2;
  const z = normalQuantile(1 - (1 - confidence) / 2);
  const c = Math.floor(mn / 2 - z * Math.sqrt((mn * (m + n + 1)) / 12));
  const lower = c >= 1 ? kthPairwiseDifference(canary, baseline, c) : -Infinity;
  const upper = c >= 1 ? kthPairwiseDifference(canary, baseline, mn + 1 - c) : Infinity;
  return { shift, lower, upper, confidence };
}

/** A sample quantile with its binomial order-statistic interval. */
export interface QuantileEstimate {
  /** The order statistic x_(⌈nq⌉). */
  value: number;
  /** Lower end (−Infinity when n is too small). */
  lower: number;
  /** Upper end (+Infinity when n is too small). */
  upper: number;
}

/**
 * Quantile q of a sorted sample with the distribution-free interval
 * [x_(l), x_(u)], l = ⌊nq − z√(nq(1−q))⌋, u = ⌈nq + z√(nq(1−q))⌉ + 1 (normal
 * approximation of the binomial count below the true quantile), confidence 1 − a.
 */
export function quantileWithInterval(sorted: Float64Array, q: number, confidence: number): QuantileEstimate {
  const n = sorted.length;
  if (n === 0) return { value: NaN, lower: -Infinity, upper: Infinity };
  const z = normalQuantile(1 - (1 - confidence) / 2);
  const half = z * Math.sqrt(n * q * (1 - q));
  const l = Math.floor(n * q - half);
  const u = Math.ceil(n * q + half) + 1;
  return {
    value: sorted[Math.min(n, Math.max(1, Math.ceil(n * q))) - 1]!,
    lower: l >= 1 ? sorted[l - 1]! : -Infinity,
    upper: u <= n ? sorted[u - 1]! : Infinity,
  };
}

/** Quantile (order statistic x_(⌈nq⌉)) of a sorted sample. */
export function quantile(sorted: Float64Array, q: number): number {
  const n = sorted.length;
  return n ? sorted[Math.min(n, Math.max(1, Math.ceil(n * q))) - 1]! : NaN;
}

/** Result of {@link exceedanceTest}. */
export interface ExceedanceResult {
  /** Pooled q-quantile used as the threshold. */
  threshold: number;
  /** Baseline samples above the threshold. */
  baselineAbove: number;
  /** Canary samples above the threshold. */
  canaryAbove: number;
  /** One-sided p-value (Fisher), H1: the canary exceeds it more often. */
  pGreater: number;
  /** One-sided p-value, H1: the canary exceeds it less often. */
  pLess: number;
}

/**
 * Tail test of quantile q (a generalised Mood median test): counts each arm's
 * samples above the pooled q-quantile and compares the proportions with Fisher's
 * exact test. Valid without any distributional assumption.
 */
export function exceedanceTest(baseline: Float64Array, canary: Float64Array, q: number): ExceedanceResult {
  const m = baseline.length;
  const n = canary.length;
  // Pooled quantile by merging (both sorted).
  const k = Math.min(m + n, Math.max(1, Math.ceil((m + n) * q)));
  let i = 0;
  let j = 0;
  let threshold = NaN;
  for (let r = 0; r < k; r++) {
    if (j >= n || (i < m && baseline[i]! <= canary[j]!)) threshold = baseline[i++]!;
    else threshold = canary[j++]!;
  }
  const baselineAbove = m - upperBound(baseline, threshold);
  const canaryAbove = n - upperBound(canary, threshold);
  const f = fisherExact(canaryAbove, n, baselineAbove, m);
  return { threshold, baselineAbove, canaryAbove, pGreater: f.pGreater, pLess: f.pLess };
}

/** First index whose value is > v (sorted ascending). */
export function upperBound(a: Float64Array, v: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** One-sided p-values of Fisher's exact test on a 2×2 table. */
export interface FisherResult {
  /** P(X ≥ x1): the first group's proportion is greater. */
  pGreater: number;
  /** P(X ≤ x1): the first group's proportion is smaller. */
  pLess: number;
}

/**
 * Fisher's exact test of x1/n1 vs x2/n2 (hypergeometric tail sums in log space, from
 * the observed cell outwards, stopping once terms are negligible).
 */
export function fisherExact(x1: number, n1: number, x2: number, n2: number): FisherResult {
  const N = n1 + n2;
  const K = x1 + x2;
  if (N === 0 || n1 === 0 || n2 === 0) return { pGreater: 1, pLess: 1 };
  const lo = Math.max(0, n1 - (N - K));
  const hi = Math.min(K, n1);
  const base = lnChoose(N, n1);
  const lp = (x: number) => lnChoose(K, x) + lnChoose(N - K, n1 - x) - base;
  const tail = (from: number, to: number, step: 1 | -1) => {
    let sum = 0;
    let peak = -Infinity;
    for (let x = from; step > 0 ? x <= to : x >= to; x += step) {
      const l = lp(x);
      peak = Math.max(peak, l);
      sum += Math.exp(l);
      if (l < peak - 40) break; // past the mode and negligible
    }
    return Math.min(1, sum);
  };
  return { pGreater: tail(x1, hi, 1), pLess: tail(x1, lo, -1) };
}

/**
 * Cumulative one-sided alpha spent by information fraction t ∈ (0, 1] under the
 * Lan-DeMets O'Brien-Fleming-like spending function α(t) = 2·(1 − Φ(z_{1−α/2}/√t)).
 */
export function obrienFlemingSpent(alpha: number, t: number): number {
  if (t <= 0) return 0;
  if (t >= 1) return alpha;
  return 2 * (1 - normalCdf(normalQuantile(1 - alpha / 2) / Math.sqrt(t)));
}

/**
 * The nominal level of look `look` (1-based) of `looks` planned: the alpha spent
 * between this look and the previous one. By the union bound the chance of any false
 * rejection over all looks stays ≤ α.
 */
export function lookAlpha(alpha: number, look: number, looks: number): number {
  const k = Math.min(Math.max(1, look), looks);
  return obrienFlemingSpent(alpha, k / looks) - obrienFlemingSpent(alpha, (k - 1) / looks);
}

/**
 * Holm's step-down procedure: which of `pValues` are rejected at family-wise level
 * `alpha` (the i-th smallest p must be ≤ α/(m − i), stopping at the first failure).
 */
export function holm(pValues: readonly number[], alpha: number): boolean[] {
  const m = pValues.length;
  const order = pValues.map((p, i) => [p, i] as const).sort((a, b) => a[0] - b[0]);
  const rejected = new Array<boolean>(m).fill(false);
  for (let r = 0; r < m; r++) {
    const [p, i] = order[r]!;
    if (!(p <= alpha / (m - r))) break;
    rejected[i] = true;
  }
  return rejected;
}

/**
 * Samples per arm needed for the exceedance test of quantile q: at least
 * `minTail` observations above it, and enough for a one-sided two-proportion test at
 * level `alpha` to detect the tail exceedance rate growing `ratio`-fold with `power`:
 * n = (z_α·√(2p̄(1−p̄)) + z_β·√(p₀(1−p₀)+p₁(1−p₁)))² / (p₁−p₀)².
 */
export function requiredTailSamples(q: number, opts: { alpha: number; power: number; ratio: number; minTail: number }): number {
  const p0 = 1 - q;
  const p1 = Math.min(1, p0 * opts.ratio);
  const pbar = (p0 + p1) / 2;
  const za = normalQuantile(1 - opts.alpha);
  const zb = normalQuantile(opts.power);
  const nPower = ((za * Math.sqrt(2 * pbar * (1 - pbar)) + zb * Math.sqrt(p0 * (1 - p0) + p1 * (1 - p1))) ** 2) / (p1 - p0) ** 2;
  return Math.ceil(Math.max(opts.minTail / p0, nPower) - 1e-9);
}

/** Sorts a copy (Float64Array sort is numeric; +Infinity sorts last). */
export function sorted(values: ArrayLike<number>): Float64Array {
  const a = Float64Array.from(values);
  a.sort();
  return a;
}
