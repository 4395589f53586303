import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeCanary, withFailures } from './analysis';
import { parseJudgeConfig } from './config';
import { PrometheusQueryError, PrometheusReader, RawSeries, SampleSource } from './prometheus';
import { SeededRandom } from './random';

const series = (labels: Record<string, string>, points: [number, number][]): RawSeries => ({ labels, timestampsMs: points.map((p) => p[0]), values: points.map((p) => p[1]) });

test('failed probes become +Infinity latency (joined by series and timestamp), never dropped', () => {
  const l = { instance: 'u', prober: 'a' };
  const d = [series({ __name__: 'probe_duration_seconds', ...l }, [[1000, 0.02], [2000, 0.5], [3000, 0.03]])];
  const s = [series({ __name__: 'probe_success', ...l }, [[1000, 1], [2000, 0], [3000, 1], [4000, 0]])];
  assert.deepEqual(withFailures(d, s), [0.02, Infinity, 0.03, Infinity]);
});

test('PrometheusReader posts an instant query of a range selector and parses the matrix', async () => {
  const seen: { url: string; body: string }[] = [];
  const fake = (async (url: string, init: RequestInit) => {
    seen.push({ url, body: String(init.body) });
    return new Response(JSON.stringify({ status: 'success', data: { resultType: 'matrix', result: [{ metric: { __name__: 'm', a: 'b' }, values: [[1.5, '0.25'], [2, '+Inf']] }] } }));
  }) as unknown as typeof fetch;
  const r = new PrometheusReader({ url: 'http://prom:9090/', fetch: fake });
  const out = await r.rawSamples('m{a="b"}', 300_000, 2000);
  assert.equal(seen[0]!.url, 'http://prom:9090/api/v1/query');
  assert.equal(new URLSearchParams(seen[0]!.body).get('query'), 'm{a="b"}[300000ms]');
  assert.deepEqual(out, [{ labels: { __name__: 'm', a: 'b' }, timestampsMs: [1500, 2000], values: [0.25, Infinity] }]);
  const bad = new PrometheusReader({ url: 'http://prom', fetch: (async () => new Response(JSON.stringify({ status: 'error', errorType: 'bad_data', error: 'parse error' }), { status: 400 })) as unknown as typeof fetch });
  await assert.rejects(bad.rawSamples('m', 1000, 1), (e: unknown) => e instanceof PrometheusQueryError && e.code === 'PM_CANARY_QUERY' && /parse error/.test(e.message));
});

test('analysis: selectors become per-metric queries; a historical baseline reads the same selector N days earlier', async () => {
  const rng = new SeededRandom(1);
  const calls: { selector: string; endMs: number }[] = [];
  const source: SampleSource = {
    async rawSamples(selector, _w, endMs) {
      calls.push({ selector, endMs });
      const canary = endMs === 10 * 86_400_000;
      const name = selector.slice(0, selector.indexOf('{'));
      if (name === 'probe_success') return [series({ __name__: name, i: 'x' }, Array.from({ length: 400 }, (_, k) => [k, 1] as [number, number]))];
      if (name === 'probe_duration_seconds') return [series({ __name__: name, i: 'x' }, Array.from({ length: 400 }, (_, k) => [k, 0.05 * rng.lognormal(0, 0.2) * (canary ? 1.3 : 1)] as [number, number]))];
      return [];
    },
  };
  const v = await analyzeCanary(source, parseJudgeConfig('{"tails": []}'), { baselineSelector: '', canarySelector: '{svc="api"}', baselineDaysAgo: 7, windowMs: 60_000, endMs: 10 * 86_400_000 });
  assert.equal(v.verdict, 'FAIL');
  assert.ok(calls.some((c) => c.selector === 'probe_duration_seconds{svc="api"}' && c.endMs === 3 * 86_400_000), 'baseline 7 days earlier');
  assert.ok(calls.some((c) => c.selector === 'probe_http_duration_seconds{svc="api"}'), 'phases read for attribution');
  assert.deepEqual(v.window?.baseline, { selector: '{svc="api"}', startMs: 3 * 86_400_000 - 60_000, endMs: 3 * 86_400_000 });
  assert.deepEqual(v.attribution?.missing.sort(), ['dns', 'network', 'server_processing', 'tls', 'transfer']);
});
