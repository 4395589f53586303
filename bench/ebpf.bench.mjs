// eBPF overhead: prober CPU per 1,000 http probes with eBPF (bpftrace + join per probe) on
// vs off, same machine, alternating rounds, in two shapes:
//  - burst: PROBES probes at concurrency CONCURRENCY, as fast as they go;
//  - steady: RATE probes/s (10 ms ticks) for STEADY_S seconds after a 5 s warm-up, the
//    shape of a prober in service; lines then come one by one, not in batches.
// CPU = the probing process (its user and system time apart) plus, apart, the bpftrace
// process (/proc/<pid>/stat) over the timed section; the attach cost is reported apart.
// The target server runs in the parent process. Needs root for the "on" side. Writes
// bench/results/ebpf.json.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const PROBES = Number(process.env.PROBES ?? 3000);
const CONC = Number(process.env.CONCURRENCY ?? 50);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const RATE = Number(process.env.RATE ?? 1000);
const STEADY_S = Number(process.env.STEADY_S ?? 15);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const TICK = 100; // USER_HZ

function procTimes(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return { user: Number(f[11]) / TICK, system: Number(f[12]) / TICK };
  } catch {
    return { user: 0, system: 0 };
  }
}
function procCpuS(pid) {
  const t = procTimes(pid);
  return t.user + t.system;
}

if (process.argv[2] === 'worker') {
  // One side of one round, in its own process: `worker <on|off> <port>`.
  const { AnchoredClock, silentLogger } = require('@probemesh/common');
  const { EbpfRunner, ProbeModules } = require('@probemesh/prober');
  const on = process.argv[3] === 'on';
  const url = `http://127.0.0.1:${process.argv[4]}/`;
  const log = silentLogger();
  const clock = new AnchoredClock();
  const runner = new EbpfRunner({ enabled: on, log });
  const t0 = process.cpuUsage();
  const st = await runner.start();
  const attachCpu = process.cpuUsage(t0);
  if (on && !st.up) throw new Error(`eBPF down: ${st.reason}`);
  const bpfPid = runner['child']?.pid;
  const bpfAttachCpu = bpfPid ? procCpuS(bpfPid) : 0;
  const modules = new ProbeModules();
  if (process.argv[5] === 'steady') {
    let n = 0;
    let ok = 0;
    let joined = 0;
    const one = async () => {
      const out = await modules.run({ id: url, url, module: 'http_2xx', timeoutMs: 800, labels: {} }, AbortSignal.timeout(800), { clock, log });
      n++;
      if (out.success) ok++;
      if (out.socketInfo && (await runner.join(out.socketInfo))) joined++;
    };
    let stop = false;
    const timer = setInterval(() => {
      if (!stop) for (let i = 0; i < RATE / 100; i++) void one();
    }, 10);
    await sleep(5000);
    const [c0, b0, n0, ok0, j0] = [procTimes(process.pid), bpfPid ? procTimes(bpfPid) : undefined, n, ok, joined];
    const w0 = process.hrtime.bigint();
    await sleep(STEADY_S * 1000);
    const [c1, b1, n1, ok1, j1] = [procTimes(process.pid), bpfPid ? procTimes(bpfPid) : undefined, n, ok, joined];
    const wall = Number(process.hrtime.bigint() - w0) / 1e9;
    stop = true;
    clearInterval(timer);
    await sleep(1000);
    await runner.stop();
    const pct = (a, b) => ((b - a) / wall) * 100;
    process.stdout.write(JSON.stringify({ on, steady: true, wall, probes: n1 - n0, ok: ok1 - ok0, joined: j1 - j0, user: pct(c0.user, c1.user), system: pct(c0.system, c1.system), bpftrace: b0 ? pct(b0.user + b0.system, b1.user + b1.system) : 0 }) + '\n');
    process.exit(0);
  }
  let next = 0;
  let joined = 0;
  let ok = 0;
  const c0 = process.cpuUsage();
  const w0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONC }, async () => {
      while (next < PROBES) {
        next++;
        const out = await modules.run({ id: url, url, module: 'http_2xx', timeoutMs: 5000, labels: {} }, AbortSignal.timeout(5000), { clock, log });
        if (out.success) ok++;
        if (out.socketInfo && (await runner.join(out.socketInfo))) joined++;
      }
    }),
  );
  const wall = Number(process.hrtime.bigint() - w0) / 1e9;
  const cpu = process.cpuUsage(c0);
  const bpfCpu = bpfPid ? procCpuS(bpfPid) - bpfAttachCpu : 0;
  await runner.stop();
  const proberCpu = (cpu.user + cpu.system) / 1e6;
  process.stdout.write(JSON.stringify({ on, ok, joined, wall, proberCpu, bpfCpu, attachCpu: (attachCpu.user + attachCpu.system) / 1e6 + bpfAttachCpu, rssMb: process.resourceUsage().maxRSS / 1024, lost: runner.counts.lost }) + '\n');
  process.exit(0);
}

