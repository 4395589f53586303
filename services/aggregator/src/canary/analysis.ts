/**
 * One canary analysis: reads the raw samples of both arms from Prometheus (or any
 * {@link SampleSource}), joins failed probes in as +Infinity latency, runs the judge
 * and the attribution, and returns the verdict with its windows.
 */
import { InvalidArgumentError } from '@probemesh/common';
import type { JudgeConfig } from './config';
import { attribute } from './attribution';
import { CanaryVerdict, judge, MetricSamples } from './judge';
import type { ArmPair } from './metric-tests';
import { RawSeries, SampleSource, probeJoinKey } from './prometheus';
import { parseSelector, renderSelector } from './selector';

/** What to analyse. */
export interface CanaryAnalysisRequest {
  /** Baseline selector, e.g. `{release="stable"}` (may be empty with `baselineDaysAgo`). */
  baselineSelector: string;
  /** Canary selector, e.g. `{release="canary"}`. */
  canarySelector: string;
  /** Window length, ms. */
  windowMs: number;
  /** End of the window, ms since the epoch. */
  endMs: number;
  /** > 0: the baseline is the same window this many days earlier (selector: the baseline's, or else the canary's). @default 0 */
  baselineDaysAgo?: number;
  /** Look number within a run (1-based). @default 1 */
  look?: number;
}

const DAY_MS = 86_400_000;
const PHASE_SERIES = ['resolve', 'connect', 'tls', 'processing', 'transfer'];

/** Validates a request; throws InvalidArgumentError naming the field. */
export function validateAnalysisRequest(r: CanaryAnalysisRequest): { baseline: string[]; canary: string[] } {
  const days = r.baselineDaysAgo ?? 0;
  if (!Number.isInteger(days) || days < 0 || days > 400) throw new InvalidArgumentError('baseline_days_ago', `must be an integer 0..400, got ${days}`);
  const canary = parseSelector(r.canarySelector, 'canary_selector');
  const baseline = days > 0 && r.baselineSelector.trim() === '' ? canary : parseSelector(r.baselineSelector, 'baseline_selector');
  if (canary.metric !== undefined) throw new InvalidArgumentError('canary_selector', `give label matchers only (the judge adds the metric names), e.g. {release="canary"}, not ${canary.metric}{…}`);
  if (baseline.metric !== undefined) throw new InvalidArgumentError('baseline_selector', `give label matchers only, e.g. {release="stable"}, not ${baseline.metric}{…}`);
  if (days === 0 && canary.matchers.join(',') === baseline.matchers.join(',')) throw new InvalidArgumentError('canary_selector', 'is the same as baseline_selector (set baseline_days_ago for a historical baseline)');
  if (!(r.windowMs >= 1000) || r.windowMs > 31 * DAY_MS) throw new InvalidArgumentError('window_seconds', `must be between 1s and 31d, got ${r.windowMs / 1000}s`);
  if (!(r.endMs > 0)) throw new InvalidArgumentError('end_unix_ms', 'must be > 0');
  return { baseline: baseline.matchers, canary: canary.matchers };
}

/** Runs one analysis. */
export async function analyzeCanary(source: SampleSource, config: JudgeConfig, req: CanaryAnalysisRequest, opts: { signal?: AbortSignal; nowMs?: number } = {}): Promise<CanaryVerdict> {
  const arms = validateAnalysisRequest(req);
  const days = req.baselineDaysAgo ?? 0;
  const armEnd = { baseline: req.endMs - days * DAY_MS, canary: req.endMs };
  const cache = new Map<string, Promise<RawSeries[]>>();
  const read = (arm: 'baseline' | 'canary', metric: string, matchers: readonly string[]) => {
    const sel = renderSelector(metric, arms[arm], matchers);
    const key = `${arm}|${sel}`;
    let p = cache.get(key);
    if (!p) cache.set(key, (p = source.rawSamples(sel, req.windowMs, armEnd[arm], opts.signal)));
    return p;
  };
  const samples = new Map<string, ArmPair>();
  await Promise.all(
    config.metrics.map(async (spec) => {
      const pair = await Promise.all(
        (['baseline', 'canary'] as const).map(async (arm) => {
          const series = await read(arm, spec.metric, spec.matchers);
          if (spec.kind === 'error_rate') return flatValues(series);
          if (!spec.failuresAsInfinity) return flatValues(series).filter((v) => !Number.isNaN(v));
          return withFailures(series, await read(arm, 'probe_success', spec.matchers));
        }),
      );
      samples.set(spec.name, { baseline: pair[0]!, canary: pair[1]! });
    }),
  );
  const verdict = judge(config, samples as MetricSamples, { look: req.look, nowMs: opts.nowMs });
  if (config.attribution) {
    const phases = new Map<string, { baseline: number[]; canary: number[] }>();
    const [bPhases, cPhases, ...kernel] = await Promise.all([
      read('baseline', 'probe_http_duration_seconds', []),
      read('canary', 'probe_http_duration_seconds', []),
      ...['probe_tcp_kernel_connect_seconds', 'probe_tcp_srtt_seconds'].flatMap((m) => [read('baseline', m, []), read('canary', m, [])]),
    ]);
    for (const ph of PHASE_SERIES) {
      phases.set(`phase_${ph}`, { baseline: flatValues(bPhases!.filter((s) => s.labels.phase === ph)), canary: flatValues(cPhases!.filter((s) => s.labels.phase === ph)) });
    }
    ['probe_tcp_kernel_connect_seconds', 'probe_tcp_srtt_seconds'].forEach((m, i) => phases.set(m, { baseline: flatValues(kernel[2 * i]!), canary: flatValues(kernel[2 * i + 1]!) }));
    verdict.attribution = attribute(phases);
  }
  verdict.window = {
    baseline: { selector: `{${arms.baseline.join(',')}}`, startMs: armEnd.baseline - req.windowMs, endMs: armEnd.baseline },
    canary: { selector: `{${arms.canary.join(',')}}`, startMs: armEnd.canary - req.windowMs, endMs: armEnd.canary },
  };
  return verdict;
}

function flatValues(series: RawSeries[]): number[] {
  const out: number[] = [];
  for (const s of series) for (const v of s.values) if (!Number.isNaN(v)) out.push(v);
  return out;
}

/**
 * Probe durations with failed probes as +Infinity: a duration sample whose probe
 * (same series, same timestamp) has probe_success 0 becomes +Infinity, and a failed
 * probe without a duration sample is added as +Infinity. Failures are never dropped.
 */
export function withFailures(durations: RawSeries[], success: RawSeries[]): number[] {
  const failed = new Set<string>();
  for (const s of success) {
    const k = probeJoinKey(s.labels);
    for (let i = 0; i < s.values.length; i++) if (s.values[i] === 0) failed.add(`${k}@${s.timestampsMs[i]}`);
  }
  const out: number[] = [];
  let matched = 0;
  for (const s of durations) {
    const k = probeJoinKey(s.labels);
    for (let i = 0; i < s.values.length; i++) {
      const v = s.values[i]!;
      if (failed.has(`${k}@${s.timestampsMs[i]}`)) {
        out.push(Infinity);
        matched++;
      } else if (!Number.isNaN(v)) out.push(v);
    }
  }
  for (let i = matched; i < failed.size; i++) out.push(Infinity);
  return out;
}
