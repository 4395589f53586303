/**
 * End to end through every part of the mesh, with real nats-server and Prometheus:
 * a target added over the gRPC AdminService is probed by one of three probers, its
 * results go through JetStream and the aggregator into Prometheus, and we read them
 * back from Prometheus.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, silentLogger } from '@probemesh/common';
import { aggregatorConfigSchema, RunningAggregator, startAggregator } from '@probemesh/aggregator';
import { coordinatorConfigSchema, createAdminClient, RunningCoordinator, startCoordinator } from '@probemesh/coordinator';
import { proberConfigSchema, RunningProber, startProber } from '@probemesh/prober';
import { refusedUrl, startHttpTargets, startNats, startPrometheus, waitFor } from '../harness';

type Vector = { metric: Record<string, string>; value: [number, string] }[];

describe('end to end: gRPC → coordinator → prober → JetStream → aggregator → Prometheus', () => {
  let nats: Awaited<ReturnType<typeof startNats>>;
  let prom: Awaited<ReturnType<typeof startPrometheus>>;
  let targets: Awaited<ReturnType<typeof startHttpTargets>>;
  let coordinator: RunningCoordinator;
  let aggregator: RunningAggregator;
  const probers: RunningProber[] = [];
  let admin: ReturnType<typeof createAdminClient>;

  const coordinatorConfig = () =>
    loadConfig(coordinatorConfigSchema, {
      text: `id: coordinator-e2e\nnats:\n  servers: ["${nats.url}"]\ngrpc:\n  listen: 127.0.0.1:0\nhttp:\n  listen: 127.0.0.1:0\ndead_after: 3s\nrebalance_delay: 100ms\n`,
      env: {},
    });

  before(async () => {
    [nats, prom, targets] = await Promise.all([startNats(), startPrometheus(), startHttpTargets()]);
    coordinator = await startCoordinator(coordinatorConfig(), { log: silentLogger() });
    for (const zone of ['a', 'b', 'c']) {
      const cfg = loadConfig(proberConfigSchema, {
        text: `id: prober-${zone}\nzone: ${zone}\nregion: test\nnats:\n  servers: ["${nats.url}"]\nhttp:\n  listen: 127.0.0.1:0\nheartbeat_interval: 250ms\npublish:\n  max_delay: 100ms\n`,
        env: {},
      });
      probers.push(await startProber(cfg, { log: silentLogger() }));
    }
    aggregator = await startAggregator(
      loadConfig(aggregatorConfigSchema, {
        text: `id: aggregator-e2e\nnats:\n  servers: ["${nats.url}"]\nhttp:\n  listen: 127.0.0.1:0\nremote_write:\n  - url: ${prom.writeUrl}\n    batch_deadline: 100ms\n`,
        env: {},
      }),
      { log: silentLogger() },
    );
    admin = createAdminClient(coordinator.grpcAddress);
    await waitFor(async () => ((await admin.listProbers({})).probers ?? []).filter((p) => p.state === 'alive').length === 3, { timeoutMs: 15_000, intervalMs: 200, what: 'three live probers' });
  });

  after(async () => {
    admin?.close();
    await Promise.allSettled(probers.map((p) => p.stop()));
    await aggregator?.stop();
    await coordinator?.stop();
    await Promise.allSettled([prom?.stop(), nats?.stop(), targets?.close()]);
  });

  const vector = async (q: string): Promise<Vector> => (await prom.query(q)) as Vector;

  test('a target added over gRPC lands in Prometheus with its labels and all five phases', async () => {
    const url = `${targets.baseUrl}/ok`;
    const res = await admin.addTarget({ url, intervalMs: 500, timeoutMs: 400, labels: { team: 'payments' } });
    assert.equal(res.target?.url, url);
    assert.equal(res.target?.module, 'http_2xx');

    const success = await waitFor(async () => {
      const v = await vector(`probe_success{instance="${url}"}`);
      return v.length > 0 && v[0]!.value[1] === '1' ? v : undefined;
    }, { timeoutMs: 20_000, intervalMs: 300, what: `probe_success == 1 for ${url}` });
    const m = success[0]!.metric;
    assert.equal(m.module, 'http_2xx');
    assert.equal(m.job, 'probemesh');
    assert.equal(m.team, 'payments', 'the target label is on the series');
    assert.match(m.prober ?? '', /^prober-[abc]$/);
    assert.equal(m.zone, m.prober!.slice(-1), 'zone label is the zone of the prober that probed');

    const phases = await waitFor(async () => {
      const v = await vector(`probe_http_duration_seconds{instance="${url}"}`);
      return v.length === 5 ? v : undefined;
    }, { timeoutMs: 10_000, intervalMs: 300, what: 'five probe_http_duration_seconds phases' });
    assert.deepEqual(phases.map((p) => p.metric.phase).sort(), ['connect', 'processing', 'resolve', 'tls', 'transfer']);
    const connect = Number(phases.find((p) => p.metric.phase === 'connect')!.value[1]);
    assert.ok(connect > 0 && connect < 0.1, `connect phase on loopback is positive and small: ${connect}s`);
    const status = await vector(`probe_http_status_code{instance="${url}"}`);
    assert.equal(status[0]?.value[1], '200');
    const duration = await vector(`probe_duration_seconds{instance="${url}"}`);
    assert.ok(Number(duration[0]?.value[1]) > 0);
  });

  test('kernel TCP timings from eBPF reach Prometheus next to the user-space phases', async (t) => {
    if (process.getuid?.() !== 0) {
      t.skip('needs root for bpftrace (CI runs as root)');
      return;
    }
    const url = `${targets.baseUrl}/ok`;
    const kernel = await waitFor(async () => {
      const v = await vector(`probe_tcp_kernel_connect_seconds{instance="${url}"}`);
      return v.length > 0 ? v : undefined;
    }, { timeoutMs: 30_000, intervalMs: 500, what: `probe_tcp_kernel_connect_seconds for ${url}` });
    const k = Number(kernel[0]!.value[1]);
    assert.ok(k > 0 && k < 0.05, `kernel connect on loopback is positive and small: ${k}s`);
    const srtt = await vector(`probe_tcp_srtt_seconds{instance="${url}"}`);
    assert.ok(Number(srtt[0]?.value[1]) > 0, 'srtt is exported');
    const retrans = await vector(`probe_tcp_retransmits{instance="${url}"}`);
    assert.equal(retrans[0]?.value[1], '0', 'no retransmits on loopback');
  });

  test('failing targets give probe_success 0 and a failure code', async () => {
    const refused = await refusedUrl();
    const failing = `${targets.baseUrl}/fail`;
    await admin.addTarget({ url: refused, intervalMs: 500, timeoutMs: 400 });
    await admin.addTarget({ url: failing, intervalMs: 500, timeoutMs: 400 });
    for (const [url, code] of [[refused, 'connect_refused'], [failing, 'http_status']] as const) {
      const v = await waitFor(async () => {
        const r = await vector(`probe_failure_info{instance="${url}"}`);
        return r.length > 0 ? r : undefined;
      }, { timeoutMs: 20_000, intervalMs: 300, what: `probe_failure_info for ${url}` });
      assert.equal(v[0]!.metric.failure_code, code);
      const s = await vector(`probe_success{instance="${url}"}`);
      assert.equal(s[0]?.value[1], '0', `${url} probe_success is 0`);
    }
    const status = await vector(`probe_http_status_code{instance="${failing}"}`);
    assert.equal(status[0]?.value[1], '500');
  });

  test('removing a target stops new samples', async () => {
    const url = `${targets.baseUrl}/ok?removed=1`;
    await admin.addTarget({ url, intervalMs: 300, timeoutMs: 250 });
    await waitFor(async () => (await vector(`probe_success{instance="${url}"}`)).length > 0, { timeoutMs: 20_000, intervalMs: 300, what: `samples for ${url}` });
    await admin.removeTarget({ url });
    await new Promise((r) => setTimeout(r, 2000)); // in-flight probes and batches settle
    const count = async () => Number((await vector(`count_over_time(probe_success{instance="${url}"}[1h])`))[0]?.value[1] ?? 0);
    const before = await count();
    assert.ok(before > 0);
    await new Promise((r) => setTimeout(r, 2500)); // > 8 intervals
    assert.equal(await count(), before, 'no new samples after removal');
    const listed = await admin.listTargets({});
    assert.ok(!(listed.targets ?? []).some((t) => t.url === url));
  });

  test('targets survive a coordinator restart and probing continues', async () => {
    const url = `${targets.baseUrl}/ok`;
    const beforeRestart = (await admin.listTargets({})).targets ?? [];
    assert.ok(beforeRestart.some((t) => t.url === url));
    admin.close();
    await coordinator.stop();
    coordinator = await startCoordinator(coordinatorConfig(), { log: silentLogger() });
    admin = createAdminClient(coordinator.grpcAddress);
    const afterRestart = (await admin.listTargets({})).targets ?? [];
    assert.deepEqual(afterRestart.map((t) => t.id).sort(), beforeRestart.map((t) => t.id).sort());
    const since = Date.now() / 1000;
    await waitFor(async () => {
      const v = await vector(`timestamp(probe_success{instance="${url}"})`);
      return v.some((s) => Number(s.value[1]) > since + 1) ? true : undefined;
    }, { timeoutMs: 20_000, intervalMs: 300, what: 'fresh samples after the coordinator restart' });
  });
});
