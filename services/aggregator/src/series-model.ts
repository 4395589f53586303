/**
 * The aggregator's series state: turns ResultBatches into queued samples of interned
 * series (labels built, validated and encoded once per series, not per sample), and
 * keeps the per-series state of what we derive ourselves:
 *
 * - `probemesh_probe_duration_seconds` — a classic histogram of probe durations per
 *   (target, module, prober, zone, job, target labels): cumulative `_bucket{le}`,
 *   `_sum` and `_count` counters written with each result. They live in memory and
 *   restart from zero when the aggregator restarts or a prober moves to another
 *   aggregator (a counter reset, which rate()/increase() handle). Every prober subject
 *   is consumed by exactly one aggregator at a time, so two aggregators never write
 *   the same counter series concurrently.
 * - `probemesh_probe_duration_seconds` (no suffix) — the same durations as a native
 *   (sparse, exponential) histogram, when `native` is set (some endpoint may send them):
 *   one histogram sample per result, written to endpoints whose receiver accepts them.
 * - `probemesh_probe_jitter_seconds` — standard deviation of the last `jitter_window`
 *   probe durations of the series, to tell jitter from constant high latency.
 *
 * Series are grouped by (target id, prober) so stale markers can end them all when a
 * target is removed or moves away from the prober.
 *
 * A result is converted once: the start timestamps of the last {@link RECENT_RESULTS}
 * results of each (target, module, prober, zone, target labels) are kept, and a result
 * whose timestamp is among them — or older than all of them once that many were seen
 * — is a repeat (a JetStream redelivery, a message published twice): it produces no
 * samples and leaves the histogram and jitter state alone (re-deriving it would give
 * other values at an already written timestamp, which Prometheus refuses with a 400).
 * It is counted as `duplicate_result`. A result older than the newest but not seen
 * before (a slow probe published after a faster, later one) is still converted.
 */
import { targetId } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import { ConversionDrops, count, pointLabels, resultBaseLabels, resultPoints, ResultPoint, seconds, seriesKey, startMs } from './series';
import { encodeHistogram, EncodedHistogram, makeSeries, SeriesRef } from './write-request';
import { NativeHistogramState } from './native-histogram';

/** Native histogram settings of a {@link SeriesModel}. */
export interface NativeHistogramOptions {
  /** Initial schema (-4..8; 3 = buckets 2^(1/8) ≈ 9 % wide). */
  schema: number;
  /** Zero bucket width, seconds. */
  zeroThreshold: number;
  /** Most populated buckets per series; above it the schema is lowered. */
  maxBuckets: number;
}

/** Options of a {@link SeriesModel}. */
export interface SeriesModelOptions {
  /** `job` label value. */
  job: string;
  /** Histogram bucket upper bounds, seconds (sorted ascending here). */
  buckets: readonly number[];
  /** Durations kept per series for the jitter gauge. */
  jitterWindow: number;
  /** Most series (and derived states) kept; the oldest-created are forgotten first. */
  maxSeries: number;
  /** Called with the number of series forgotten each time the limit is hit. */
  onEvict?: (series: number) => void;
  /** Also produce native histogram samples (null/absent: classic histogram only). */
  native?: NativeHistogramOptions | null;
}

/** A sample produced from a result (before queueing). */
export interface ModelSample {
  /** The series. */
  s: SeriesRef;
  /** Value. */
  v: number;
  /** Timestamp, ms. */
  t: number;
  /** Native histogram (samples of native series only). */
  h?: EncodedHistogram;
}

/** Start timestamps remembered per result series to recognise a repeated result. */
export const RECENT_RESULTS = 64;

/** Histogram and jitter state of one result series. */
interface Derived {
  /** Start timestamps (ms) of the last results converted, a ring; 0 = empty slot. */
  recent: Float64Array;
  recentNext: number;
  /** Newest start timestamp converted. */
  newest: number;
  native: NativeHistogramState | null;
  counts: Float64Array;
  sum: number;
  count: number;
  window: Float64Array;
  filled: number;
  next: number;
}

/**
 * Records that a result starting at `t` (ms, > 0) is converted; false when it was
 * converted before (its timestamp is remembered, or older than every remembered one
 * once the ring is full).
 */
