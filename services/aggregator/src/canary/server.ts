/**
 * The verdict endpoint of a canary run:
 * - `GET /verdict`: the latest verdict as JSON, always HTTP 200 (an Argo Rollouts `web`
 *   metric needs a 2xx JSON body): `{verdict, ok, failed, done, score, …, detail}` —
 *   use `jsonPath: "{$.verdict}"`, `successCondition: result == "PASS"`,
 *   `failureCondition: result == "FAIL"`; before the first look `verdict` is "PENDING".
 * - `GET|POST /flagger/rollback`: a Flagger `type: rollback` webhook target — 200 when the
 *   latest verdict is FAIL (Flagger then rolls back), 403 otherwise.
 * - `GET|POST /flagger/promote`: a `confirm-promotion` target — 200 once the run is done
 *   with PASS, 403 otherwise.
 * - `/metrics`: probemesh_canary_verdict / _score / _metric_effect_ratio of the run.
 */
import type { ServerResponse } from 'node:http';
import { Gauge, Registry } from 'prom-client';
import { HttpEndpoint, Logger, serveHttp } from '@probemesh/common';
import { VERDICT_CODE, verdictToJson } from './judge';
import type { CanaryRunStatus } from './runner';

/** The JSON body of `GET /verdict`. */
export function verdictBody(st: CanaryRunStatus): Record<string, unknown> {
  const v = st.latest;
  return {
    canary: st.name,
    verdict: v?.verdict ?? 'PENDING',
    ok: v?.verdict === 'PASS',
    failed: v?.verdict === 'FAIL',
    done: st.state === 'done',
    state: st.state,
    score: v?.score ?? null,
    look: st.looksDone,
    looks: st.looks,
    decided_by: v?.decidedBy ?? null,
    attribution: v?.attribution?.summary ?? null,
    last_error: st.lastError ?? null,
    updated_at_ms: v?.generatedAtMs ?? null,
    detail: v ?? null,
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(verdictToJson(body) + '\n');
}

/** Serves the endpoint for `status` (read live) on `listen`. */
export async function serveCanaryStatus(listen: string, status: CanaryRunStatus, log: Logger): Promise<HttpEndpoint> {
  const registry = new Registry();
  new Gauge({
    name: 'probemesh_canary_verdict',
    help: 'Latest canary verdict: 0=PASS 1=MARGINAL 2=FAIL 3=INSUFFICIENT_DATA.',
    labelNames: ['canary'],
    registers: [registry],
    collect() {
      this.reset();
      if (status.latest) this.set({ canary: status.name }, VERDICT_CODE[status.latest.verdict]);
    },
  });
  new Gauge({
    name: 'probemesh_canary_score',
    help: 'Latest canary score (0..100).',
    labelNames: ['canary'],
    registers: [registry],
    collect() {
      this.reset();
      if (status.latest) this.set({ canary: status.name }, status.latest.score);
    },
  });
  new Gauge({
    name: 'probemesh_canary_metric_effect_ratio',
    help: 'Canary/baseline effect ratio per judged metric (Hodges-Lehmann ratio; failure-rate ratio for error metrics).',
    labelNames: ['canary', 'metric'],
    registers: [registry],
    collect() {
      this.reset();
      for (const m of status.latest?.metrics ?? []) {
        const r = m.kind === 'error_rate' ? Number(m.tests[0]?.detail.rate_ratio) : m.effect?.value;
        if (r !== undefined && !Number.isNaN(r)) this.set({ canary: status.name, metric: m.name }, r);
      }
    },
  });
  return serveHttp(listen, registry, log, {
    '/verdict': (_req, res) => send(res, 200, verdictBody(status)),
    '/flagger/rollback': (_req, res) => {
      const fail = status.latest?.verdict === 'FAIL';
      send(res, fail ? 200 : 403, { rollback: fail, verdict: status.latest?.verdict ?? 'PENDING', reason: status.latest?.decidedBy.detail ?? 'no verdict yet' });
    },
    '/flagger/promote': (_req, res) => {
      const ok = status.state === 'done' && status.latest?.verdict === 'PASS';
      send(res, ok ? 200 : 403, { promote: ok, verdict: status.latest?.verdict ?? 'PENDING', state: status.state });
    },
  });
}
