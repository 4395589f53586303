/**
 * A continuous canary run: `looks` analyses `interval` apart, each over the data since
 * the run started (or a sliding window), with the false-FAIL budget spent over the
 * looks. Every verdict is written to Prometheus (remote_write) as
 * probemesh_canary_verdict / _score / _metric_effect_ratio; a FAIL calls the rollback
 * webhooks and (by default) ends the run.
 */
import type { Logger } from '@probemesh/common';
import type { RemoteWriteClient } from '../remote-write';
import type { TimeSeries } from '../series';
import { analyzeCanary } from './analysis';
import type { JudgeConfig } from './config';
import { CanaryVerdict, VERDICT_CODE, verdictToJson } from './judge';
import type { SampleSource } from './prometheus';
import { postWebhook, rollbackPayload, WebhookOutcome, WebhookSettings } from './webhook';

/** What a run needs to know. */
export interface CanaryRunSettings {
  name: string;
  namespace: string;
  baselineSelector: string;
  canarySelector: string;
  baselineDaysAgo: number;
  intervalMs: number;
  looks: number;
  /** Sliding window per look; undefined = cumulative since the start. */
  windowMs?: number;
  stopOnFail: boolean;
  judge: JudgeConfig;
  webhooks: WebhookSettings[];
}

/** Dependencies of a run. */
export interface CanaryRunDeps {
  source: SampleSource;
  log: Logger;
  /** Where verdict metrics go (none = not written). */
  remoteWrite?: Pick<RemoteWriteClient, 'send'>;
  /** Wall clock, ms. @default Date.now */
  nowMs?: () => number;
  /** Waits ms or until aborted. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** HTTP client of the webhooks. @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** Public state of a run (served as JSON). */
export interface CanaryRunStatus {
  name: string;
  /** pending (no look yet), running, done. */
  state: 'pending' | 'running' | 'done';
  /** Latest verdict. */
  latest?: CanaryVerdict;
  /** Looks done. */
  looksDone: number;
  looks: number;
  /** Webhook deliveries. */
  webhooks: WebhookOutcome[];
  /** Last look error (e.g. Prometheus unreachable). */
  lastError?: string;
}

const defaultSleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/** One canary run. */
export class CanaryRun {
  readonly status: CanaryRunStatus;
  private readonly nowMs: () => number;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;

  constructor(
    readonly settings: CanaryRunSettings,
    private readonly deps: CanaryRunDeps,
  ) {
    this.nowMs = deps.nowMs ?? Date.now;
    this.sleep = deps.sleep ?? defaultSleep;
    this.status = { name: settings.name, state: 'pending', looksDone: 0, looks: settings.looks, webhooks: [] };
  }

  /** Runs every look (or until FAIL / abort); resolves with the last verdict. */
  async run(signal: AbortSignal): Promise<CanaryVerdict | undefined> {
    const s = this.settings;
    const judge: JudgeConfig = { ...s.judge, looks: s.looks };
    const startMs = this.nowMs();
    this.status.state = 'running';
    for (let look = 1; look <= s.looks && !signal.aborted; look++) {
      await this.sleep(Math.max(0, startMs + look * s.intervalMs - this.nowMs()), signal);
      if (signal.aborted) break;
      const endMs = this.nowMs();
      let v: CanaryVerdict;
      try {
        v = await analyzeCanary(
          this.deps.source,
          judge,
          { baselineSelector: s.baselineSelector, canarySelector: s.canarySelector, baselineDaysAgo: s.baselineDaysAgo, windowMs: s.windowMs ?? Math.max(1000, endMs - startMs), endMs, look },
          { signal, nowMs: endMs },
        );
      } catch (err) {
        this.status.lastError = (err as Error).message;
        this.deps.log.error({ err, look }, 'canary look failed; the look is skipped (its alpha is not reused)');
        continue;
      }
      this.status.latest = v;
      this.status.looksDone = look;
      this.status.lastError = undefined;
      this.deps.log.info({ canary: s.name, look, verdict: v.verdict, score: v.score, decided_by: v.decidedBy.rule, attribution: v.attribution?.primary }, `canary look ${look}/${s.looks}: ${v.verdict}`);
      await this.writeMetrics(v, endMs, signal);
      if (v.verdict === 'FAIL') {
        await this.callWebhooks(v);
        if (s.stopOnFail) break;
      }
    }
    this.status.state = 'done';
    return this.status.latest;
  }

  /** Verdict metrics as remote-write series at `tsMs`. */
  verdictSeries(v: CanaryVerdict, tsMs: number): TimeSeries[] {
    const name = this.settings.name;
    const one = (metric: string, value: number, extra: [string, string][] = []): TimeSeries => ({
      labels: [['__name__', metric] as [string, string], ['canary', name] as [string, string], ...extra].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([n, val]) => ({ name: n, value: val })),
      samples: [{ value, timestampMs: tsMs }],
    });
    const out = [one('probemesh_canary_verdict', VERDICT_CODE[v.verdict]), one('probemesh_canary_score', v.score)];
    for (const m of v.metrics) {
      const ratio = m.kind === 'error_rate' ? Number(m.tests[0]?.detail.rate_ratio) : m.effect?.value;
      if (ratio !== undefined && !Number.isNaN(ratio)) out.push(one('probemesh_canary_metric_effect_ratio', ratio, [['metric', m.name]]));
    }
    return out;
  }

  private async writeMetrics(v: CanaryVerdict, tsMs: number, signal: AbortSignal): Promise<void> {
    if (!this.deps.remoteWrite) return;
    const out = await this.deps.remoteWrite.send(this.verdictSeries(v, tsMs), { signal, maxAttempts: 5 });
    if (!out.ok) this.deps.log.warn({ status: out.status, reason: out.reason }, 'writing canary verdict metrics failed');
  }

  private async callWebhooks(v: CanaryVerdict): Promise<void> {
    const text = verdictToJson(rollbackPayload(this.settings.name, this.settings.namespace, v, this.nowMs()));
    for (const w of this.settings.webhooks) {
      const r = await postWebhook(w, text, { fetch: this.deps.fetch });
      this.status.webhooks.push(r);
      if (r.ok) this.deps.log.warn({ url: w.url, status: r.status }, 'rollback webhook called');
      else this.deps.log.error({ url: w.url, status: r.status, error: r.error }, 'rollback webhook failed');
    }
  }
}
