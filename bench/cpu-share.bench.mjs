#!/usr/bin/env node
// The prober's own CPU as a share of one core for 1,000 HTTP targets at a 1 s interval
// (the seeds ask monitoring to stay under 2 % CPU of what it watches, alert above 5 %).
// Real parts: nats-server, a coordinator, ONE prober as its own process (the CLI), and a
// target HTTP server in its own process; 1,000 distinct target URLs. CPU is read from
// /proc/<pid>/stat of the prober process (user and system apart), over several windows
// after a warm-up; bpftrace's own CPU (the prober's child) is reported beside it, not in it.
// eBPF off and on are measured in the same run, alternating (ROUNDS rounds: off,on,on,off,...).
// PROFILE_DIR=dir writes a V8 CPU profile of each prober (--cpu-prof) there.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
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
const WINDOWS = Number(process.env.WINDOWS ?? 2);
const ROUNDS = Number(process.env.ROUNDS ?? 2);
const PROFILE_DIR = process.env.PROFILE_DIR;
const TICK = 100; // USER_HZ on Linux

const cpuTimes = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return { user: Number(f[11]) / TICK, system: Number(f[12]) / TICK };
};
const childPid = (pid, comm) => {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      const c = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
      if (c === comm && Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) === pid) return Number(d);
    } catch {
      /* gone */
    }
  }
  return undefined;
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
  const prof = PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, `--cpu-prof-name=prober-ebpf-${ebpf}-${Date.now()}.cpuprofile`] : [];
  const p = spawn(process.execPath, [...prof, join(root, 'services/cli/dist/main.js'), 'prober', '--config', cfg], { stdio: 'ignore' });
  return { proc: p, url: `http://127.0.0.1:${port}` };
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'pm-cpu-'));
  const nats = await startNats();
  const targetPort = await freePort();
  const server = spawn(process.execPath, ['-e', `require('http').createServer((q, r) => r.end('ok')).listen(${targetPort}, '127.0.0.1')`], { stdio: 'ignore' });
  const coordinator = await startCoordinator(loadConfig(coordinatorConfigSchema, { text: `nats:\n  servers: ["${nats.url}"]\ngrpc:\n  listen: 127.0.0.1:0\nhttp:\n  listen: 127.0.0.1:0\n`, env: {} }), { log: silentLogger() });
  const admin = createAdminClient(coordinator.grpcAddress);
  const runs = [];
  const windows = [];
  try {
    await admin.importTargets({ format: 'list', content: Array.from({ length: TARGETS }, (_, i) => `http://127.0.0.1:${targetPort}/t/${i}`).join('\n'), intervalMs: 1000, timeoutMs: 800 });
    const order = Array.from({ length: ROUNDS }, (_, r) => (r % 2 ? [true, false] : [false, true])).flat();
    for (const ebpf of order) {
      const { proc, url } = await runProber(dir, nats.url, ebpf);
      try {
        for (let i = 0; i < 120; i++) {
          const t = await metric(url, 'probemesh_prober_targets').catch(() => []);
          if (t.some((l) => Number(l.split(' ').pop()) === TARGETS)) break;
          await sleep(500);
        }
        await sleep(10_000); // warm-up: schedule spread, JIT, bpftrace attach
        if (ebpf) {
          const up = await metric(url, 'probemesh_ebpf_up');
          if (!up.some((l) => l.endsWith(' 1'))) throw new Error(`eBPF did not come up: ${(await metric(url, 'probemesh_ebpf_info')).join(' ')}`);
        }
        const bpfPid = ebpf ? childPid(proc.pid, 'bpftrace') : undefined;
        if (ebpf && !bpfPid) throw new Error('eBPF on but no bpftrace child of the prober');
        const before = await metric(url, 'probemesh_prober_probes_total');
        const count = (ls) => ls.reduce((a, l) => a + Number(l.split(' ').pop()), 0);
        const w0 = process.hrtime.bigint();
        for (let w = 0; w < WINDOWS; w++) {
          const c0 = cpuTimes(proc.pid);
          const b0 = bpfPid ? cpuTimes(bpfPid) : undefined;
          const t0 = process.hrtime.bigint();
          await sleep(WINDOW_S * 1000);
          const secs = Number(process.hrtime.bigint() - t0) / 1e9;
          const c1 = cpuTimes(proc.pid);
          const b1 = bpfPid ? cpuTimes(bpfPid) : undefined;
          windows.push({
            ebpf,
            user: ((c1.user - c0.user) / secs) * 100,
            system: ((c1.system - c0.system) / secs) * 100,
            total: ((c1.user + c1.system - c0.user - c0.system) / secs) * 100,
            bpftrace: b0 ? ((b1.user + b1.system - b0.user - b0.system) / secs) * 100 : 0,
          });
        }
        const rate = (count(await metric(url, 'probemesh_prober_probes_total')) - count(before)) / (Number(process.hrtime.bigint() - w0) / 1e9);
        const probes = await metric(url, 'probemesh_prober_probes_total');
        const lagSum = (await metric(url, 'probemesh_prober_scheduler_lag_seconds_sum'))[0];
        const lagCount = (await metric(url, 'probemesh_prober_scheduler_lag_seconds_count'))[0];
        const ok = probes.filter((l) => l.includes('result="success"')).reduce((a, l) => a + Number(l.split(' ').pop()), 0);
        const all = probes.reduce((a, l) => a + Number(l.split(' ').pop()), 0);
        runs.push({
          ebpf,
          probes_per_s: rate,
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
  const results = [false, true].map((ebpf) => {
    const ws = windows.filter((w) => w.ebpf === ebpf);
    const rs = runs.filter((r) => r.ebpf === ebpf);
    const tot = ws.map((w) => w.total);
    return {
      ebpf,
      targets: TARGETS,
      cpu_percent_of_one_core: { median: median(tot), min: Math.min(...tot), max: Math.max(...tot), windows: tot },
      user_percent_median: median(ws.map((w) => w.user)),
      system_percent_median: median(ws.map((w) => w.system)),
      bpftrace_percent_median: median(ws.map((w) => w.bpftrace)),
      cpu_percent_per_1000_targets: (median(tot) * 1000) / TARGETS,
      probes_per_s: median(rs.map((r) => r.probes_per_s)),
      success_ratio: median(rs.map((r) => r.success_ratio)),
      mean_scheduler_lag_ms: median(rs.map((r) => r.mean_scheduler_lag_ms ?? 0)),
      peak_rss_mib: Math.max(...rs.map((r) => r.peak_rss_mib)),
    };
  });
  const [off, on] = results;
  const extra = (on.cpu_percent_of_one_core.median / off.cpu_percent_of_one_core.median - 1) * 100;
  console.log(`\nprober CPU, ${TARGETS} HTTP targets at 1 s (share of one core; goal < 2 %, alert > 5 %); ${ROUNDS} rounds x ${WINDOWS} windows of ${WINDOW_S} s per side`);
  console.log('eBPF   median    min..max        user    system   bpftrace(apart)  probes/s  success   mean lag   peak RSS');
  for (const r of results) {
    const c = r.cpu_percent_of_one_core;
    console.log(`${String(r.ebpf).padEnd(6)} ${c.median.toFixed(2).padStart(6)} %  ${c.min.toFixed(2)}..${c.max.toFixed(2)} %  ${r.user_percent_median.toFixed(2).padStart(6)} % ${r.system_percent_median.toFixed(2).padStart(6)} %  ${r.bpftrace_percent_median.toFixed(2).padStart(6)} %        ${r.probes_per_s.toFixed(0).padStart(6)}   ${(r.success_ratio * 100).toFixed(1)} %   ${r.mean_scheduler_lag_ms.toFixed(2)} ms   ${r.peak_rss_mib.toFixed(0)} MiB`);
  }
  console.log(`extra prober CPU with eBPF on: ${extra.toFixed(1)} % (goal < 10 %); with bpftrace's own CPU: ${(((on.cpu_percent_of_one_core.median + on.bpftrace_percent_median) / off.cpu_percent_of_one_core.median - 1) * 100).toFixed(1)} %`);
  writeFileSync(join(root, 'bench/results/cpu-share.json'), JSON.stringify({ date: new Date().toISOString(), window_s: WINDOW_S, windows_per_run: WINDOWS, rounds: ROUNDS, extra_cpu_percent: extra, results, windows, runs }, null, 2) + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