// Parent: the target server (its own process would be fairer; keep it here, it is the same for both sides).
const server = createServer((_q, s) => s.end('ok\n'));
server.keepAliveTimeout = 1;
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const port = server.address().port;
const runs = [];
for (let r = 0; r < ROUNDS; r++) {
  for (const side of r % 2 ? ['on', 'off'] : ['off', 'on']) {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'worker', side, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const code = await new Promise((res) => child.once('close', res));
    if (code !== 0) throw new Error(`worker ${side} failed (${code})`);
    runs.push(JSON.parse(out));
  }
}
const steady = [];
for (let r = 0; r < ROUNDS; r++) {
  for (const side of r % 2 ? ['on', 'off'] : ['off', 'on']) {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'worker', side, String(port), 'steady'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const code = await new Promise((res) => child.once('close', res));
    if (code !== 0) throw new Error(`steady worker ${side} failed (${code})`);
    steady.push(JSON.parse(out));
  }
}
server.close();
const med = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const side = (on) => {
  const rs = runs.filter((x) => x.on === on);
  const per1k = rs.map((x) => ((x.proberCpu + x.bpfCpu) / PROBES) * 1000);
  return {
    cpu_s_per_1k_median: med(per1k),
    cpu_s_per_1k_min: Math.min(...per1k),
    cpu_s_per_1k_max: Math.max(...per1k),
    prober_cpu_s_per_1k: med(rs.map((x) => (x.proberCpu / PROBES) * 1000)),
    bpftrace_cpu_s_per_1k: med(rs.map((x) => (x.bpfCpu / PROBES) * 1000)),
    probes_per_s: med(rs.map((x) => PROBES / x.wall)),
    joined: rs.map((x) => `${x.joined}/${PROBES}`).join(' '),
    attach_cpu_s: med(rs.map((x) => x.attachCpu)),
    peak_rss_mb: Math.max(...rs.map((x) => x.rssMb)),
    lost_events: rs.reduce((a, x) => a + x.lost, 0),
  };
};
const off = side(false);
const on = side(true);
const extra = (on.cpu_s_per_1k_median / off.cpu_s_per_1k_median - 1) * 100;
console.log(`\n${ROUNDS} rounds x ${PROBES} http probes per side, concurrency ${CONC}, alternating`);
console.log('| side | CPU-s per 1k probes (median, min–max) | of which bpftrace | probes/s | joined | attach CPU-s | peak RSS MB |');
console.log('|---|---|---|---|---|---|---|');
for (const [n, s] of [['eBPF off', off], ['eBPF on', on]]) {
  console.log(`| ${n} | ${s.cpu_s_per_1k_median.toFixed(3)} (${s.cpu_s_per_1k_min.toFixed(3)}–${s.cpu_s_per_1k_max.toFixed(3)}) | ${s.bpftrace_cpu_s_per_1k.toFixed(3)} | ${s.probes_per_s.toFixed(0)} | ${s.joined} | ${s.attach_cpu_s.toFixed(2)} | ${s.peak_rss_mb.toFixed(0)} |`);
}
console.log(`extra CPU with eBPF (burst, bpftrace included): ${extra.toFixed(1)}% (goal < 10%)`);
const steadySide = (on) => {
  const rs = steady.filter((x) => x.on === on);
  const per1k = (x, v) => (v / 100) * (1000 / (x.probes / x.wall)); // CPU-s per 1,000 probes
  return {
    probes_per_s: med(rs.map((x) => x.probes / x.wall)),
    user_percent: med(rs.map((x) => x.user)),
    system_percent: med(rs.map((x) => x.system)),
    prober_percent: med(rs.map((x) => x.user + x.system)),
    prober_percent_all: rs.map((x) => x.user + x.system),
    bpftrace_percent: med(rs.map((x) => x.bpftrace)),
    prober_cpu_s_per_1k: med(rs.map((x) => per1k(x, x.user + x.system))),
    with_bpftrace_cpu_s_per_1k: med(rs.map((x) => per1k(x, x.user + x.system + x.bpftrace))),
    joined: rs.map((x) => `${x.joined}/${x.probes}`).join(' '),
    success: rs.map((x) => `${x.ok}/${x.probes}`).join(' '),
  };
};
const sOff = steadySide(false);
const sOn = steadySide(true);
const sExtra = (sOn.prober_cpu_s_per_1k / sOff.prober_cpu_s_per_1k - 1) * 100;
const sExtraAll = (sOn.with_bpftrace_cpu_s_per_1k / sOff.prober_cpu_s_per_1k - 1) * 100;
console.log(`\nsteady ${RATE} probes/s, ${STEADY_S} s per side, ${ROUNDS} rounds alternating`);
console.log('| side | probes/s | prober CPU, % of a core (user + system) | CPU-s per 1k probes | bpftrace, % of a core | joined |');
console.log('|---|---|---|---|---|---|');
for (const [n, s] of [['eBPF off', sOff], ['eBPF on', sOn]]) {
  console.log(`| ${n} | ${s.probes_per_s.toFixed(0)} | ${s.prober_percent.toFixed(1)} (${s.user_percent.toFixed(1)} + ${s.system_percent.toFixed(1)}) [${s.prober_percent_all.map((v) => v.toFixed(1)).join(', ')}] | ${s.prober_cpu_s_per_1k.toFixed(3)} | ${s.bpftrace_percent.toFixed(1)} | ${s.joined} |`);
}
console.log(`extra prober CPU with eBPF (steady): ${sExtra.toFixed(1)}%; with bpftrace's own: ${sExtraAll.toFixed(1)}% (goal < 10%)`);
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(join(here, 'results', 'ebpf.json'), JSON.stringify({ probes: PROBES, concurrency: CONC, rounds: ROUNDS, off, on, extra_cpu_percent: extra, runs, steady: { rate: RATE, seconds: STEADY_S, off: sOff, on: sOn, extra_prober_cpu_percent: sExtra, extra_with_bpftrace_percent: sExtraAll, runs: steady } }, null, 2));
