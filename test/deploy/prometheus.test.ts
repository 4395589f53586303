/**
 * deploy/prometheus: promtool check config / check rules / test rules (the rule unit
 * tests in deploy/prometheus/tests), the retention and receiver flags, and a real
 * Prometheus loading the config and its rules.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { findBinary, PrometheusServer, startPrometheus } from '../harness';
import { extractMetricNames, RESULT_METRICS, SERVICE_METRICS } from './metric-names';
import { DEPLOY_DIR } from './paths';

const PROM_DIR = join(DEPLOY_DIR, 'prometheus');
const RULE_FILES = readdirSync(join(PROM_DIR, 'rules')).filter((f) => f.endsWith('.yml')).map((f) => join(PROM_DIR, 'rules', f));

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
}
function rules(): Rule[] {
  return RULE_FILES.flatMap((f) => (parseYaml(readFileSync(f, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules));
}

/** Recording rule names (dashboards may query them too). */
export function recordedNames(): string[] {
  return rules().flatMap((r) => (r.record ? [r.record] : []));
}

function promtool(args: string[], cwd = PROM_DIR) {
  return spawnSync(findBinary('promtool', 'prometheus'), args, { cwd, encoding: 'utf8', timeout: 60_000 });
}

describe('prometheus: promtool', () => {
  test('promtool check config accepts prometheus.yml and finds both rule files', () => {
    const r = promtool(['check', 'config', 'prometheus.yml']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /SUCCESS: 2 rule files found/);
  });

  test('promtool check rules accepts every rule file', () => {
    const r = promtool(['check', 'rules', ...RULE_FILES]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const total = [...r.stdout.matchAll(/SUCCESS: (\d+) rules found/g)].reduce((n, m) => n + Number(m[1]), 0);
    assert.equal(total, rules().length);
    assert.ok(total >= 18, `${total} rules`);
  });

  test('promtool test rules: the rule unit tests pass', () => {
    const r = promtool(['test', 'rules', 'tests/probemesh.test.yml']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /SUCCESS/);
  });

  test('promtool test rules fails when an expectation is wrong (the tests have teeth)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pm-promtool-'));
    try {
      const text = readFileSync(join(PROM_DIR, 'tests/probemesh.test.yml'), 'utf8')
        .replaceAll('../rules/', join(PROM_DIR, 'rules') + '/')
        .replace('value: 0.23499999999999996', 'value: 0.3');
      writeFileSync(join(dir, 't.yml'), text);
      const r = promtool(['test', 'rules', join(dir, 't.yml')]);
      assert.notEqual(r.status, 0);
      assert.match(r.stdout + r.stderr, /FAILED/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('every alert has a unit test in which it fires', () => {
    const tests = parseYaml(readFileSync(join(PROM_DIR, 'tests/probemesh.test.yml'), 'utf8')) as { tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[] };
    const firing = new Set(tests.tests.flatMap((t) => (t.alert_rule_test ?? []).filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)));
    const alerts = rules().flatMap((r) => (r.alert ? [r.alert] : []));
    assert.deepEqual(alerts.filter((a) => !firing.has(a)), []);
    for (const want of ['ProbemeshTargetDown', 'ProbemeshLatencyP95SLO', 'ProbemeshLatencyP99SLO', 'ProbemeshCertExpiringSoon', 'ProbemeshProberDead', 'ProbemeshClockUnsynced', 'ProbemeshRemoteWriteLag', 'ProbemeshCanaryFail']) {
      assert.ok(alerts.includes(want), want);
    }
  });

  test('rules query only metrics probemesh writes', () => {
    const known = new Set<string>([...RESULT_METRICS, ...SERVICE_METRICS, ...recordedNames()]);
    for (const r of rules()) {
      const unknown = [...extractMetricNames(r.expr)].filter((n) => !known.has(n));
      assert.deepEqual(unknown, [], `${r.record ?? r.alert}: ${r.expr}`);
    }
  });

  test('retention >= 15 days, remote-write receiver and out-of-order window are configured', () => {
    const args = readFileSync(join(PROM_DIR, 'prometheus.default'), 'utf8');
    assert.match(args, /--web\.enable-remote-write-receiver/);
    const days = /--storage\.tsdb\.retention\.time=(\d+)d/.exec(args);
    assert.ok(days && Number(days[1]) >= 15, 'retention >= 15d');
    const cfg = parseYaml(readFileSync(join(PROM_DIR, 'prometheus.yml'), 'utf8')) as { storage: { tsdb: { out_of_order_time_window: string } } };
    assert.equal(cfg.storage.tsdb.out_of_order_time_window, '2h');
  });
});

describe('prometheus: a real server with the deploy config', () => {
  let prom: PrometheusServer;
  before(async () => {
    // Same config, with the relative rule and file_sd paths made absolute (the harness keeps its config elsewhere).
    const cfg = readFileSync(join(PROM_DIR, 'prometheus.yml'), 'utf8').replace('- rules/*.yml', `- ${join(PROM_DIR, 'rules')}/*.yml`).replaceAll('[file_sd/', `[${join(PROM_DIR, 'file_sd')}/`);
    prom = await startPrometheus({ config: cfg });
  });
  after(async () => {
    await prom?.stop();
  });

  test('loads every rule, keeps the out-of-order window, and runs with the remote-write receiver', async () => {
    const loaded = await prom.api<{ groups: { rules: { name: string; health: string }[] }[] }>('/api/v1/rules');
    const names = loaded.groups.flatMap((g) => g.rules.map((r) => r.name));
    assert.equal(names.length, rules().length);
    const cfg = await prom.api<{ yaml: string }>('/api/v1/status/config');
    assert.match(cfg.yaml, /out_of_order_time_window: 2h/);
    const flags = await prom.api<Record<string, string>>('/api/v1/status/flags');
    assert.equal(flags['web.enable-remote-write-receiver'], 'true');
  });
});
