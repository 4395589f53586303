/** `probemesh canary analyze|run`: canary verdicts from the judge. */
import { readFileSync } from 'node:fs';
import { createLogger, loadConfig, parseDurationMs, ProbemeshError } from '@probemesh/common';
import { analyzeCanary, canaryRunConfigSchema, CanaryVerdict, parseJudgeConfig, PrometheusReader, startCanaryRun, verdictToJson } from '@probemesh/aggregator';
import { withAdmin } from './admin';
import { Command, ADMIN_OPTIONS_HELP, adminTarget, adminOptions, parse } from './command';
import { UsageError } from './errors';
import { renderTable } from './table';

const analyzeOptions = {
  ...adminOptions,
  baseline: { type: 'string' },
  canary: { type: 'string' },
  window: { type: 'string', default: '5m' },
  config: { type: 'string' },
  'baseline-days-ago': { type: 'string' },
  end: { type: 'string' },
  prometheus: { type: 'string' },
} as const;

const HELP = `Usage:
  probemesh canary analyze --baseline SEL --canary SEL [--window 5m] [--config judge.json] [--json]
                           [--baseline-days-ago N] [--end RFC3339|unix-ms] [--addr HOST:PORT | --prometheus URL]
  probemesh canary run --config canary.yml

analyze: one verdict (PASS, MARGINAL, FAIL, INSUFFICIENT_DATA) comparing the canary's raw
probe samples in Prometheus with the baseline's, through the coordinator's
AdminService.AnalyzeCanary (or locally against --prometheus without a coordinator).
Exit status: 0 PASS, 1 FAIL, 3 MARGINAL, 4 INSUFFICIENT_DATA (errors: 1 with a message, 2 usage).

run: a continuous canary run (looks every interval, verdict metrics via remote_write,
rollback webhooks on FAIL, verdict endpoint for Argo Rollouts / Flagger); see docs/CANARY.md.

Options (analyze):
  --baseline SEL          baseline selector, e.g. '{release="stable"}' (optional with --baseline-days-ago)
  --canary SEL            canary selector, e.g. '{release="canary"}'
  --window DUR            analysis window ending now (default 5m)
  --config FILE           judge config JSON (Kayenta-style subset; default: latency + errors)
  --baseline-days-ago N   historical baseline: the same window N days earlier
  --end TIME              end of the window (default now)
  --prometheus URL        run the judge here against this Prometheus instead of the coordinator
${ADMIN_OPTIONS_HELP}

Examples:
  probemesh canary analyze --baseline '{release="stable"}' --canary '{release="canary"}' --window 5m
  echo '{"thresholds":{"pass":0.05,"marginal":0.1}}' > judge.json
  probemesh canary analyze --baseline '{release="stable"}' --canary '{release="canary"}' --config judge.json --json
  probemesh canary analyze --canary '{service="checkout"}' --baseline-days-ago 7 --prometheus http://127.0.0.1:9090
  probemesh canary run --config canary.yml`;

/** Exit status of a verdict. */
export function verdictExitCode(verdict: string): number {
  return verdict === 'PASS' ? 0 : verdict === 'FAIL' ? 1 : verdict === 'MARGINAL' ? 3 : 4;
}

function parseEnd(text: string | undefined): number {
  if (!text) return 0;
  const n = Number(text);
  const ms = Number.isFinite(n) ? n : Date.parse(text);
  if (!Number.isFinite(ms) || ms <= 0) throw new UsageError(`canary analyze: --end: expected RFC3339 or unix ms, got ${JSON.stringify(text)}`);
  return ms;
}

/** Human rendering of a verdict. */
export function renderVerdict(v: CanaryVerdict): string {
  const pct = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? String(x) : `${((x - 1) * 100).toFixed(1)}%`);
  const rows = v.metrics.flatMap((m) =>
    m.tests.map((t) => [
      m.name,
      t.test,
      t.classification,
      t.effect ? (t.effect.kind === 'ratio' ? `${pct(t.effect.value)} [${pct(t.effect.lower)}, ${pct(t.effect.upper)}]` : `${(t.effect.value * 100).toFixed(2)}pp`) : '-',
      t.pValue === undefined ? '-' : t.pValue.toExponential(1),
      `${m.samples.baseline}/${m.samples.canary}`,
      t.reason,
    ]),
  );
  const lines = [
    `verdict ${v.verdict}  score ${v.score.toFixed(1)}  decided by ${v.decidedBy.rule}: ${v.decidedBy.detail}`,
    renderTable(['METRIC', 'TEST', 'RESULT', 'CHANGE [CI]', 'P', 'N (B/C)', 'WHY'], rows),
  ];
  if (v.attribution) lines.push(`attribution: ${v.attribution.primary} — ${v.attribution.summary}`);
  return lines.join('\n');
}

