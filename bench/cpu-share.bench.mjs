#!/usr/bin/env node
// The prober's own CPU as a share of one core for 1,000 HTTP targets at a 1 s interval
// (the seeds ask monitoring to stay under 2 % CPU of what it watches, alert above 5 %).
// Real parts: nats-server, a coordinator, ONE prober as its own process (the CLI), and a
// target HTTP server in its own process; 1,000 distinct target URLs. CPU is read from
// /proc/<pid>/stat of the prober process only, over several windows after a warm-up;
// eBPF off and on are measured in the same run, alternating.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const { startNats, freePort } = require(join(root, 'test/dist/harness'));
const { loadConfig, silentLogger } = require('@probemesh/common');
const { startCoordinator, coordinatorConfigSchema, createAdminClient } = require('@probemesh/coordinator');

const TARGETS = Number(process.env.TARGETS ?? 1000);
const WINDOW_S = Number(process.env.WINDOW_S ?? 15);
const WINDOWS = Number(process.env.WINDOWS ?? 3);
const TICK = 100; // USER_HZ on Linux

const cpuSeconds = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / TICK;
};
const rssMiB = (pid) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function metric(url, name) {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith(name));
}

async function runProber(dir, natsUrl, ebpf) {
  const port = await freePort();
  const cfg = join(dir, `prober-${ebpf}.yml`);
  writeFileSync(cfg, `id: bench-prober\nzone: a\nnats:\n  servers: ["${natsUrl}"]\nhttp:\n  listen: 127.0.0.1:${port}\nebpf:\n  enabled: ${ebpf}\nlog:\n  level: warn\n`);
  const p = spawn(process.execPath, [join(root, 'services/cli/dist/main.js'), 'prober', '--config', cfg], { stdio: 'ignore' });
  return { proc: p, url: `http://127.0.0.1:${port}` };
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'pm-cpu-'));
  const nats = await startNats();
  const targetPort = await freePort();
  const server = spawn(process.execPath, ['-e', `require('http').createServer((q, r) => r.end('ok')).listen(${targetPort}, '127.0.0.1')`], { stdio: 'ignore' });
  const coordinator = await startCoordinator(loadConfig(coordinatorConfigSchema, { text: `nats:\n  servers: ["${nats.url}"]\ngrpc:\n  listen: 127.0.0.1:0\nhttp:\n  listen: 127.0.0.1:0\n`, env: {} }), { log: silentLogger() });
  const admin = createAdminClient(coordinator.grpcAddress);
  const results = [];
  try {
    await admin.importTargets({ format: 'list', content: Array.from({ length: TARGETS }, (_, i) => `http://127.0.0.1:${targetPort}/t/${i}`).join('\n'), intervalMs: 1000, timeoutMs: 800 });
    for (const ebpf of [false, true]) {
      const { proc, url } = await runProber(dir, nats.url, ebpf);
      try {
        for (let i = 0; i < 120; i++) {
          const t = await metric(url, 'probemesh_prober_targets').catch(() => []);
          if (t.some((l) => Number(l.split(' ').pop()) === TARGETS)) break;
          await sleep(500);
        }
        await sleep(10_000); // warm-up: schedule spread, JIT, bpftrace attach
        const shares = [];
        for (let w = 0; w < WINDOWS; w++) {
          const c0 = cpuSeconds(proc.pid);
          const t0 = process.hrtime.bigint();
          await sleep(WINDOW_S * 1000);
          const secs = Number(process.hrtime.bigint() - t0) / 1e9;
          shares.push(((cpuSeconds(proc.pid) - c0) / secs) * 100);
        }
        const probes = await metric(url, 'probemesh_prober_probes_total');
        const lagSum = (await metric(url, 'probemesh_prober_scheduler_lag_seconds_sum'))[0];
        const lagCount = (await metric(url, 'probemesh_prober_scheduler_lag_seconds_count'))[0];
        const ok = probes.filter((l) => l.includes('result="success"')).reduce((a, l) => a + Number(l.split(' ').pop()), 0);
        const all = probes.reduce((a, l) => a + Number(l.split(' ').pop()), 0);
        results.push({
          ebpf,
          targets: TARGETS,
          cpu_percent_of_one_core: { median: median(shares), min: Math.min(...shares), max: Math.max(...shares), windows: shares },
          cpu_percent_per_1000_targets: (median(shares) * 1000) / TARGETS,
          probes_total: all,
          success_ratio: all ? ok / all : 0,
          mean_scheduler_lag_ms: lagCount ? (Number(lagSum.split(' ').pop()) / Number(lagCount.split(' ').pop())) * 1000 : null,
          peak_rss_mib: rssMiB(proc.pid),
        });
      } finally {
        proc.kill('SIGTERM');
        await new Promise((r) => proc.once('exit', r));
      }
    }
  } finally {
    admin.close();
    await coordinator.stop();
    server.kill('SIGKILL');
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log('\nprober CPU, 1,000 HTTP targets at 1 s (share of one core; goal < 2 %, alert > 5 %)');
  console.log('eBPF   median    min..max        per 1000 targets   success   mean lag   peak RSS');
  for (const r of results) {
    const c = r.cpu_percent_of_one_core;
    console.log(`${String(r.ebpf).padEnd(6)} ${c.median.toFixed(2).padStart(6)} %  ${c.min.toFixed(2)}..${c.max.toFixed(2)} %   ${r.cpu_percent_per_1000_targets.toFixed(2).padStart(6)} %           ${(r.success_ratio * 100).toFixed(1)} %   ${r.mean_scheduler_lag_ms?.toFixed(2)} ms   ${r.peak_rss_mib.toFixed(0)} MiB`);
  }
  writeFileSync(join(root, 'bench/results/cpu-share.json'), JSON.stringify({ date: new Date().toISOString(), window_s: WINDOW_S, windows: WINDOWS, results }, null, 2) + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
