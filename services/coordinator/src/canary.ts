/**
 * AdminService.AnalyzeCanary: a one-shot canary verdict. Reads the samples of both arms
 * from the coordinator's configured Prometheus (`canary.prometheus_url`) and runs the
 * judge from @probemesh/aggregator. Bad requests and configs become INVALID_ARGUMENT
 * naming the field; an unreachable Prometheus becomes UNAVAILABLE.
 */
import * as grpc from '@grpc/grpc-js';
import { Logger } from '@probemesh/common';
import { AdminServiceHandlers, probemesh } from '@probemesh/proto';
import { analyzeCanary, parseJudgeConfig, PrometheusQueryError, PrometheusReader, SampleSource, verdictToJson } from '@probemesh/aggregator';
import { toGrpcStatus } from './admin';
import type { CanarySettings } from './config';

/** Dependencies of the handler. */
export interface AnalyzeCanaryDeps {
  settings: CanarySettings;
  log: Logger;
  /** Sample source. @default a PrometheusReader on settings.prometheus_url */
  source?: SampleSource;
  /** Wall clock, ms. @default Date.now */
  nowMs?: () => number;
}

/** Runs one analysis for a request (the gRPC-independent part). */
export async function runAnalyzeCanary(req: probemesh.v1.IAnalyzeCanaryRequest, deps: AnalyzeCanaryDeps): Promise<probemesh.v1.IAnalyzeCanaryResponse> {
  const s = deps.settings;
  const source = deps.source ?? new PrometheusReader({ url: s.prometheus_url, timeoutMs: s.query_timeout, headers: s.prometheus_headers });
  const config = parseJudgeConfig(req.configJson ?? '', 'config_json');
  const end = Number(req.endUnixMs ?? 0);
  const now = (deps.nowMs ?? Date.now)();
  const v = await analyzeCanary(
    source,
    config,
    {
      baselineSelector: req.baselineSelector ?? '',
      canarySelector: req.canarySelector ?? '',
      windowMs: (req.windowSeconds || s.default_window / 1000) * 1000,
      endMs: end > 0 ? end : now,
      baselineDaysAgo: req.baselineDaysAgo ?? 0,
    },
    { nowMs: now },
  );
  return { verdict: v.verdict, score: v.score, verdictJson: verdictToJson(v) };
}

/** The AnalyzeCanary gRPC handler. */
export function createAnalyzeCanaryHandler(deps: AnalyzeCanaryDeps): NonNullable<AdminServiceHandlers['analyzeCanary']> {
  return (call, callback) => {
    const started = process.hrtime.bigint();
    runAnalyzeCanary(call.request, deps).then(
      (res) => {
        deps.log.info({ rpc: 'AnalyzeCanary', verdict: res.verdict, score: res.score, ms: Number(process.hrtime.bigint() - started) / 1e6 }, `canary verdict ${res.verdict}`);
        callback(null, res);
      },
      (err: unknown) => {
        if (err instanceof PrometheusQueryError) {
          deps.log.warn({ err: err.message, rpc: 'AnalyzeCanary' }, 'Prometheus query failed');
          callback({ code: grpc.status.UNAVAILABLE, details: `${err.message} [${err.code}]` }, null);
          return;
        }
        callback(toGrpcStatus(err, deps.log, 'AnalyzeCanary'), null);
      },
    );
  };
}
