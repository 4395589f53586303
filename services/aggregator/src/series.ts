/**
 * The series model: a ResultBatch becomes Prometheus samples with blackbox_exporter's
 * metric names, and samples become remote-write TimeSeries (one per label set, samples
 * in timestamp order).
 */
import { probemesh, prometheus } from '@probemesh/proto';
import { toBigInt } from '@probemesh/common';
import type { NativeHistogram } from './native-histogram';

/** A label pair. */
export interface Label {
  /** Label name (`__name__` for the metric name). */
  name: string;
  /** Label value, never empty. */
  value: string;
}

/** One sample of one series. */
export interface SeriesSample {
  /** Labels sorted by name, `__name__` included. */
  labels: Label[];
  /** Sample value. */
  value: number;
  /** Milliseconds since the epoch (integer). */
  timestampMs: number;
}

/** Why a label was left out of a series. */
export type LabelDropReason = 'reserved' | 'invalid_name' | 'empty_value';
/**
 * Why a whole sample or result was left out. `duplicate_result` counts results (not
 * samples) already processed for their series: a redelivered or repeated message.
 */
export type SampleDropReason = 'invalid_metric_name' | 'no_timestamp' | 'duplicate_result';

/** What was left out while converting, by reason (for metrics). */
export interface ConversionDrops {
  /** Dropped labels by reason. */
  labels: Partial<Record<LabelDropReason, number>>;
  /** Dropped samples (or results, for `no_timestamp`) by reason. */
  samples: Partial<Record<SampleDropReason, number>>;
}

/** Options of the conversion. */
export interface SeriesOptions {
  /** Value of the `job` label. */
  job: string;
}

/** Labels every series carries; a target's or gauge's own labels may not override them. */
export const RESERVED_LABELS: ReadonlySet<string> = new Set(['__name__', 'instance', 'module', 'prober', 'zone', 'job']);

const LABEL_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const METRIC_NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/** True when `name` may be a user label name (valid, not `__`-prefixed). */
export function isValidLabelName(name: string): boolean {
  return LABEL_NAME_RE.test(name) && !name.startsWith('__');
}

/** True when `name` is a valid Prometheus metric name. */
export function isValidMetricName(name: string): boolean {
  return METRIC_NAME_RE.test(name);
}

/** Adds one to `m[k]`. */
export function count<K extends string>(m: Partial<Record<K, number>>, k: K): void {
  m[k] = (m[k] ?? 0) + 1;
}

/** Builds a sorted label list; empty values are dropped (Prometheus treats them as absent). */
export class LabelSetBuilder {
  private readonly map = new Map<string, string>();
  constructor(private readonly drops: ConversionDrops) {}

  /** Sets a label we own (name known valid). */
  set(name: string, value: string): this {
    if (value === '') {
      if (name !== '__name__') count(this.drops.labels, 'empty_value');
      this.map.delete(name);
    } else this.map.set(name, value);
    return this;
  }

  /** Adds user-supplied labels, refusing reserved and invalid names and existing keys. */
  addUser(labels: { [k: string]: string } | null | undefined): this {
    for (const [name, value] of Object.entries(labels ?? {})) {
      if (RESERVED_LABELS.has(name) || this.map.has(name)) count(this.drops.labels, 'reserved');
      else if (!isValidLabelName(name)) count(this.drops.labels, 'invalid_name');
      else if (value === '' || value === undefined || value === null) count(this.drops.labels, 'empty_value');
      else this.map.set(name, value);
    }
    return this;
  }

  clone(): LabelSetBuilder {
    const b = new LabelSetBuilder(this.drops);
    for (const [k, v] of this.map) b.map.set(k, v);
    return b;
  }

