/** Starts a continuous canary run from its config (`probemesh canary run`). */
import { createLogger, HttpEndpoint, Logger } from '@probemesh/common';
import { remoteWriteSettings } from '../config';
import { RemoteWriteClient } from '../remote-write';
import { resolveJudgeConfig } from './config';
import type { CanaryVerdict } from './judge';
import { PrometheusReader, SampleSource } from './prometheus';
import type { CanaryRunConfig } from './run-config';
import { CanaryRun, CanaryRunDeps } from './runner';
import { serveCanaryStatus } from './server';

/** A started run. */
export interface RunningCanary {
  run: CanaryRun;
  /** Resolves with the last verdict when the run ends. */
  done: Promise<CanaryVerdict | undefined>;
  /** Verdict endpoint, when configured. */
  http?: HttpEndpoint;
  /** Aborts the run and closes the endpoint. */
  stop(): Promise<void>;
}

/** Starts a run: verdict endpoint first, then the looks. */
export async function startCanaryRun(config: CanaryRunConfig, deps: Partial<CanaryRunDeps> & { log?: Logger } = {}): Promise<RunningCanary> {
  const log = deps.log ?? createLogger('canary', config.name, config.log.level);
  const source: SampleSource = deps.source ?? new PrometheusReader({ url: config.prometheus.url, timeoutMs: config.prometheus.timeout, headers: config.prometheus.headers });
  const rw = config.remote_write;
  const remoteWrite = deps.remoteWrite ?? (rw ? new RemoteWriteClient(remoteWriteSettings(rw.url, { headers: rw.headers, timeout: rw.timeout })) : undefined);
  const run = new CanaryRun(
    {
      name: config.name,
      namespace: config.namespace,
      baselineSelector: config.baseline,
      canarySelector: config.canary,
      baselineDaysAgo: config.baseline_days_ago,
      intervalMs: config.interval,
      looks: config.looks,
      windowMs: config.window,
      stopOnFail: config.stop_on_fail,
      judge: resolveJudgeConfig(config.judge),
      webhooks: config.webhooks.map((w) => ({ url: w.url, headers: w.headers, timeout: w.timeout, attempts: w.attempts })),
    },
    { ...deps, source, log, remoteWrite },
  );
  const http = config.http ? await serveCanaryStatus(config.http.listen, run.status, log) : undefined;
  const ac = new AbortController();
  const done = run.run(ac.signal);
  return {
    run,
    done,
    http,
    async stop() {
      ac.abort();
      await done.catch(() => undefined);
      await http?.close();
    },
  };
}
