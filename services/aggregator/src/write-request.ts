/**
 * The hot path of remote_write: interned series (labels validated, sorted and
 * protobuf-encoded once) and a hand-rolled `prometheus.WriteRequest` encoder that
 * writes queued samples straight into one Buffer. protobufjs would build an object
 * per label and sample for every request; this encoder is several times faster (see
 * BENCHMARKS.md "Pipeline throughput") and produces the same bytes (tested).
 */
import { Label, seriesKey } from './series';
import { NativeHistogram } from './native-histogram';

/** An interned series: its labels and their pre-encoded protobuf form. */
export interface SeriesRef {
  /** Stable key of the sorted labels. */
  readonly key: string;
  /** Labels sorted by name, `__name__` included. */
  readonly labels: readonly Label[];
  /** `TimeSeries.labels` entries, encoded (field 1, repeated). */
  readonly encodedLabels: Buffer;
  /** 32-bit hash of `key` (shard selection). */
  readonly hash: number;
  /** Group the series belongs to (target id + prober), for stale markers; '' when none. */
  readonly group: string;
  /** True for a native histogram series: its samples (and stale markers) are written as `histograms`. */
  readonly native: boolean;
  /**
   * True for a series whose values the aggregator derives from earlier results
   * (`probemesh_probe_duration_seconds*`, `probemesh_probe_jitter_seconds`): re-processing
   * a result gives another value at the same timestamp, which Prometheus refuses.
   */
  readonly derived: boolean;
  /** Newest sample timestamp queued for this series, ms (0 = none yet). */
  lastTs: number;
}

/** One queued sample. `stale` samples are written as Prometheus staleness markers. */
export interface QueuedSample<T = unknown> {
  /** The series. */
  readonly s: SeriesRef;
  /** The value (ignored when stale). */
  readonly v: number;
  /** Timestamp, ms since the epoch. */
  readonly t: number;
  /** True for a staleness marker (NaN 0x7ff0000000000002). */
  readonly stale: boolean;
  /** What to tell when the sample is done with (the delivery tracker); null for our own samples. */
  readonly owner: T | null;
  /** The native histogram of a sample of a `native` series (absent for stale markers). */
  readonly h?: EncodedHistogram;
}

/** A native histogram sample and its encoded `Histogram` fields (all but the timestamp). */
export interface EncodedHistogram {
  /** The histogram. */
  readonly value: NativeHistogram;
  /** `prometheus.Histogram` fields 1–14 as protobuf; the timestamp (15) is appended per request. */
  readonly body: Buffer;
}

/** FNV-1a 32-bit hash of a string. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function varintSize(n: number): number {
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 128) {
    buf[pos++] = (n % 128) | 128;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/** Encodes the repeated `labels` field of a TimeSeries (field 1, each a Label{name=1, value=2}). */
export function encodeLabels(labels: readonly Label[]): Buffer {
  const parts: Buffer[] = [];
  for (const l of labels) {
    const name = Buffer.from(l.name, 'utf8');
    const value = Buffer.from(l.value, 'utf8');
    const inner = 1 + varintSize(name.length) + name.length + 1 + varintSize(value.length) + value.length;
    const b = Buffer.allocUnsafe(1 + varintSize(inner) + inner);
    let p = 0;
    b[p++] = 0x0a;
    p = writeVarint(b, p, inner);
    b[p++] = 0x0a;
    p = writeVarint(b, p, name.length);
    p += name.copy(b, p);
    b[p++] = 0x12;
    p = writeVarint(b, p, value.length);
    value.copy(b, p);
    parts.push(b);
  }
  return Buffer.concat(parts);
}

/** Creates a SeriesRef for sorted `labels`. */
export function makeSeries(labels: readonly Label[], group = '', native = false): SeriesRef {
  const key = seriesKey(labels);
  const name = labels.find((l) => l.name === '__name__')?.value ?? '';
  const derived = name.startsWith('probemesh_probe_duration_seconds') || name === 'probemesh_probe_jitter_seconds';
  return { key, labels, encodedLabels: encodeLabels(labels), hash: hash32(key), group, native, derived, lastTs: 0 };
}

/** Zigzag encoding of a signed integer (sint32/sint64), exact up to 2^52. */
function zigzag(n: number): number {
  return n >= 0 ? n * 2 : -n * 2 - 1;
}

/**
 * Encodes a native histogram as `prometheus.Histogram` fields 1–14 (count_int, sum,
 * schema, zero_threshold, zero_count_int, positive_spans, positive_deltas) in field
 * order, as protobufjs writes them.
 */
