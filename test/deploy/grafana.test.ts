/**
 * deploy/grafana: dashboards are Grafana JSON (schemaVersion 38, unique ids, grid
 * positions), every panel query parses in a real Prometheus (query API: a parse error
 * is HTTP 400 bad_data) with Grafana's variables substituted, and queries only metrics
 * probemesh writes or the recording rules define.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { PrometheusServer, startPrometheus } from '../harness';
import { extractMetricNames, RESULT_METRICS, SERVICE_METRICS } from './metric-names';
import { DEPLOY_DIR } from './paths';

const DASH_DIR = join(DEPLOY_DIR, 'grafana', 'dashboards');

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { refId: string; expr: string }[];
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: { name: string; type: string; query?: string | { query: string } }[] };
}

const dashboards = readdirSync(DASH_DIR).filter((f) => f.endsWith('.json')).map((f) => ({ file: f, d: JSON.parse(readFileSync(join(DASH_DIR, f), 'utf8')) as Dashboard }));

/** Grafana's built-in and dashboard variables replaced by values Prometheus accepts. */
function substitute(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__interval', '30s')
    .replaceAll('$__range', '1h')
    .replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]/g, 'x.*');
}

function recordedNames(): string[] {
  const dir = join(DEPLOY_DIR, 'prometheus', 'rules');
  return readdirSync(dir).flatMap((f) => (parseYaml(readFileSync(join(dir, f), 'utf8')) as { groups: { rules: { record?: string }[] }[] }).groups.flatMap((g) => g.rules.flatMap((r) => (r.record ? [r.record] : []))));
}

function queries(): { where: string; expr: string }[] {
  return dashboards.flatMap(({ file, d }) => [
    ...d.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `${file} "${p.title}" ${t.refId}`, expr: t.expr }))),
    ...d.templating.list.filter((v) => v.type === 'query').map((v) => ({ where: `${file} variable ${v.name}`, expr: typeof v.query === 'string' ? v.query : v.query!.query })),
  ]);
}

describe('grafana dashboards', () => {
  test('the three dashboards exist with schemaVersion 38, unique uids and panel ids, and panels inside the grid', () => {
    assert.deepEqual(dashboards.map((x) => x.file).sort(), ['canary.json', 'mesh-overview.json', 'target-latency.json']);
    assert.equal(new Set(dashboards.map((x) => x.d.uid)).size, 3);
    for (const { file, d } of dashboards) {
      assert.equal(d.schemaVersion, 38, file);
      const ids = d.panels.map((p) => p.id);
      assert.equal(new Set(ids).size, ids.length, `${file}: unique panel ids`);
      for (const p of d.panels) {
        assert.ok(p.gridPos.x >= 0 && p.gridPos.x + p.gridPos.w <= 24, `${file} "${p.title}" fits 24 columns`);
        if (p.type !== 'row') assert.ok((p.targets ?? []).length > 0, `${file} "${p.title}" has a query`);
      }
      assert.ok(d.templating.list.some((v) => v.type === 'datasource'), `${file}: datasource variable`);
    }
  });

  test('the dashboards show what the issue names', () => {
    const all = (file: string) => JSON.stringify(dashboards.find((x) => x.file === file)!.d);
    const overview = all('mesh-overview.json');
    for (const m of ['probemesh_coordinator_probers', 'probemesh_coordinator_targets_uncovered', 'probemesh_coordinator_coverage_gap_seconds_bucket', 'probemesh_coordinator_moved_targets_total']) assert.ok(overview.includes(m), m);
    const latency = all('target-latency.json');
    for (const m of ['p95_5m', 'p99_5m', 'probe_http_duration_seconds', 'probe_tcp_kernel_connect_seconds', 'phase=\\"connect\\"', 'jitter']) assert.ok(latency.includes(m), m);
    const canary = all('canary.json');
    for (const m of ['probemesh_canary_verdict', 'probemesh_canary_score', 'probemesh_canary_metric_effect_ratio', '"FAIL"']) assert.ok(canary.includes(m), m);
  });

  test('every query selects only metrics probemesh writes or the recording rules define', () => {
    const known = new Set<string>([...RESULT_METRICS, ...SERVICE_METRICS, ...recordedNames()]);
    const qs = queries();
    assert.ok(qs.length >= 40, `${qs.length} queries`);
    for (const q of qs) {
      const expr = q.expr.replace(/^label_values\((.*),\s*\w+\)$/, '$1');
      const names = [...extractMetricNames(substitute(expr))];
      assert.ok(names.length > 0, `${q.where}: selects a metric`);
      assert.deepEqual(names.filter((n) => !known.has(n)), [], q.where);
    }
  });

  describe('queries parse in Prometheus', () => {
    let prom: PrometheusServer;
    before(async () => {
      prom = await startPrometheus();
    });
    after(async () => {
      await prom?.stop();
    });

    async function status(expr: string): Promise<{ code: number; body: string }> {
      const res = await fetch(`${prom.url}/api/v1/query?${new URLSearchParams({ query: expr })}`);
      return { code: res.status, body: await res.text() };
    }

    test('every panel and variable query is accepted by /api/v1/query', async () => {
      for (const q of queries()) {
        const expr = substitute(q.expr.replace(/^label_values\((.*),\s*\w+\)$/, '$1'));
        const r = await status(expr);
        assert.equal(r.code, 200, `${q.where}: ${expr}\n${r.body}`);
      }
    });

    test('a broken query is refused with 400 bad_data (the check is real)', async () => {
      const r = await status('sum by (instance (probe_success)');
      assert.equal(r.code, 400);
      assert.match(r.body, /bad_data/);
    });
  });
});
