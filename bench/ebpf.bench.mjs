// eBPF overhead: prober CPU per 1,000 http probes with eBPF (bpftrace + join per probe) on
// vs off, same machine, alternating rounds, in two shapes:
//  - burst: PROBES probes at concurrency CONCURRENCY, as fast as they go;
//  - steady: RATE probes/s (10 ms ticks) for STEADY_S seconds after a 5 s warm-up, the
//    shape of a prober in service; sockets then finish one by one, not in batches.
// CPU = the probing process (its user and system time apart) plus, apart, the bpftrace
// process (/proc/<pid>/stat) over the timed section; the attach cost is reported apart.
// In the steady shape also: how long each probe waited for its kernel record after it
// ended (the program prints records every 20 ms), and the in-kernel run time of the BPF
// programs (kernel.bpf_stats_enabled is set for the run, then restored; run_time_ns of
// bpftrace's programs from /proc/<pid>/fdinfo) — BPF_STATS=0 leaves it off.
// EBPF_BEFORE=<dir> adds a side "before": the same worker with the prober (program,
// parser, joiner) of another built checkout, e.g. the commit before a change, measured in
// the same run. EBPF_VARIANT=<file.bt> adds a side "variant": this prober with another
// bpftrace program (same output format), to try a change of the program. SHAPES=steady
// (or burst) runs one shape only. The target server runs in the parent process. Needs root for the "on"
// sides. Writes bench/results/ebpf.json.
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const PROBES = Number(process.env.PROBES ?? 3000);
const CONC = Number(process.env.CONCURRENCY ?? 50);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const RATE = Number(process.env.RATE ?? 1000);
const STEADY_S = Number(process.env.STEADY_S ?? 15);
const BEFORE = process.env.EBPF_BEFORE ? resolve(process.env.EBPF_BEFORE) : undefined;
const VARIANT = process.env.EBPF_VARIANT ? resolve(process.env.EBPF_VARIANT) : undefined;
const BPF_STATS = process.env.BPF_STATS !== '0';
const SHAPES = (process.env.SHAPES ?? 'burst,steady').split(',');
const STATS_SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';
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
/** Sum of run_time_ns / run_cnt over the BPF programs a process holds (0 unless bpf_stats is on). */
function bpfRunStats(pid) {
  let ns = 0;
  let cnt = 0;
  try {
    for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
      let info;
      try {
        info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
      } catch {
        continue;
      }
      if (!info.includes('prog_type:')) continue;
      ns += Number(/run_time_ns:\s*(\d+)/.exec(info)?.[1] ?? 0);
      cnt += Number(/run_cnt:\s*(\d+)/.exec(info)?.[1] ?? 0);
    }
  } catch {
    /* gone */
  }
  return { ns, cnt };
}
/** bpftrace processes on the host other than `own` (other users' tracing adds to every tracepoint hit). */
function otherBpftrace(own) {
  let n = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === own) continue;
    try {
      if (readFileSync(`/proc/${d}/comm`, 'utf8').trim() === 'bpftrace') n++;
    } catch {
      /* gone */
    }
  }
  return n;
}
const pctile = (xs, p) => {
  if (!xs.length) return 0;
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

if (process.argv[2] === 'worker') {
  // One side of one round, in its own process: `worker <off|on|before|variant> <port> [steady]`.
  const side = process.argv[3];
  const { AnchoredClock, silentLogger } = require('@probemesh/common');
  const { ProbeModules } = require('@probemesh/prober');
  // "before": the eBPF runner (program, parser, joiner) of the other checkout; probes from this one.
  const { EbpfRunner } = side === 'before' ? require(join(BEFORE, 'services', 'prober', 'dist', 'ebpf')) : require('@probemesh/prober');
  const on = side !== 'off';
  const url = `http://127.0.0.1:${process.argv[4]}/`;
  const log = silentLogger();
  const clock = new AnchoredClock();
  const runner = new EbpfRunner({ enabled: on, log, programPath: side === 'variant' ? VARIANT : undefined });
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
    let waits = null; // ms from a probe's end to its join, collected in the timed section
    const one = async () => {
      const out = await modules.run({ id: url, url, module: 'http_2xx', timeoutMs: 800, labels: {} }, AbortSignal.timeout(800), { clock, log });
      n++;
      if (out.success) ok++;
      if (!out.socketInfo) return;
      const w0 = process.hrtime.bigint();
      const k = await runner.join(out.socketInfo);
      if (k) joined++;
      if (on && waits) waits.push(Number(process.hrtime.bigint() - w0) / 1e6);
    };
    let stop = false;
    const timer = setInterval(() => {
      if (!stop) for (let i = 0; i < RATE / 100; i++) void one();
    }, 10);
    await sleep(5000);
    waits = [];
    const [c0, b0, k0, n0, ok0, j0] = [procTimes(process.pid), bpfPid ? procTimes(bpfPid) : undefined, bpfPid ? bpfRunStats(bpfPid) : undefined, n, ok, joined];
    const w0 = process.hrtime.bigint();
    await sleep(STEADY_S * 1000);
    const others = otherBpftrace(bpfPid);
    const [c1, b1, k1, n1, ok1, j1] = [procTimes(process.pid), bpfPid ? procTimes(bpfPid) : undefined, bpfPid ? bpfRunStats(bpfPid) : undefined, n, ok, joined];
    const wall = Number(process.hrtime.bigint() - w0) / 1e9;
    const ws = waits;
    waits = null;
    stop = true;
    clearInterval(timer);
    await sleep(1000);
    const joins = { ...runner.joiner.counts };
    await runner.stop();
    const pct = (a, b) => ((b - a) / wall) * 100;
    const probes = n1 - n0;
    process.stdout.write(
      JSON.stringify({
        side,
        on,
        steady: true,
        wall,
        probes,
        ok: ok1 - ok0,
        joined: j1 - j0,
        user: pct(c0.user, c1.user),
        system: pct(c0.system, c1.system),
        bpftrace: b0 ? pct(b0.user + b0.system, b1.user + b1.system) : 0,
        // In-kernel BPF time, % of a core, and µs per probe (0 when bpf_stats is off).
        bpfKernel: k0 ? ((k1.ns - k0.ns) / 1e9 / wall) * 100 : 0,
        bpfKernelUsPerProbe: k0 && probes ? (k1.ns - k0.ns) / 1e3 / probes : 0,
        bpfRunsPerProbe: k0 && probes ? (k1.cnt - k0.cnt) / probes : 0,
        joinWaitMs: { p50: pctile(ws, 50), p99: pctile(ws, 99), max: ws.length ? Math.max(...ws) : 0 },
        joins,
        lost: runner.counts.lost,
        otherBpftrace: others,
      }) + '\n',
    );
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
  process.stdout.write(JSON.stringify({ side, on, ok, joined, wall, proberCpu, bpfCpu, attachCpu: (attachCpu.user + attachCpu.system) / 1e6 + bpfAttachCpu, rssMb: process.resourceUsage().maxRSS / 1024, lost: runner.counts.lost }) + '\n');
  process.exit(0);
}

// Parent: the target server (its own process would be fairer; keep it here, it is the same for every side).
const SIDES = ['off', ...(BEFORE ? ['before'] : []), 'on', ...(VARIANT ? ['variant'] : [])];
const NAMES = { off: 'eBPF off', before: 'eBPF on (before)', on: 'eBPF on', variant: `eBPF on (${VARIANT?.split('/').pop()})` };
const server = createServer((_q, s) => s.end('ok\n'));
server.keepAliveTimeout = 1;
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const port = server.address().port;
let statsWas;
if (BPF_STATS) {
  try {
    statsWas = readFileSync(STATS_SYSCTL, 'utf8').trim();
    writeFileSync(STATS_SYSCTL, '1');
  } catch (err) {
    console.error(`bpf_stats not enabled (${err.message}): in-kernel BPF time not measured`);
    statsWas = undefined;
  }
}
const restoreStats = () => {
  if (statsWas !== undefined && statsWas !== '1') writeFileSync(STATS_SYSCTL, statsWas);
};
process.on('exit', restoreStats);
async function worker(side, ...extra) {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'worker', side, String(port), ...extra], { stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const code = await new Promise((res) => child.once('close', res));
  if (code !== 0) throw new Error(`worker ${side} ${extra.join(' ')} failed (${code})`);
  return JSON.parse(out);
}
// Each round runs every side once, in an order rotated by the round.
const order = (r) => SIDES.map((_, i) => SIDES[(i + r) % SIDES.length]);
const runs = [];
if (SHAPES.includes('burst')) for (let r = 0; r < ROUNDS; r++) for (const side of order(r)) runs.push(await worker(side));
const steady = [];
if (SHAPES.includes('steady')) for (let r = 0; r < ROUNDS; r++) for (const side of order(r)) steady.push({ ...(await worker(side, 'steady')), round: r });
server.close();
restoreStats();
const med = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const burstSide = (name) => {
  const rs = runs.filter((x) => (x.side ?? (x.on ? 'on' : 'off')) === name);
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
const burst = Object.fromEntries(SIDES.map((s) => [s, burstSide(s)]));
const burstExtra = (s) => (burst[s].cpu_s_per_1k_median / burst.off.cpu_s_per_1k_median - 1) * 100;
if (runs.length) {
  console.log(`\n${ROUNDS} rounds x ${PROBES} http probes per side, concurrency ${CONC}, alternating`);
  console.log('| side | CPU-s per 1k probes (median, min–max), bpftrace included | of which bpftrace | probes/s | joined | attach CPU-s | peak RSS MB |');
  console.log('|---|---|---|---|---|---|---|');
  for (const s of SIDES) {
    const b = burst[s];
    console.log(`| ${NAMES[s]} | ${b.cpu_s_per_1k_median.toFixed(3)} (${b.cpu_s_per_1k_min.toFixed(3)}–${b.cpu_s_per_1k_max.toFixed(3)}) | ${b.bpftrace_cpu_s_per_1k.toFixed(3)} | ${b.probes_per_s.toFixed(0)} | ${b.joined} | ${b.attach_cpu_s.toFixed(2)} | ${b.peak_rss_mb.toFixed(0)} |`);
  }
  for (const s of SIDES.filter((x) => x !== 'off')) console.log(`extra CPU, ${NAMES[s]} (burst, bpftrace included): ${burstExtra(s).toFixed(1)}% (goal < 10%)`);
}
const steadySide = (name) => {
  const rs = steady.filter((x) => (x.side ?? (x.on ? 'on' : 'off')) === name);
  const per1k = (x, v) => (v / 100) * (1000 / (x.probes / x.wall)); // CPU-s per 1,000 probes
  return {
    probes_per_s: med(rs.map((x) => x.probes / x.wall)),
    user_percent: med(rs.map((x) => x.user)),
    system_percent: med(rs.map((x) => x.system)),
    prober_percent: med(rs.map((x) => x.user + x.system)),
    prober_percent_all: rs.map((x) => x.user + x.system),
    bpftrace_percent: med(rs.map((x) => x.bpftrace)),
    total_percent: med(rs.map((x) => x.user + x.system + x.bpftrace)),
    total_percent_all: rs.map((x) => x.user + x.system + x.bpftrace),
    prober_cpu_s_per_1k: med(rs.map((x) => per1k(x, x.user + x.system))),
    with_bpftrace_cpu_s_per_1k: med(rs.map((x) => per1k(x, x.user + x.system + x.bpftrace))),
    bpf_kernel_percent: med(rs.map((x) => x.bpfKernel ?? 0)),
    bpf_kernel_us_per_probe: med(rs.map((x) => x.bpfKernelUsPerProbe ?? 0)),
    bpf_runs_per_probe: med(rs.map((x) => x.bpfRunsPerProbe ?? 0)),
    join_wait_ms_p50: med(rs.map((x) => x.joinWaitMs?.p50 ?? 0)),
    join_wait_ms_p99: med(rs.map((x) => x.joinWaitMs?.p99 ?? 0)),
    join_wait_ms_max: Math.max(...rs.map((x) => x.joinWaitMs?.max ?? 0)),
    joined: rs.map((x) => `${x.joined}/${x.probes}`).join(' '),
    success: rs.map((x) => `${x.ok}/${x.probes}`).join(' '),
    lost_events: rs.reduce((a, x) => a + (x.lost ?? 0), 0),
    other_bpftrace: rs.map((x) => x.otherBpftrace ?? 0),
  };
};
const st = Object.fromEntries(SIDES.map((s) => [s, steadySide(s)]));
const paired = (name) => {
  const per1k = (x, withBpftrace) => (x.user + x.system + (withBpftrace ? x.bpftrace : 0)) / (x.probes / x.wall);
  const total = [];
  const prober = [];
  for (let r = 0; r < ROUNDS; r++) {
    const off = steady.find((x) => x.round === r && x.side === 'off');
    const on = steady.find((x) => x.round === r && x.side === name);
    if (!off || !on) continue;
    total.push((per1k(on, true) / per1k(off, false) - 1) * 100);
    prober.push((per1k(on, false) / per1k(off, false) - 1) * 100);
  }
  return { total, prober, total_median: med(total), prober_median: med(prober) };
};
const extraProber = (s) => (st[s].prober_cpu_s_per_1k / st.off.prober_cpu_s_per_1k - 1) * 100;
const extraAll = (s) => (st[s].with_bpftrace_cpu_s_per_1k / st.off.prober_cpu_s_per_1k - 1) * 100;
if (steady.length) {
  console.log(`\nsteady ${RATE} probes/s, ${STEADY_S} s per side, ${ROUNDS} rounds alternating`);
  console.log('| side | probes/s | prober CPU, % of a core: median (user + system) [runs] | bpftrace, % of a core | prober + bpftrace, % [runs] | CPU-s per 1k probes, bpftrace included | in-kernel BPF, µs per probe (% of a core) | join wait after probe end, ms p50 / p99 / max | joined |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const s of SIDES) {
    const x = st[s];
    const on = s !== 'off';
    console.log(
      `| ${NAMES[s]} | ${x.probes_per_s.toFixed(0)} | ${x.prober_percent.toFixed(1)} (${x.user_percent.toFixed(1)} + ${x.system_percent.toFixed(1)}) [${x.prober_percent_all.map((v) => v.toFixed(1)).join(', ')}] | ${on ? x.bpftrace_percent.toFixed(1) : '–'} | ${x.total_percent.toFixed(1)} [${x.total_percent_all.map((v) => v.toFixed(1)).join(', ')}] | ${x.with_bpftrace_cpu_s_per_1k.toFixed(3)} | ${on ? `${x.bpf_kernel_us_per_probe.toFixed(1)} (${x.bpf_kernel_percent.toFixed(2)})` : '–'} | ${on ? `${x.join_wait_ms_p50.toFixed(1)} / ${x.join_wait_ms_p99.toFixed(1)} / ${x.join_wait_ms_max.toFixed(1)}` : '–'} | ${on ? x.joined : '–'} |`,
    );
  }
  for (const s of SIDES.filter((x) => x !== 'off')) console.log(`extra CPU, ${NAMES[s]} (steady): prober ${extraProber(s).toFixed(1)}%; prober + bpftrace ${extraAll(s).toFixed(1)}% (goal < 10%)`);
  // Paired: each round's sides ran back to back, so their ratio is less exposed to the
  // machine's load drifting between rounds than the ratio of the medians above.
  for (const s of SIDES.filter((x) => x !== 'off')) {
    const p = paired(s);
    console.log(`paired per round, ${NAMES[s]} vs off (CPU-s per 1k probes): prober + bpftrace median ${p.total_median.toFixed(1)}% [${p.total.map((v) => v.toFixed(1)).join(', ')}]; prober only median ${p.prober_median.toFixed(1)}%`);
  }
  const others = steady.map((x) => x.otherBpftrace ?? 0);
  if (others.some((n) => n > 0)) console.log(`other bpftrace processes on the host at the end of each steady run: [${others.join(', ')}] (their programs run on every hit of the same tracepoints, on and off alike)`);
}
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(
  join(here, 'results', 'ebpf.json'),
  JSON.stringify(
    {
      probes: PROBES,
      concurrency: CONC,
      rounds: ROUNDS,
      before: BEFORE ?? null,
      variant: VARIANT ?? null,
      ...burst,
      extra_cpu_percent: burstExtra('on'),
      ...(BEFORE ? { extra_cpu_percent_before: burstExtra('before') } : {}),
      runs,
      steady: {
        rate: RATE,
        seconds: STEADY_S,
        ...st,
        paired: Object.fromEntries(SIDES.filter((x) => x !== 'off').map((x) => [x, paired(x)])),
        extra_prober_cpu_percent: extraProber('on'),
        extra_with_bpftrace_percent: extraAll('on'),
        ...(BEFORE ? { extra_prober_cpu_percent_before: extraProber('before'), extra_with_bpftrace_percent_before: extraAll('before') } : {}),
        ...(VARIANT ? { extra_prober_cpu_percent_variant: extraProber('variant'), extra_with_bpftrace_percent_variant: extraAll('variant') } : {}),
        runs: steady,
      },
    },
    null,
    2,
  ),
);