export function encodeHistogram(h: NativeHistogram): EncodedHistogram {
  const spanSizes = h.spans.map((sp) => 1 + varintSize(zigzag(sp.offset)) + 1 + varintSize(sp.length));
  let deltasSize = 0;
  for (const d of h.deltas) deltasSize += varintSize(zigzag(d));
  let size = 1 + varintSize(h.count) + 9 + 1 + varintSize(zigzag(h.schema)) + 9 + 1 + varintSize(h.zeroCount);
  for (const s of spanSizes) size += 1 + varintSize(s) + s;
  if (h.deltas.length > 0) size += 1 + varintSize(deltasSize) + deltasSize;
  const b = Buffer.allocUnsafe(size);
  let p = 0;
  b[p++] = 0x08;
  p = writeVarint(b, p, h.count);
  b[p++] = 0x19;
  b.writeDoubleLE(h.sum, p);
  p += 8;
  b[p++] = 0x20;
  p = writeVarint(b, p, zigzag(h.schema));
  b[p++] = 0x29;
  b.writeDoubleLE(h.zeroThreshold, p);
  p += 8;
  b[p++] = 0x30;
  p = writeVarint(b, p, h.zeroCount);
  h.spans.forEach((sp, i) => {
    b[p++] = 0x5a;
    p = writeVarint(b, p, spanSizes[i]!);
    b[p++] = 0x08;
    p = writeVarint(b, p, zigzag(sp.offset));
    b[p++] = 0x10;
    p = writeVarint(b, p, sp.length);
  });
  if (h.deltas.length > 0) {
    b[p++] = 0x62;
    p = writeVarint(b, p, deltasSize);
    for (const d of h.deltas) p = writeVarint(b, p, zigzag(d));
  }
  return { value: h, body: b };
}

/** A native histogram stale marker: count_int 0, sum = the staleness NaN (what Prometheus itself sends). */
const STALE_HISTOGRAM_BODY = Buffer.from([0x08, 0x00, 0x19, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf0, 0x7f]);

/** Samples of one request grouped by series, each series' samples in timestamp order. */
export type GroupedSamples<T> = Map<SeriesRef, QueuedSample<T>[]>;

/**
 * Groups samples by series and sorts each series by timestamp; of two samples of a
 * series at one timestamp the later given wins (Prometheus would reject the request).
 * Returns the groups and the samples left out as duplicates.
 */
export function groupSamples<T>(samples: readonly QueuedSample<T>[]): { groups: GroupedSamples<T>; duplicates: QueuedSample<T>[] } {
  const groups: GroupedSamples<T> = new Map();
  const duplicates: QueuedSample<T>[] = [];
  for (const x of samples) {
    const g = groups.get(x.s);
    if (g) g.push(x);
    else groups.set(x.s, [x]);
  }
  for (const [s, g] of groups) {
    if (g.length < 2) continue;
    let sorted = true;
    for (let i = 1; i < g.length; i++) if (g[i]!.t <= g[i - 1]!.t) sorted = false;
    if (sorted) continue;
    const byTs = new Map<number, QueuedSample<T>>();
    for (const x of g) {
      const prev = byTs.get(x.t);
      if (prev) duplicates.push(prev);
      byTs.set(x.t, x);
    }
    groups.set(s, [...byTs.values()].sort((a, b) => a.t - b.t));
  }
  return { groups, duplicates };
}

const STALE_HI = 0x7ff00000;
const STALE_LO = 0x00000002;

function histogramBody<T>(x: QueuedSample<T>): Buffer {
  if (x.stale || !x.h) return STALE_HISTOGRAM_BODY;
  return x.h.body;
}

/**
 * Encodes grouped samples as an (uncompressed) `prometheus.WriteRequest`. Samples of
 * a `native` series go to its `histograms` (field 4, a stale marker as a histogram
 * whose sum is the staleness NaN), the others to `samples` (field 2).
 */
export function encodeGrouped<T>(groups: GroupedSamples<T>): Buffer {
  let total = 0;
  const sizes: number[] = [];
  for (const [s, g] of groups) {
    let size = s.encodedLabels.length;
    if (s.native) {
      for (const x of g) {
        const inner = histogramBody(x).length + 1 + varintSize(x.t);
        size += 1 + varintSize(inner) + inner;
      }
    } else for (const x of g) size += 2 + 10 + varintSize(x.t);
    sizes.push(size);
    total += 1 + varintSize(size) + size;
  }
  const buf = Buffer.allocUnsafe(total);
  let p = 0;
  let i = 0;
  for (const [s, g] of groups) {
    const size = sizes[i++]!;
    buf[p++] = 0x0a;
    p = writeVarint(buf, p, size);
    p += s.encodedLabels.copy(buf, p);
    if (s.native) {
      for (const x of g) {
        const body = histogramBody(x);
        buf[p++] = 0x22;
        p = writeVarint(buf, p, body.length + 1 + varintSize(x.t));
        p += body.copy(buf, p);
        buf[p++] = 0x78;
        p = writeVarint(buf, p, x.t);
      }
      continue;
    }
    for (const x of g) {
      buf[p++] = 0x12;
      buf[p++] = 10 + varintSize(x.t);
      buf[p++] = 0x09;
      if (x.stale) {
        buf.writeUInt32LE(STALE_LO, p);
        buf.writeUInt32LE(STALE_HI, p + 4);
      } else buf.writeDoubleLE(x.v, p);
      p += 8;
      buf[p++] = 0x10;
      p = writeVarint(buf, p, x.t);
    }
  }
  return buf;
}

/** Number of samples in `groups`. */
export function groupedCount<T>(groups: GroupedSamples<T>): number {
  let n = 0;
  for (const g of groups.values()) n += g.length;
  return n;
}