function remember(st: Derived, t: number): boolean {
  if (t <= st.newest) {
    const r = st.recent;
    let oldest = Infinity;
    for (let i = 0; i < r.length; i++) {
      const x = r[i]!;
      if (x === t) return false;
      if (x < oldest) oldest = x;
    }
    if (oldest > 0 && t < oldest) return false;
  } else st.newest = t;
  st.recent[st.recentNext] = t;
  st.recentNext = (st.recentNext + 1) % st.recent.length;
  return true;
}

/** Converts results into samples of interned series; see the file comment. */
export class SeriesModel {
  private readonly byCheapKey = new Map<string, SeriesRef>();
  /** The cheap keys interned per group, so forgetting a group does not scan every series. */
  private readonly cheapKeysOfGroup = new Map<string, Set<string>>();
  private readonly byKey = new Map<string, SeriesRef>();
  private readonly derived = new Map<string, Derived>();
  private readonly groups = new Map<string, Set<SeriesRef>>();
  private readonly derivedKeys = new Map<string, Set<string>>();
  private readonly buckets: number[];
  private readonly leValues: string[];

  constructor(private readonly o: SeriesModelOptions) {
    this.buckets = [...new Set(o.buckets)].filter((b) => Number.isFinite(b)).sort((a, b) => a - b);
    this.leValues = [...this.buckets.map((b) => String(b)), '+Inf'];
  }

  /** Number of interned series. */
  get seriesCount(): number {
    return this.byKey.size;
  }

  /** Converts a batch; appends samples to `out` and counts what was left out into `drops`. */
  convert(batch: probemesh.v1.IResultBatch, drops: ConversionDrops, out: ModelSample[]): void {
    const first = out.length;
    for (const r of batch.results ?? []) {
      const t = startMs(r);
      if (t <= 0) {
        count(drops.samples, 'no_timestamp');
        continue;
      }
      const prober = r.prober || batch.prober || '';
      const instance = r.target ?? '';
      const module = r.module ?? '';
      const group = `${r.targetId || targetId(module, instance)}\n${prober}`;
      let cheap = `${instance}\xff${module}\xff${prober}\xff${r.zone || batch.zone || ''}\xff`;
      if (r.labels) for (const k in r.labels) cheap += `${k}\xfe${r.labels[k]}\xfe`;
      const st = this.state(cheap, group);
      if (!remember(st, t)) {
        count(drops.samples, 'duplicate_result');
        continue;
      }
      let base: ReturnType<typeof resultBaseLabels> | undefined;
      const intern = (p: ResultPoint, ck: string, native = false): SeriesRef => {
        let s = this.byCheapKey.get(ck);
        if (s) return s;
        base ??= resultBaseLabels(r, { job: this.o.job }, drops, batch);
        const labels = pointLabels(base, p);
        const key = seriesKey(labels);
        s = this.byKey.get(key);
        if (!s) {
          s = makeSeries(labels, group, native);
          this.byKey.set(key, s);
          let g = this.groups.get(group);
          if (!g) this.groups.set(group, (g = new Set()));
          g.add(s);
        }
        this.byCheapKey.set(ck, s);
        let cks = this.cheapKeysOfGroup.get(s.group);
        if (!cks) this.cheapKeysOfGroup.set(s.group, (cks = new Set()));
        cks.add(ck);
        return s;
      };
      for (const p of resultPoints(r, drops)) {
        let ck = `${cheap}\x01${p.name}`;
        if (p.own) ck += `\x01${p.own[0]}=${p.own[1]}`;
        if (p.user) for (const k in p.user) ck += `\x02${k}=${p.user[k]}`;
        out.push({ s: intern(p, ck), v: p.value, t });
      }
      this.derive(st, cheap, seconds(r.durationNs), t, intern, out);
    }
    for (let i = first; i < out.length; i++) {
      const x = out[i]!;
      if (x.t > x.s.lastTs) x.s.lastTs = x.t;
    }
    this.evict();
  }

  /** The derived state of a result series, created when missing. */
  private state(cheap: string, group: string): Derived {
    let st = this.derived.get(cheap);
    if (!st) {
      const nh = this.o.native;
      st = {
        recent: new Float64Array(RECENT_RESULTS),
        recentNext: 0,
        newest: 0,
        native: nh ? new NativeHistogramState(nh.schema, nh.zeroThreshold, nh.maxBuckets) : null,
        counts: new Float64Array(this.buckets.length + 1),
        sum: 0,
        count: 0,
        window: new Float64Array(this.o.jitterWindow),
        filled: 0,
        next: 0,
      };
      this.derived.set(cheap, st);
      let keys = this.derivedKeys.get(group);
      if (!keys) this.derivedKeys.set(group, (keys = new Set()));
      keys.add(cheap);
    }
    return st;
  }

