/**
 * Canary judge end to end: four local target servers (two scenarios × stable/canary),
 * probed by the mesh (coordinator, three probers, aggregator from the built packages,
 * real nats-server and Prometheus), samples read back from Prometheus by the judge.
 * - regress: canary server +20 % injected delay (24 ms vs 20 ms) → FAIL attributed to
 *   server processing, through AdminService.AnalyzeCanary and through a continuous run
 *   whose rollback webhook and verdict metrics are checked;
 * - equal: both 20 ms → PASS.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, IncomingMessage, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { loadConfig, silentLogger } from '@probemesh/common';
import { aggregatorConfigSchema, canaryRunConfigSchema, CanaryVerdict, RunningAggregator, startAggregator, startCanaryRun } from '@probemesh/aggregator';
import { coordinatorConfigSchema, createAdminClient, RunningCoordinator, startCoordinator } from '@probemesh/coordinator';
import { proberConfigSchema, RunningProber, startProber } from '@probemesh/prober';
import { startNats, startPrometheus, waitFor } from '../harness';

// The seed's thresholds (+5 % pass, +10 % marginal). Sporadic probe timeouts happen on a
// loaded 2-core test machine, so the error-rate tolerances are +1 pp / +5 pp here.
const JUDGE = JSON.stringify({
  thresholds: { pass: 0.05, marginal: 0.1 },
  tails: [0.95],
  metrics: [
    { name: 'latency', critical: true },
    { name: 'errors', critical: true, thresholds: { pass: 0.01, marginal: 0.05 } },
  ],
});

async function delayServer(delayMs: number): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((_req, res) => setTimeout(() => res.end('ok\n'), delayMs));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('canary judge end to end: mesh → Prometheus → judge → verdict, webhook, metrics', () => {
  let nats: Awaited<ReturnType<typeof startNats>>;
  let prom: Awaited<ReturnType<typeof startPrometheus>>;
  let coordinator: RunningCoordinator;
  let aggregator: RunningAggregator;
  const probers: RunningProber[] = [];
  const servers: { url: string; close(): Promise<void> }[] = [];
  let admin: ReturnType<typeof createAdminClient>;
  const hooks: { body: Record<string, unknown>; headers: IncomingMessage['headers'] }[] = [];
  let hookServer: Server;
  let hookUrl: string;

  before(async () => {
    [nats, prom] = await Promise.all([startNats(), startPrometheus()]);
    coordinator = await startCoordinator(
      loadConfig(coordinatorConfigSchema, {
        text: `id: coordinator-canary\nnats:\n  servers: ["${nats.url}"]\ngrpc:\n  listen: 127.0.0.1:0\nhttp:\n  listen: 127.0.0.1:0\nrebalance_delay: 100ms\ncanary:\n  prometheus_url: ${prom.url}\n`,
        env: {},
      }),
      { log: silentLogger() },
    );
    for (const zone of ['a', 'b', 'c']) {
      const cfg = loadConfig(proberConfigSchema, { text: `id: prober-${zone}\nzone: ${zone}\nregion: test\nnats:\n  servers: ["${nats.url}"]\nhttp:\n  listen: 127.0.0.1:0\nheartbeat_interval: 250ms\npublish:\n  max_delay: 100ms\nebpf:\n  enabled: false\n`, env: {} });
      probers.push(await startProber(cfg, { log: silentLogger() }));
    }
    aggregator = await startAggregator(
      loadConfig(aggregatorConfigSchema, { text: `id: aggregator-canary\nnats:\n  servers: ["${nats.url}"]\nhttp:\n  listen: 127.0.0.1:0\nremote_write:\n  - url: ${prom.writeUrl}\n    batch_deadline: 100ms\n`, env: {} }),
      { log: silentLogger() },
    );
    hookServer = createServer((req, res) => {
      let data = '';
      req.on('data', (c) => (data += c));
      req.on('end', () => {
        hooks.push({ body: JSON.parse(data) as Record<string, unknown>, headers: req.headers });
        res.end('{}');
      });
    });
    await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', r));
    hookUrl = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/rollback/open`;
    admin = createAdminClient(coordinator.grpcAddress);
    await waitFor(async () => ((await admin.listProbers({})).probers ?? []).filter((p) => p.state === 'alive').length === 3, { timeoutMs: 20_000, intervalMs: 200, what: 'three live probers' });
    // Four servers: regress/stable 20 ms, regress/canary 24 ms (+20 %), equal/* 20 ms.
    const arms = [
      ['regress', 'stable', 20],
      ['regress', 'canary', 24],
      ['equal', 'stable', 20],
      ['equal', 'canary', 20],
    ] as const;
    for (const [scenario, release, delay] of arms) {
      const s = await delayServer(delay);
      servers.push(s);
      for (const path of ['/a', '/b']) {
        await admin.addTarget({ url: `${s.url}${path}`, intervalMs: 250, timeoutMs: 200, replication: 2, labels: { release, scenario } });
      }
    }
    // Enough data to be decisive: ≥ 900 samples per arm (2 targets × 2 probers × 4/s ≈ 16/s).
    let seen = '';
    await waitFor(
      async () => {
        const v = (await prom.query('sum by (scenario, release) (count_over_time(probe_duration_seconds{scenario!=""}[2m]))')) as { metric: Record<string, string>; value: [number, string] }[];
        seen = v.map((x) => `${x.metric.scenario}/${x.metric.release}=${x.value[1]}`).join(' ');
        if (process.env.PROBEMESH_TEST_VERBOSE) console.log(seen);
        return v.length === 4 && v.every((x) => Number(x.value[1]) >= 900) ? true : undefined;
      },
      { timeoutMs: 110_000, intervalMs: 2000, what: `900 samples per arm in Prometheus (seen: ${seen})` },
    );
  });

  after(async () => {
    admin?.close();
    await Promise.allSettled(probers.map((p) => p.stop()));
    await aggregator?.stop();
    await coordinator?.stop();
    await Promise.allSettled([prom?.stop(), nats?.stop(), ...servers.map((s) => s.close()), new Promise<void>((r) => (hookServer ? hookServer.close(() => r()) : r()))]);
  });

  const analyze = async (scenario: string, configJson = JUDGE) => {
    const res = await admin.analyzeCanary({ baselineSelector: `{release="stable",scenario="${scenario}"}`, canarySelector: `{release="canary",scenario="${scenario}"}`, windowSeconds: 120, configJson }, { timeoutMs: 60_000 });
    return { res, v: JSON.parse(res.verdictJson) as CanaryVerdict };
  };

  test('+20 % server delay: AnalyzeCanary FAILs, with effect, counts, deciding threshold and attribution to server processing', async () => {
    const { res, v } = await analyze('regress');
    assert.equal(res.verdict, 'FAIL', JSON.stringify(v.decidedBy));
    assert.equal(v.decidedBy.rule, 'critical_metric');
    assert.equal(v.decidedBy.limit, 0.1, 'the seed config’s marginal threshold decided');
    const lat = v.metrics.find((m) => m.name === 'latency')!;
    assert.ok(lat.samples.baseline! >= 900 && lat.samples.canary! >= 900, JSON.stringify(lat.samples));
    const ratio = lat.effect!.value;
    assert.ok(ratio > 1.12 && ratio < 1.3, `HL ratio ${ratio} (server 24 ms vs 20 ms plus probe overhead)`);
    assert.ok(lat.effect!.lower > 1.1, `interval lower bound ${lat.effect!.lower}`);
    assert.equal(v.attribution?.primary, 'server_processing', v.attribution?.summary);
    const proc = v.attribution!.components.find((c) => c.component === 'server_processing')!;
    assert.ok(proc.shiftSeconds > 0.003 && proc.shiftSeconds < 0.006, `processing shift ${proc.shiftSeconds}s ≈ 4 ms`);
    const net = v.attribution!.components.find((c) => c.component === 'network')!;
    assert.equal(net.increased, false, 'RTT steady');
    assert.match(v.attribution!.summary, /application regression/);
  });

  test('equal servers: AnalyzeCanary PASSes', async () => {
    const { res, v } = await analyze('equal');
    if (process.env.PROBEMESH_TEST_VERBOSE) console.log(JSON.stringify(await prom.query('sum by (failure_code, release, scenario, prober) (count_over_time(probe_failure_info[5m]))')), JSON.stringify(v.metrics.map((m) => m.samples)));
    assert.equal(res.verdict, 'PASS', JSON.stringify(v.metrics.map((m) => [m.name, m.classification, m.reason])));
    assert.equal(res.score, 100);
    const lat = v.metrics.find((m) => m.name === 'latency')!;
    assert.ok(Math.abs(lat.effect!.value - 1) < 0.05, `ratio ${lat.effect!.value}`);
  });

  test('bad judge config and selectors over gRPC: INVALID_ARGUMENT naming the field', async () => {
    const cases: [string, string, RegExp][] = [
      ['{"metrics":[{"name":"api_request_duration_seconds"}]}', '{release="stable"}', /config_json\.metrics\[0\]\.name: unknown metric/],
      ['{"thresholds":{"pass":0.1,"marginal":0.05}}', '{release="stable"}', /config_json\.thresholds: out of order/],
      ['', '', /baseline_selector: must not be empty/],
    ];
    for (const [configJson, baseline, re] of cases) {
      await assert.rejects(
        admin.analyzeCanary({ baselineSelector: baseline, canarySelector: '{release="canary"}', windowSeconds: 60, configJson }),
        (e: Error & { code?: number }) => e.code === 3 && re.test(e.message),
        re.source,
      );
    }
  });

  test('continuous run: FAIL at the first look → rollback webhook (Flagger payload), verdict metrics in Prometheus, verdict endpoint', async () => {
    const cfg = loadConfig(canaryRunConfigSchema, {
      text: [
        'name: e2e-regress',
        'namespace: test',
        `prometheus: { url: "${prom.url}" }`,
        `baseline: '{release="stable",scenario="regress"}'`,
        `canary: '{release="canary",scenario="regress"}'`,
        'interval: 1s',
        'looks: 3',
        'window: 2m',
        `judge: ${JUDGE}`,
        `remote_write: { url: "${prom.writeUrl}" }`,
        `webhooks: [{ url: "${hookUrl}" }]`,
        'http: { listen: 127.0.0.1:0 }',
      ].join('\n'),
      env: {},
    });
    const running = await startCanaryRun(cfg, { log: silentLogger() });
    try {
      const v = await running.done;
      assert.equal(v?.verdict, 'FAIL');
      assert.equal(running.run.status.looksDone, 1, 'stopped at the first FAIL');
      assert.equal(hooks.length, 1, 'one rollback call');
      const body = hooks[0]!.body as { name: string; namespace: string; phase: string; metadata: Record<string, string>; verdict: CanaryVerdict };
      assert.equal(hooks[0]!.headers['content-type'], 'application/json');
      assert.deepEqual([body.name, body.namespace, body.phase, body.metadata.verdict], ['e2e-regress', 'test', 'Failed', 'FAIL']);
      assert.ok(Object.values(body.metadata).every((x) => typeof x === 'string'), 'Flagger metadata is a string map');
      assert.equal(body.verdict.attribution?.primary, 'server_processing');
      const verdictRes = await fetch(`${running.http!.url}/verdict`);
      assert.equal(verdictRes.status, 200);
      const j = (await verdictRes.json()) as { verdict: string; ok: boolean; failed: boolean; done: boolean };
      assert.deepEqual([j.verdict, j.ok, j.failed, j.done], ['FAIL', false, true, true]);
      assert.equal((await fetch(`${running.http!.url}/flagger/rollback`, { method: 'POST', body: '{"name":"e2e-regress","namespace":"test"}' })).status, 200);
      assert.equal((await fetch(`${running.http!.url}/flagger/promote`)).status, 403);
      const written = await waitFor(async () => {
        const r = (await prom.query('probemesh_canary_verdict{canary="e2e-regress"}')) as { value: [number, string] }[];
        return r.length === 1 ? r : undefined;
      }, { timeoutMs: 10_000, what: 'probemesh_canary_verdict in Prometheus' });
      assert.equal(written[0]!.value[1], '2', '2 = FAIL');
      const ratio = (await prom.query('probemesh_canary_metric_effect_ratio{canary="e2e-regress",metric="latency"}')) as { value: [number, string] }[];
      assert.ok(Number(ratio[0]?.value[1]) > 1.1);
      assert.equal((await prom.query('probemesh_canary_score{canary="e2e-regress"}')).length, 1);
    } finally {
      await running.stop();
    }
  });
});
