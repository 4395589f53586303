// Accuracy vs injected delay: truth (C connect() timer, fping) | probemesh kernel (eBPF) |
// probemesh user-space connect phase | blackbox_exporter (tcp_connect duration, http_2xx
// connect phase), through two network namespaces with an NFQUEUE delayer (test/netem).
// Needs root. Samples alternate in rounds inside one run. Errors are each sample minus the
// median truth of the same delay. Writes bench/results/accuracy.json.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const { DelayedPath, buildTools, drive, median, quantile, netemUnavailable } = require('../test/dist/netem/netns.js');

const why = netemUnavailable();
if (why) {
  console.error(`accuracy bench: cannot run: ${why}`);
  process.exit(1);
}
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const PER = Number(process.env.PER_ROUND ?? 10);
const PAIRWISE = process.env.PAIRWISE !== '0';
const path = new DelayedPath(buildTools());
const results = [];
let bb;
try {
  await path.open();
  const cfg = join(path.tools.dir, 'blackbox.yml');
  writeFileSync(cfg, 'modules:\n  tcp_connect:\n    prober: tcp\n    timeout: 5s\n  http_2xx:\n    prober: http\n    timeout: 5s\n');
  const bbPort = 19115;
  bb = spawn('nsenter', [`--net=/run/netns/${path.nsA}`, '/usr/bin/prometheus-blackbox-exporter', `--config.file=${cfg}`, `--web.listen-address=127.0.0.1:${bbPort}`], { stdio: 'ignore' });
  const bbUrl = `http://127.0.0.1:${bbPort}`;
  for (let i = 0; i < 50; i++) {
    const r = spawnSync('nsenter', [`--net=/run/netns/${path.nsA}`, process.execPath, '-e', `fetch('${bbUrl}/').then(()=>process.exit(0),()=>process.exit(1))`]);
    if (r.status === 0) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  for (const delayUs of [500, 2000, 20000]) {
    await path.setDelay(delayUs);
    // PAIRWISE (default): each truth connect paired with one probe, alternating which goes
    // first, each on an idle path, the truth's end busy-polled (no wake-up of a blocked
    // thread in it: the kernel's SYN_SENT → ESTABLISHED contains none). PAIRWISE=0: the
    // older batches (10 truths, then 10 probes) with a blocking connect() timer.
    const gapMs = Math.ceil((2 * delayUs) / 1000) + 5;
    const { samples, done } = await drive(path, { rounds: ROUNDS, perRound: PER, conntimer: path.tools.conntimer, blackbox: bbUrl, ...(PAIRWISE ? { pairwise: true, spin: true, gapMs } : {}) });
    if (!done.ebpf.up) throw new Error(`eBPF down: ${done.ebpf.reason}`);
    const ping = path.pingTruth(20).map((ms) => ms * 1e6);
    const pick = (k) => samples.filter((s) => s.kind === k);
    const truth = pick('truth').map((s) => s.ns);
    const pm = pick('pm').filter((s) => s.success && s.kernel);
    const t = median(truth);
    const stat = (xs) => {
      const err = xs.map((x) => x - t);
      return { n: xs.length, median_us: median(xs) / 1e3, median_err_us: median(err) / 1e3, p90_abs_err_us: quantile(err.map(Math.abs), 0.9) / 1e3 };
    };
    const gaps = pm.map((p) => p.userConnectNs - p.kernel.connectNs);
    results.push({
      delay_us: delayUs,
      truth: { n: truth.length, median_us: t / 1e3, p90_us: quantile(truth, 0.9) / 1e3, ping_rtt_median_us: median(ping) / 1e3 },
      probemesh_kernel: stat(pm.map((p) => p.kernel.connectNs)),
      probemesh_user: stat(pm.map((p) => p.userConnectNs)),
      blackbox_http_connect: stat(pick('bb_http_connect').map((s) => s.ns)),
      blackbox_tcp_connect_duration: stat(pick('bb_tcp').map((s) => s.ns)),
      agent_overhead_user_minus_kernel_us: { median: median(gaps) / 1e3, p90: quantile(gaps, 0.9) / 1e3, max: Math.max(...gaps) / 1e3 },
      joined: `${pm.length}/${pick('pm').length}`,
    });
  }
} finally {
  if (bb) {
    bb.kill('SIGTERM');
    await new Promise((r) => (bb.exitCode !== null ? r() : bb.once('close', r)));
  }
  await path.close();
}

const f = (v) => (Number.isFinite(v) ? v.toFixed(1) : '-');
console.log(`\nrounds=${ROUNDS} x ${PER} samples per side per delay; error = sample - median truth (µs)`);
console.log('| one-way delay | truth connect median (ping RTT) | probemesh kernel: median err / p90 |err| | probemesh user-space: median err / p90 | blackbox http connect phase: median err / p90 | blackbox tcp_connect duration: median err / p90 | user − kernel gap median / p90 |');
console.log('|---|---|---|---|---|---|---|');
for (const r of results) {
  const c = (s) => `${f(s.median_err_us)} / ${f(s.p90_abs_err_us)}`;
  console.log(`| ${r.delay_us / 1000} ms | ${f(r.truth.median_us)} µs (${f(r.truth.ping_rtt_median_us)}) | ${c(r.probemesh_kernel)} | ${c(r.probemesh_user)} | ${c(r.blackbox_http_connect)} | ${c(r.blackbox_tcp_connect_duration)} | ${f(r.agent_overhead_user_minus_kernel_us.median)} / ${f(r.agent_overhead_user_minus_kernel_us.p90)} |`);
}
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(join(here, 'results', 'accuracy.json'), JSON.stringify({ when: new Date().toISOString(), rounds: ROUNDS, perRound: PER, truth: PAIRWISE ? 'pairwise, busy-polled connect()' : 'batches, blocking connect()', results }, null, 2));