  build(): Label[] {
    return [...this.map].map(([name, value]) => ({ name, value })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
}

type NsValue = Parameters<typeof toBigInt>[0] | bigint;

/** A 64-bit protobuf value as bigint, without toBigInt's string round trip (hot path). */
function nsBig(v: NsValue): bigint {
  if (v === null || v === undefined) return 0n;
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return BigInt(Math.trunc(v));
  return (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
}

/** Start of a probe in integer milliseconds since the epoch (truncated). */
export function startMs(result: probemesh.v1.IProbeResult): number {
  return Number(nsBig(result.startUnixNano) / 1_000_000n);
}

/** Nanoseconds (Long/number/bigint) to seconds. */
export function seconds(ns: NsValue): number {
  if (ns !== null && typeof ns === 'object' && ns.high >>> 0 < 0x200000) {
    const n = (ns.high >>> 0) * 4294967296 + (ns.low >>> 0);
    return Math.floor(n / 1e9) + (n % 1e9) / 1e9;
  }
  // Split to keep sub-µs precision for durations beyond 2^53 ns (~104 days).
  const v = nsBig(ns);
  return Number(v / 1_000_000_000n) + Number(v % 1_000_000_000n) / 1e9;
}

/** One value of a result before labels are attached: metric name, value and its extra labels. */
export interface ResultPoint {
  /** Metric name. */
  name: string;
  /** Sample value. */
  value: number;
  /** One label we own (e.g. `phase`), added as is. */
  own?: readonly [string, string];
  /** User-supplied labels (gauge labels), validated like target labels. */
  user?: { [k: string]: string } | null;
}

/**
 * The values of one result in blackbox naming (see DESIGN.md): success, duration,
 * phases, HTTP status/version, failure info, module gauges, redirect hops, kernel TCP
 * measurements (only when the prober had them) and the clock error bound.
 */
export function resultPoints(result: probemesh.v1.IProbeResult, drops: ConversionDrops): ResultPoint[] {
  const out: ResultPoint[] = [
    { name: 'probe_success', value: result.success ? 1 : 0 },
    { name: 'probe_duration_seconds', value: seconds(result.durationNs) },
  ];
  // blackbox names phases per protocol: probe_http_duration_seconds, probe_dns_…, probe_grpc_…, probe_icmp_….
  const phaseMetric = `probe_${/^[a-z0-9]+$/.test(result.protocol ?? '') ? result.protocol : 'http'}_duration_seconds`;
  for (const ph of result.phases ?? []) out.push({ name: phaseMetric, value: seconds(ph.durationNs), own: ['phase', ph.name ?? ''] });
  if ((result.httpStatusCode ?? 0) > 0) out.push({ name: 'probe_http_status_code', value: result.httpStatusCode! });
  if ((result.httpVersion ?? 0) > 0) out.push({ name: 'probe_http_version', value: result.httpVersion! });
  if (!result.success) out.push({ name: 'probe_failure_info', value: 1, own: ['failure_code', result.failureCode || 'error'] });
  let redirectsGauge = false;
  for (const g of result.gauges ?? []) {
    if (!g.name || !isValidMetricName(g.name)) {
      count(drops.samples, 'invalid_metric_name');
      continue;
    }
    if (g.name === 'probe_http_redirects') redirectsGauge = true;
    out.push({ name: g.name, value: g.value ?? 0, user: g.labels });
  }
  const hops = result.hops ?? [];
  if (hops.length > 0) {
    if (!redirectsGauge) out.push({ name: 'probe_http_redirects', value: Math.max(0, hops.length - 1) });
    hops.forEach((h, i) => out.push({ name: 'probemesh_http_redirect_hop_seconds', value: seconds(h.durationNs), own: ['hop', String(i)] }));
  }
  const k = result.kernel;
  if (k) {
    out.push({ name: 'probe_tcp_kernel_connect_seconds', value: seconds(k.connectNs) });
    if (nsBig(k.firstByteNs) > 0n) out.push({ name: 'probe_tcp_kernel_first_byte_seconds', value: seconds(k.firstByteNs) });
    out.push({ name: 'probe_tcp_srtt_seconds', value: (k.srttUs ?? 0) / 1e6 });
    out.push({ name: 'probe_tcp_rttvar_seconds', value: (k.rttvarUs ?? 0) / 1e6 });
    out.push({ name: 'probe_tcp_retransmits', value: k.retransmits ?? 0 });
    out.push({ name: 'probe_tcp_syn_retransmits', value: k.synRetransmits ?? 0 });
    out.push({ name: 'probe_tcp_resets', value: k.resets ?? 0 });
  }
  const bound = nsBig(result.clockErrorBoundNs);
  if (bound > 0n) out.push({ name: 'probe_clock_error_bound_seconds', value: seconds(bound) });
  return out;
}

/** The label builder of a result's series (instance, module, prober, zone, job, target labels). */
export function resultBaseLabels(result: probemesh.v1.IProbeResult, opts: SeriesOptions, drops: ConversionDrops, batch?: probemesh.v1.IResultBatch): LabelSetBuilder {
  return new LabelSetBuilder(drops)
    .set('instance', result.target ?? '')
    .set('module', result.module ?? '')
    .set('prober', result.prober || batch?.prober || '')
    .set('zone', result.zone || batch?.zone || '')
    .set('job', opts.job)
    .addUser(result.labels);
}

/** Full sorted labels of `point` on top of `base`. */
export function pointLabels(base: LabelSetBuilder, point: ResultPoint): Label[] {
  const b = base.clone().set('__name__', point.name);
  if (point.own) b.set(point.own[0], point.own[1]);
  if (point.user) b.addUser(point.user);
  return b.build();
}

/**
 * Converts one probe result into samples. `batch` supplies prober and zone when the
 * result leaves them empty. Drops are counted into `drops`.
 */
export function resultSamples(result: probemesh.v1.IProbeResult, opts: SeriesOptions, drops: ConversionDrops, batch?: probemesh.v1.IResultBatch): SeriesSample[] {
  const ts = startMs(result);
  if (ts <= 0) {
    count(drops.samples, 'no_timestamp');
    return [];
  }
  const base = resultBaseLabels(result, opts, drops, batch);
  return resultPoints(result, drops).map((p) => ({ labels: pointLabels(base, p), value: p.value, timestampMs: ts }));
}

/** Converts every result of a batch; returns the samples and what was dropped. */
export function batchSamples(batch: probemesh.v1.IResultBatch, opts: SeriesOptions): { samples: SeriesSample[]; drops: ConversionDrops } {
  const drops: ConversionDrops = { labels: {}, samples: {} };
  const samples: SeriesSample[] = [];
  for (const r of batch.results ?? []) for (const s of resultSamples(r, opts, drops, batch)) samples.push(s);
  return { samples, drops };
}

/** A stable key of a sorted label list. */
export function seriesKey(labels: readonly Label[]): string {
  let k = '';
  for (const l of labels) k += `${l.name}\xff${l.value}\xfe`;
  return k;
}

/** A series with its samples, oldest first. */
export interface TimeSeries {
  /** Labels sorted by name. */
  labels: Label[];
  /** Samples in timestamp order, one per timestamp. */
  samples: { value: number; timestampMs: number }[];
  /** Native histogram samples in timestamp order (a series has samples or histograms). */
  histograms?: { histogram: NativeHistogram; timestampMs: number }[];
}

/**
 * Groups samples by label set: one TimeSeries per series, samples sorted by
 * timestamp. Two samples of a series at the same timestamp would make Prometheus
 * reject the whole request, so the later one given wins.
 */
export function groupSeries(samples: Iterable<SeriesSample>): TimeSeries[] {
  const byKey = new Map<string, { labels: Label[]; byTs: Map<number, number> }>();
  for (const s of samples) {
    const key = seriesKey(s.labels);
    let e = byKey.get(key);
    if (!e) byKey.set(key, (e = { labels: s.labels, byTs: new Map() }));
    e.byTs.set(s.timestampMs, s.value);
  }
  return [...byKey.values()].map((e) => ({
    labels: e.labels,
    samples: [...e.byTs].map(([timestampMs, value]) => ({ value, timestampMs })).sort((a, b) => a.timestampMs - b.timestampMs),
  }));
}

/** Number of samples in `series`. */
export function sampleCount(series: readonly TimeSeries[]): number {
  let n = 0;
  for (const s of series) n += s.samples.length + (s.histograms?.length ?? 0);
  return n;
}

/** Splits series into chunks of at most `max` samples, splitting a long series in order. */
export function chunkSeries(series: readonly TimeSeries[], max: number): TimeSeries[][] {
  const chunks: TimeSeries[][] = [];
  let cur: TimeSeries[] = [];
  let n = 0;
  for (const s of series) {
    let i = 0;
    while (i < s.samples.length) {
      const take = Math.min(max - n, s.samples.length - i);
      cur.push({ labels: s.labels, samples: s.samples.slice(i, i + take) });
      n += take;
      i += take;
      if (n >= max) {
        chunks.push(cur);
        cur = [];
        n = 0;
      }
    }
  }
  if (cur.length > 0) chunks.push(cur);
  return chunks;
}

/** A native histogram as a protobufjs `prometheus.IHistogram` (integer histogram, positive buckets). */
export function toHistogramProto(h: NativeHistogram, timestampMs: number): prometheus.IHistogram {
  return {
    countInt: h.count,
    sum: h.sum,
    schema: h.schema,
    zeroThreshold: h.zeroThreshold,
    zeroCountInt: h.zeroCount,
    positiveSpans: h.spans.map((sp) => ({ offset: sp.offset, length: sp.length })),
    positiveDeltas: h.deltas,
    timestamp: timestampMs,
  };
}

/** Converts series to the remote-write protobuf message. */
export function toWriteRequest(series: readonly TimeSeries[]): prometheus.IWriteRequest {
  return {
    timeseries: series.map((s) => {
      const ts: prometheus.ITimeSeries = { labels: s.labels, samples: s.samples.map((x) => ({ value: x.value, timestamp: x.timestampMs })) };
      if (s.histograms?.length) ts.histograms = s.histograms.map((x) => toHistogramProto(x.histogram, x.timestampMs));
      return ts;
    }),
  };
}