  private derive(st: Derived, cheap: string, d: number, t: number, intern: (p: ResultPoint, ck: string, native?: boolean) => SeriesRef, out: ModelSample[]): void {
    for (let i = 0; i < this.buckets.length; i++) if (d <= this.buckets[i]!) st.counts[i]!++;
    st.counts[this.buckets.length]!++;
    st.sum += d;
    st.count++;
    const name = 'probemesh_probe_duration_seconds';
    for (let i = 0; i < this.leValues.length; i++) {
      const le = this.leValues[i]!;
      out.push({ s: intern({ name: `${name}_bucket`, value: 0, own: ['le', le] }, `${cheap}\x01${name}_bucket\x01${le}`), v: st.counts[i]!, t });
    }
    out.push({ s: intern({ name: `${name}_sum`, value: 0 }, `${cheap}\x01${name}_sum`), v: st.sum, t });
    out.push({ s: intern({ name: `${name}_count`, value: 0 }, `${cheap}\x01${name}_count`), v: st.count, t });
    if (st.native) {
      st.native.observe(d);
      out.push({ s: intern({ name, value: 0 }, `${cheap}\x01${name}\x01native`, true), v: 0, t, h: encodeHistogram(st.native.snapshot()) });
    }
    st.window[st.next] = d;
    st.next = (st.next + 1) % st.window.length;
    st.filled = Math.min(st.filled + 1, st.window.length);
    if (st.filled >= 2) {
      let mean = 0;
      for (let i = 0; i < st.filled; i++) mean += st.window[i]!;
      mean /= st.filled;
      let sq = 0;
      for (let i = 0; i < st.filled; i++) sq += (st.window[i]! - mean) ** 2;
      out.push({ s: intern({ name: 'probemesh_probe_jitter_seconds', value: 0 }, `${cheap}\x01jitter`), v: Math.sqrt(sq / st.filled), t });
    }
  }

  /** Series of `group` (`<target id>\n<prober>`) that have samples queued or written. */
  groupSeries(group: string): SeriesRef[] {
    return [...(this.groups.get(group) ?? [])].filter((s) => s.lastTs > 0);
  }

  /** Groups whose target id is `id` (any prober). */
  groupsOfTarget(id: string): string[] {
    const out: string[] = [];
    for (const g of this.groups.keys()) if (g.startsWith(`${id}\n`)) out.push(g);
    return out;
  }

  /** Groups of `prober`. */
  groupsOfProber(prober: string): string[] {
    const out: string[] = [];
    for (const g of this.groups.keys()) if (g.endsWith(`\n${prober}`)) out.push(g);
    return out;
  }

  /** Forgets a group after its stale markers were queued: its series and derived state start afresh if it comes back. */
  forgetGroup(group: string): void {
    const g = this.groups.get(group);
    if (!g) return;
    this.groups.delete(group);
    for (const s of g) this.byKey.delete(s.key);
    // Per group, not a scan of every series: when a prober dies its thousands of groups are
    // forgotten at once, and a scan each (groups × series) blocked the event loop for minutes.
    for (const ck of this.cheapKeysOfGroup.get(group) ?? []) this.byCheapKey.delete(ck);
    this.cheapKeysOfGroup.delete(group);
    for (const k of this.derivedKeys.get(group) ?? []) this.derived.delete(k);
    this.derivedKeys.delete(group);
  }

  private evict(): void {
    const over = this.byKey.size - this.o.maxSeries;
    if (over <= 0) return;
    let n = 0;
    for (const [key, s] of this.byKey) {
      if (n >= over + Math.ceil(this.o.maxSeries / 10)) break;
      n++;
      this.byKey.delete(key);
      this.groups.get(s.group)?.delete(s);
    }
    this.o.onEvict?.(n);
    for (const [ck, s] of this.byCheapKey) if (!this.byKey.has(s.key) || this.byKey.get(s.key) !== s) this.byCheapKey.delete(ck);
    while (this.derived.size > this.o.maxSeries) {
      const first = this.derived.keys().next().value as string;
      this.derived.delete(first);
    }
  }
}
