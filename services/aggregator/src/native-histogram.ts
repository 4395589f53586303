/**
 * Native (sparse, exponential-bucket) histograms as Prometheus 2.40+ stores them:
 * bucket `i` of schema `s` holds observations in (2^((i-1)·2^-s), 2^(i·2^-s)]; values
 * with |v| ≤ zero_threshold go to the zero bucket. Only buckets that were hit exist, so
 * a probe latency histogram costs a handful of buckets at any latency. Bucket indexes
 * follow client_golang (frexp-based, so powers of two land on bucket boundaries exactly).
 *
 * The state is cumulative (a counter histogram, like the classic `_bucket` series);
 * when more than `maxBuckets` buckets are populated, the schema is lowered by one
 * (neighbouring buckets merged) until they fit, as client_golang does.
 */

/** A run of consecutive buckets (see prompb BucketSpan). */
export interface BucketSpan {
  /** Empty buckets since the previous span; for the first span, its first bucket index. */
  offset: number;
  /** Buckets in the span. */
  length: number;
}

/** One integer native histogram sample, in the remote-write field layout. */
export interface NativeHistogram {
  /** Observations. */
  count: number;
  /** Sum of observations. */
  sum: number;
  /** Bucket schema (-4..8). */
  schema: number;
  /** Zero bucket width. */
  zeroThreshold: number;
  /** Observations in the zero bucket. */
  zeroCount: number;
  /** Positive bucket spans. */
  spans: BucketSpan[];
  /** Positive bucket counts as deltas to the previous bucket (first: to 0). */
  deltas: number[];
}

/** Lowest and highest schema Prometheus accepts. */
export const MIN_SCHEMA = -4;
/** Highest schema (finest buckets). */
export const MAX_SCHEMA = 8;
/** client_golang's default zero threshold (2^-128). */
export const DEFAULT_ZERO_THRESHOLD = 2.938735877055719e-39;

const boundsCache = new Map<number, Float64Array>();

/** Upper bounds of the fraction (frexp mantissa in [0.5, 1)) for schema > 0: 2^(j/2^s) / 2. */
function fracBounds(schema: number): Float64Array {
  let b = boundsCache.get(schema);
  if (!b) {
    const n = 1 << schema;
    b = new Float64Array(n);
    for (let j = 0; j < n; j++) b[j] = 2 ** (j / n) / 2;
    boundsCache.set(schema, b);
  }
  return b;
}

/** frexp: v = frac · 2^exp with frac in [0.5, 1), for finite v > 0. */
function frexp(v: number): [number, number] {
  let exp = Math.floor(Math.log2(v)) + 1;
  let frac = v / 2 ** exp;
  // log2 can be off by one ulp near powers of two.
  while (frac >= 1) {
    frac /= 2;
    exp++;
  }
  while (frac < 0.5) {
    frac *= 2;
    exp--;
  }
  return [frac, exp];
}

/** Index of the bucket holding `v` (> 0, finite) in `schema`. */
export function bucketIndex(v: number, schema: number): number {
  const [frac, exp] = frexp(v);
  if (schema > 0) {
    const bounds = fracBounds(schema);
    // Smallest j with bounds[j] >= frac.
    let lo = 0;
    let hi = bounds.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (bounds[mid]! >= frac) hi = mid;
      else lo = mid + 1;
    }
    return lo + (exp - 1) * bounds.length;
  }
  let key = exp;
  if (frac === 0.5) key--;
  const shift = -schema;
  return (key + (1 << shift) - 1) >> shift;
}

/** Upper bound of bucket `index` in `schema`: 2^(index · 2^-schema). */
export function bucketUpperBound(index: number, schema: number): number {
  return 2 ** (index * 2 ** -schema);
}

/** Cumulative native histogram of one series; see the file comment. */
export class NativeHistogramState {
  /** Current schema (lowered when too many buckets are populated). */
  schema: number;
  /** Observations so far. */
  count = 0;
  /** Sum of the observations. */
  sum = 0;
  /** Observations in the zero bucket. */
  zeroCount = 0;
  private buckets = new Map<number, number>();

  constructor(
    schema: number,
    readonly zeroThreshold: number,
    readonly maxBuckets: number,
  ) {
    if (!Number.isInteger(schema) || schema < MIN_SCHEMA || schema > MAX_SCHEMA) throw new RangeError(`native histogram schema must be an integer in ${MIN_SCHEMA}..${MAX_SCHEMA}, got ${schema}`);
    this.schema = schema;
  }

  /** Populated buckets. */
  get bucketCount(): number {
    return this.buckets.size;
  }

  /** Adds one observation (NaN is ignored; negative values count in the zero bucket: durations are never negative). */
  observe(v: number): void {
    if (Number.isNaN(v)) return;
    this.count++;
    this.sum += v;
    if (v <= this.zeroThreshold) {
      this.zeroCount++;
      return;
    }
    const i = bucketIndex(Math.min(v, Number.MAX_VALUE), this.schema);
    this.buckets.set(i, (this.buckets.get(i) ?? 0) + 1);
    while (this.buckets.size > this.maxBuckets && this.schema > MIN_SCHEMA) this.reduce();
  }

  /** Lowers the schema by one: bucket i merges into ceil(i/2). */
  private reduce(): void {
    const next = new Map<number, number>();
    for (const [i, c] of this.buckets) {
      const j = (i + 1) >> 1;
      next.set(j, (next.get(j) ?? 0) + c);
    }
    this.buckets = next;
    this.schema--;
  }

  /** The current cumulative histogram in remote-write layout. */
  snapshot(): NativeHistogram {
    const keys = [...this.buckets.keys()].sort((a, b) => a - b);
    const spans: BucketSpan[] = [];
    const deltas: number[] = [];
    let prevKey = 0;
    let prevCount = 0;
    for (let k = 0; k < keys.length; k++) {
      const key = keys[k]!;
      const c = this.buckets.get(key)!;
      if (k > 0 && key === prevKey + 1) spans[spans.length - 1]!.length++;
      else spans.push({ offset: k === 0 ? key : key - prevKey - 1, length: 1 });
      deltas.push(c - prevCount);
      prevKey = key;
      prevCount = c;
    }
    return { count: this.count, sum: this.sum, schema: this.schema, zeroThreshold: this.zeroThreshold, zeroCount: this.zeroCount, spans, deltas };
  }
}
