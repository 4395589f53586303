import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '@probemesh/common';
import { parseJudgeConfig } from './config';
import { validateAnalysisRequest } from './analysis';
import { parseSelector } from './selector';

const bad = (json: string, field: string, msg: RegExp) =>
  assert.throws(
    () => parseJudgeConfig(json),
    (e: unknown) => e instanceof InvalidArgumentError && e.field === field && msg.test(e.message),
    `${json} → ${field}`,
  );

test('defaults: latency (critical, p95/p99) and errors (critical), +2 %/+5 % tolerances, score 95/75', () => {
  const c = parseJudgeConfig('');
  assert.deepEqual(c.metrics.map((m) => [m.name, m.metric, m.kind, m.critical, m.tails]), [
    ['latency', 'probe_duration_seconds', 'latency', true, [0.95, 0.99]],
    ['errors', 'probe_success', 'error_rate', true, []],
  ]);
  assert.equal(c.metrics[0]!.passTolerance, 0.02);
  assert.equal(c.metrics[0]!.failuresAsInfinity, true);
  assert.deepEqual(c.scoreThresholds, { pass: 95, marginal: 75 });
});

test('the seed config works: thresholds < 1 are relative growth; ≥ 1 are Kayenta scores', () => {
  const seed = parseJudgeConfig('{"thresholds": {"pass": 0.05, "marginal": 0.1}}');
  assert.equal(seed.metrics[0]!.passTolerance, 0.05);
  assert.equal(seed.metrics[0]!.marginalTolerance, 0.1);
  assert.deepEqual(seed.scoreThresholds, { pass: 95, marginal: 75 });
  const score = parseJudgeConfig('{"thresholds": {"pass": 90, "marginal": 60}}');
  assert.deepEqual(score.scoreThresholds, { pass: 90, marginal: 60 });
  assert.equal(score.metrics[0]!.passTolerance, 0.02);
});

test('Kayenta metric shape: analysisConfigurations.canary.{direction, critical, effectSize}, groups, groupWeights', () => {
  const c = parseJudgeConfig(
    JSON.stringify({
      metrics: [
        { name: 'tls', query: 'probe_http_duration_seconds{phase="tls"}', groups: ['net'], analysisConfigurations: { canary: { direction: 'either', critical: true, effectSize: { allowedIncrease: 1.1, criticalIncrease: 1.3 } } }, scopeName: 'default' },
        { name: 'errors', groups: ['err'] },
      ],
      classifier: { groupWeights: { net: 70, err: 30 } },
    }),
  );
  const m = c.metrics[0]!;
  assert.deepEqual([m.metric, m.matchers, m.direction, m.critical, m.groups], ['probe_http_duration_seconds', ['phase="tls"'], 'either', true, ['net']]);
  assert.ok(Math.abs(m.passTolerance - 0.1) < 1e-12 && Math.abs(m.marginalTolerance - 0.3) < 1e-12);
  assert.deepEqual(c.groupWeights, { net: 70, err: 30 });
});

test('bad configs name the field', () => {
  bad('{"metrics": [{"name": "api_request_duration_seconds"}]}', 'config.metrics[0].name', /unknown metric "api_request_duration_seconds"/);
  bad('{"thresholds": {"pass": 0.1, "marginal": 0.05}}', 'config.thresholds', /out of order/);
  bad('{"thresholds": {"pass": 80, "marginal": 90}}', 'config.thresholds', /out of order/);
  bad('{"thresholds": {"pass": 0.05, "marginal": 75}}', 'config.thresholds', /both be relative growth/);
  bad('{"treshold": 1}', 'config.treshold', /unknown key/);
  bad('{"metrics": [{"name": "x", "query": "{phase=\\"tls\\"}"}]}', 'config.metrics[0].query', /must name a metric/);
  bad('{"metrics": [{"name": "x", "query": "m{a=b}"}]}', 'config.metrics[0].query', /quoted value/);
  bad('{"metrics": [{"name": "latency", "analysisConfigurations": {"canary": {"direction": "up"}}}]}', 'config.metrics[0].analysisConfigurations.canary.direction', /one of/);
  bad('{"classifier": {"groupWeights": {"nope": 1}}}', 'config.classifier.groupWeights.nope', /no metric is in group/);
  bad('{"slos": [{"quantile": 0.99}]}', 'config.slos[0].max_seconds', /required/);
  bad('[1]', 'config', /JSON object/);
  bad('{nope', 'config', /not valid JSON/);
});

test('selectors: parsed, normalised, and empty or malformed ones rejected with the field name', () => {
  assert.deepEqual(parseSelector(`{release='canary', zone=~"a|b"}`, 'x'), { metric: undefined, matchers: ['release="canary"', 'zone=~"a|b"'] });
  assert.deepEqual(parseSelector('release="stable"', 'x').matchers, ['release="stable"']);
  const req = { baselineSelector: '{release="stable"}', canarySelector: '{release="canary"}', windowMs: 300_000, endMs: Date.now() };
  assert.doesNotThrow(() => validateAnalysisRequest(req));
  for (const [over, field] of [
    [{ canarySelector: '' }, 'canary_selector'],
    [{ baselineSelector: '{}' }, 'baseline_selector'],
    [{ canarySelector: '{release="stable"}' }, 'canary_selector'],
    [{ canarySelector: 'probe_success{release="canary"}' }, 'canary_selector'],
    [{ windowMs: 0 }, 'window_seconds'],
  ] as const) {
    assert.throws(() => validateAnalysisRequest({ ...req, ...over }), (e: unknown) => e instanceof InvalidArgumentError && e.field === field, JSON.stringify(over));
  }
  assert.doesNotThrow(() => validateAnalysisRequest({ ...req, baselineSelector: '', baselineDaysAgo: 7 }), 'historical baseline: the canary selector 7 days earlier');
});
