// eBPF overhead: prober CPU per 1,000 http probes with eBPF (bpftrace + join per probe) on
// vs off, same machine, alternating rounds. CPU = the probing process (process.cpuUsage)
// plus the bpftrace process (/proc/<pid>/stat utime+stime) over the timed section; the
// attach cost is reported apart. The target server runs in a separate process. Needs root
// for the "on" side. Writes bench/results/ebpf.json.
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
const TICK = 100; // USER_HZ

function procCpuS(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / TICK;
  } catch {
    return 0;
  }
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
console.log(`extra CPU with eBPF: ${extra.toFixed(1)}% (goal < 10%)`);
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(join(here, 'results', 'ebpf.json'), JSON.stringify({ probes: PROBES, concurrency: CONC, rounds: ROUNDS, off, on, extra_cpu_percent: extra, runs }, null, 2));