async function analyze(args: string[]): Promise<number> {
  const { values } = parse('canary analyze', args, analyzeOptions, false);
  if (!values.canary) throw new UsageError('canary analyze: --canary is required (e.g. --canary \'{release="canary"}\')');
  const days = values['baseline-days-ago'] === undefined ? 0 : Number(values['baseline-days-ago']);
  if (!Number.isInteger(days) || days < 0) throw new UsageError('canary analyze: --baseline-days-ago: expected a whole number of days');
  if (!values.baseline && days === 0) throw new UsageError('canary analyze: --baseline is required unless --baseline-days-ago is given');
  const windowMs = parseDurationMs(values.window);
  if (windowMs === undefined || windowMs < 1000) throw new UsageError(`canary analyze: --window: expected a duration like 5m, got ${JSON.stringify(values.window)}`);
  let configJson = '';
  if (values.config) {
    try {
      configJson = readFileSync(values.config, 'utf8');
    } catch (err) {
      throw new UsageError(`canary analyze: --config: cannot read ${values.config}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  const end = parseEnd(values.end);
  let verdict: string;
  let json: string;
  let v: CanaryVerdict;
  if (values.prometheus) {
    v = await analyzeCanary(new PrometheusReader({ url: values.prometheus }), parseJudgeConfig(configJson, 'config'), {
      baselineSelector: values.baseline ?? '',
      canarySelector: values.canary,
      windowMs,
      endMs: end || Date.now(),
      baselineDaysAgo: days,
    }, { nowMs: Date.now() });
    verdict = v.verdict;
    json = verdictToJson(v, 2);
  } else {
    const res = await withAdmin(adminTarget(values), (c) =>
      c.analyzeCanary({ baselineSelector: values.baseline ?? '', canarySelector: values.canary, windowSeconds: Math.round(windowMs / 1000), configJson, baselineDaysAgo: days, endUnixMs: end }, { timeoutMs: 120_000 }),
    );
    verdict = res.verdict;
    json = JSON.stringify(JSON.parse(res.verdictJson), null, 2);
    v = JSON.parse(res.verdictJson) as CanaryVerdict;
  }
  process.stdout.write((values.json ? json : renderVerdict(v)) + '\n');
  return verdictExitCode(verdict);
}

async function run(args: string[]): Promise<number> {
  const { values } = parse('canary run', args, { config: { type: 'string' } }, false);
  if (!values.config) throw new UsageError('canary run: --config FILE is required');
  const config = loadConfig(canaryRunConfigSchema, { file: values.config });
  const log = createLogger('canary', config.name, config.log.level);
  const running = await startCanaryRun(config, { log });
  if (running.http) log.info({ url: running.http.url }, `verdict endpoint at ${running.http.url}/verdict`);
  const stop = () => void running.stop();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const v = await running.done;
  await running.stop();
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  if (!v) throw new ProbemeshError('PM_CANARY_NO_VERDICT', `canary run ${config.name} ended without a verdict${running.run.status.lastError ? `: ${running.run.status.lastError}` : ''}`);
  process.stdout.write(verdictToJson(v) + '\n');
  return verdictExitCode(v.verdict);
}

/** `probemesh canary`. */
export const canaryCommand: Command = {
  name: 'canary',
  summary: 'Judge a canary release against its baseline (analyze once, or run with looks, webhook and verdict endpoint)',
  help: HELP,
  async run(args) {
    const [sub, ...rest] = args;
    if (sub === 'analyze') return analyze(rest);
    if (sub === 'run') return run(rest);
    throw new UsageError(`canary: expected "analyze" or "run", got ${sub === undefined ? 'nothing' : JSON.stringify(sub)} (see probemesh canary --help)`);
  },
};
