// Probes per CPU-second: the probemesh prober's probe modules vs prometheus-blackbox-exporter
// 0.23 on the same local HTTP, HTTPS (h1, CA-signed EC cert), TCP, DNS (UDP) and ICMP
// targets, alternating in rounds inside one run. CPU-seconds come from /proc/<pid>/stat
// (utime+stime, plus cutime+cstime: reaped children) of the prober process and its live
// children (the fping runs of the icmp module are part of our prober), and of the
// blackbox_exporter process: the load generator (this process, sending /probe requests to
// blackbox) and the target servers are excluded.
//
// Targets: bench/targets/target.c (HTTP/1.1, TCP accept-and-close, UDP DNS; one
//   single-threaded epoll process, built with gcc into a temp dir at bench time, so the
//   target costs little of the 2 shared cores), a Node process for HTTPS, and the
//   loopback addresses 127.0.0.1–127.0.0.<CONCURRENCY> for ICMP (one address per
//   concurrent loop, so no two concurrent probes ping the same host).
// Ours: a child process (the "prober") runs the configured ProbeModules in CONCURRENCY
//   closed loops (the same code the scheduler calls; no NATS publishing).
// Blackbox: CONCURRENCY concurrent /probe requests over keep-alive connections.
// Then: can one prober sustain 5,000 HTTP probes/s on loopback (open loop at 5,000/s)?
//
// Env: ROUNDS (5), SECONDS per measurement (4), CONCURRENCY (32), KINDS (comma list of
// HTTP,HTTPS,TCP,DNS,ICMP; default all), ICMP_SECONDS per ICMP measurement (12: ICMP probes
// are slow in wall time and CPU is read in 10 ms ticks), RATE (5000), RATE_SECONDS (5), RATE_TRIALS (3).
// Writes bench/results/probes.json.
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const SECONDS = Number(process.env.SECONDS ?? 4);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 32);
const ICMP_SECONDS = Number(process.env.ICMP_SECONDS ?? 12);
const RATE = Number(process.env.RATE ?? 5000);
const RATE_SECONDS = Number(process.env.RATE_SECONDS ?? 5);
const RATE_TRIALS = Number(process.env.RATE_TRIALS ?? 3);
const KINDS = (process.env.KINDS ?? 'HTTP,HTTPS,TCP,DNS,ICMP').split(',').map((k) => k.trim().toUpperCase());
const TICK = 100; // USER_HZ (function declarations below: main() runs before later consts initialise)

// ---------------------------------------------------------------- child modes
if (process.argv[2] === '--tls-server') {
  // The HTTPS target (HTTP/1.1 only): 200 "ok".
  const https = require('node:https');
  const [key, cert] = [readFileSync(process.argv[3]), readFileSync(process.argv[4])];
  const s = https.createServer({ key, cert }, (_q, r) => {
    r.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 });
    r.end('ok');
  });
  s.on('connection', (c) => c.on('error', () => {}));
  s.on('tlsClientError', () => {});
  await new Promise((r) => s.listen(0, '127.0.0.1', 4096, r));
  console.log(JSON.stringify(s.address().port));
} else if (process.argv[2] === '--prober') {
  const { ProbeModules, loadModuleDefinitions } = require('../services/prober/dist/index.js');
  const { AnchoredClock, silentLogger } = require('../packages/common/dist/index.js');
  const modules = new ProbeModules(loadModuleDefinitions({ modules_file: process.argv[3] }));
  const ctx = { clock: new AnchoredClock(), log: silentLogger() };
  let lastFailure = '';
  const once = async (module, url) => {
    const o = await modules.run({ id: 'b', url, module, timeoutMs: 5000, labels: {} }, AbortSignal.timeout(5000), ctx);
    if (!o.success) lastFailure = `${o.failureCode}: ${o.failureMessage}`;
    return o.success;
  };
  for await (const line of createInterface({ input: process.stdin })) {
    const cmd = JSON.parse(line);
    let ok = 0;
    let failed = 0;
    lastFailure = '';
    if (cmd.rate) {
      // Open loop: start probes at `rate`/s regardless of completions, count the ones done.
      let inflight = 0;
      let maxInflight = 0;
      const start = Date.now();
      const until = start + cmd.seconds * 1000;
      let started = 0;
      let doneInWindow = 0;
      await new Promise((resolve) => {
        const timer = setInterval(() => {
          const due = Math.floor(((Math.min(Date.now(), until) - start) / 1000) * cmd.rate);
          while (started < due) {
            started++;
            inflight++;
            if (inflight > maxInflight) maxInflight = inflight;
            once(cmd.module, cmd.urls[0]).then((s) => {
              inflight--;
              if (Date.now() <= until) doneInWindow++;
              s ? ok++ : failed++;
            });
          }
          if (Date.now() >= until) {
            clearInterval(timer);
            const wait = setInterval(() => inflight === 0 && (clearInterval(wait), resolve()), 5);
          }
        }, 2);
      });
      console.log(JSON.stringify({ ok, failed, started, maxInflight, doneInWindow, wallMs: Date.now() - start, lastFailure }));
      continue;
    }
    const until = Date.now() + cmd.seconds * 1000;
    await Promise.all(
      Array.from({ length: cmd.concurrency }, async (_, i) => {
        const url = cmd.urls[i % cmd.urls.length];
        while (Date.now() < until) (await once(cmd.module, url)) ? ok++ : failed++;
      }),
    );
    console.log(JSON.stringify({ ok, failed, lastFailure }));
  }
} else {
  await main();
}

// ---------------------------------------------------------------- parent
/** utime+stime+cutime+cstime of `pid` (seconds); 0 when it is gone. */
function ownCpu(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const x = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(x[11]) + Number(x[12]) + Number(x[13]) + Number(x[14])) / TICK;
  } catch {
    return 0;
  }
}
/** CPU-seconds of `pid` and of its children (reaped ones through cutime/cstime, live ones read directly). */
function cpuSeconds(pid) {
  let total = ownCpu(pid);
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let kids = '';
    try {
      kids = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
    } catch {}
    for (const k of kids ? kids.split(' ') : []) total += cpuSeconds(Number(k));
  }
  return total;
}
function peakRssMiB(pid) {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}
function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
function fmt(x, d = 0) {
  return Number.isFinite(x) ? x.toFixed(d) : '-';
}

async function main() {
  const { makeTestCerts } = require('../services/prober/dist/testing/certs.js');
  const certs = makeTestCerts();
  const dir = mkdtempSync(join(tmpdir(), 'pm-bench-probes-'));
  const children = [];
  const start = (args, name) => {
    const c = spawn(args[0], args.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
    c.name = name;
    children.push(c);
    return c;
  };
  const firstLine = (c) => new Promise((resolve) => createInterface({ input: c.stdout }).once('line', resolve));
  try {
    const targetBin = join(dir, 'target');
    execFileSync('gcc', ['-O2', '-o', targetBin, join(here, 'targets', 'target.c')], { stdio: 'inherit' });
    const target = start([targetBin], 'targets');
    const ports = JSON.parse(await firstLine(target));
    const tlsTarget = start([process.execPath, fileURLToPath(import.meta.url), '--tls-server', certs.good.keyFile, certs.good.certFile], 'tls-target');
    const httpsPort = JSON.parse(await firstLine(tlsTarget));
    const modules = {
      http_2xx: ['    prober: http'],
      https_2xx: ['    prober: http', '    http:', '      tls_config:', `        ca_file: ${certs.caFile}`],
      tcp_connect: ['    prober: tcp'],
      dns_udp: ['    prober: dns', '    dns:', '      query_name: example.com', '      query_type: A', '      transport_protocol: udp'],
      icmp: ['    prober: icmp', '    icmp:', '      preferred_ip_protocol: ip4'],
    };
    const yml = (extra) => ['modules:', ...Object.entries(modules).flatMap(([n, lines]) => [`  ${n}:`, ...lines, ...(extra[n] ?? [])]), ''].join('\n');
    const bbCfg = join(dir, 'blackbox.yml');
    writeFileSync(bbCfg, yml({}));
    // Ours: the same modules; icmp sends one echo request per probe like blackbox (our default is 3).
    const ourCfg = join(dir, 'probemesh.yml');
    writeFileSync(ourCfg, yml({ icmp: ['      packets: 1'] }));
    const icmpHosts = Array.from({ length: CONCURRENCY }, (_, i) => `127.0.0.${i + 1}`);
    const kinds = [
      { kind: 'HTTP', module: 'http_2xx', urls: [`http://127.0.0.1:${ports.http}/`], goal: 2, blackboxRef: 1260 },
      { kind: 'HTTPS', module: 'https_2xx', urls: [`https://127.0.0.1:${httpsPort}/`], goal: 1.5, blackboxRef: 730 },
      { kind: 'TCP', module: 'tcp_connect', urls: [`127.0.0.1:${ports.tcp}`], goal: 2, blackboxRef: 2230 },
      { kind: 'DNS', module: 'dns_udp', urls: [`127.0.0.1:${ports.dns}`], goal: undefined },
      { kind: 'ICMP', module: 'icmp', urls: icmpHosts, goal: undefined, seconds: ICMP_SECONDS },
    ].filter((k) => KINDS.includes(k.kind));

    const prober = start([process.execPath, fileURLToPath(import.meta.url), '--prober', ourCfg], 'prober');
    const proberLines = createInterface({ input: prober.stdout });
    const proberReplies = [];
    proberLines.on('line', (l) => proberReplies.shift()?.(JSON.parse(l)));
    const ask = (cmd) =>
      new Promise((resolve) => {
        proberReplies.push(resolve);
        prober.stdin.write(JSON.stringify(cmd) + '\n');
      });

    const bbPort = 20000 + Math.floor(Math.random() * 20000);
    const bb = start(['/usr/bin/prometheus-blackbox-exporter', `--config.file=${bbCfg}`, `--web.listen-address=127.0.0.1:${bbPort}`, '--log.level=warn'], 'blackbox');
    const bbUrl = `http://127.0.0.1:${bbPort}`;
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${bbUrl}/metrics`)).ok) break;
      } catch {
        if (i > 100) throw new Error('blackbox_exporter did not start');
      }
      await new Promise((r) => setTimeout(r, 100));
    }

    const runOurs = async (k, seconds = SECONDS, concurrency = CONCURRENCY) => {
      const c0 = cpuSeconds(prober.pid);
      const t0 = performance.now();
      const r = await ask({ module: k.module, urls: k.urls, concurrency, seconds });
      return { probes: r.ok + r.failed, failed: r.failed, lastFailure: r.lastFailure, cpu: cpuSeconds(prober.pid) - c0, wall: (performance.now() - t0) / 1000 };
    };
    const runBlackbox = async (k, seconds = SECONDS, concurrency = CONCURRENCY) => {
      let ok = 0;
      let failed = 0;
      let lastFailure = '';
      const c0 = cpuSeconds(bb.pid);
      const t0 = performance.now();
      const until = Date.now() + seconds * 1000;
      await Promise.all(
        Array.from({ length: concurrency }, async (_, i) => {
          const q = `${bbUrl}/probe?module=${k.module}&target=${encodeURIComponent(k.urls[i % k.urls.length])}`;
          while (Date.now() < until) {
            const text = await (await fetch(q, { headers: { 'X-Prometheus-Scrape-Timeout-Seconds': '5' } })).text();
            if (/\nprobe_success 1\n/.test(text)) ok++;
            else {
              failed++;
              lastFailure = text.slice(0, 300);
            }
          }
        }),
      );
      return { probes: ok + failed, failed, lastFailure, cpu: cpuSeconds(bb.pid) - c0, wall: (performance.now() - t0) / 1000 };
    };

    // Warm-up (JIT, TLS contexts).
    for (const k of kinds) {
      await runOurs(k, 0.5, 8);
      await runBlackbox(k, 0.5, 8);
    }

    const samples = [];
    for (let round = 1; round <= ROUNDS; round++) {
      for (const k of kinds) {
        const order = round % 2 ? ['probemesh', 'blackbox'] : ['blackbox', 'probemesh'];
        for (const side of order) {
          const r = side === 'probemesh' ? await runOurs(k, k.seconds) : await runBlackbox(k, k.seconds);
          samples.push({ round, kind: k.kind, side, ...r, perCpuSecond: r.probes / r.cpu, perSecond: r.probes / r.wall });
          console.log(
            `round ${round} ${k.kind.padEnd(5)} ${side.padEnd(9)} ${String(r.probes).padStart(6)} probes (${r.failed} failed) in ${r.wall.toFixed(1)} s, ${r.cpu.toFixed(2)} CPU-s → ${fmt(r.probes / r.cpu)} probes/CPU-s, ${fmt(r.probes / r.wall)} probes/s${r.failed ? ` — last failure: ${r.lastFailure}` : ''}`,
          );
        }
      }
    }
    const rssAfterComparison = { probemesh: peakRssMiB(prober.pid), blackbox: peakRssMiB(bb.pid) };

    // Sustained rate: open loop at RATE HTTP probes/s for RATE_SECONDS against the C target, RATE_TRIALS times.
    const sustained = [];
    for (let trial = 1; KINDS.includes('HTTP') && trial <= RATE_TRIALS; trial++) {
      const c0 = cpuSeconds(prober.pid);
      const targetCpu0 = cpuSeconds(target.pid);
      const r = await ask({ module: 'http_2xx', urls: [`http://127.0.0.1:${ports.http}/`], rate: RATE, seconds: RATE_SECONDS });
      const cpu = cpuSeconds(prober.pid) - c0;
      const s = {
        trial,
        ...r,
        rate: RATE,
        seconds: RATE_SECONDS,
        cpuSeconds: cpu,
        proberCores: cpu / (r.wallMs / 1000),
        targetCores: (cpuSeconds(target.pid) - targetCpu0) / (r.wallMs / 1000),
        completedPerSecond: r.ok / (r.wallMs / 1000),
        completedInWindowPerSecond: r.doneInWindow / RATE_SECONDS,
        // Sustained = no failure and ≥ 98 % of the offered probes completed inside the window (not after it).
        met: r.failed === 0 && r.doneInWindow >= 0.98 * RATE * RATE_SECONDS,
      };
      sustained.push(s);
      console.log(
        `open loop ${trial}: ${RATE} HTTP probes/s for ${RATE_SECONDS} s: ${s.started} started, ${s.ok} ok, ${s.failed} failed, ${fmt(s.completedPerSecond)} completed/s over ${fmt(s.wallMs / 1000, 2)} s (${fmt(s.completedInWindowPerSecond)}/s inside the ${RATE_SECONDS} s window), max in flight ${s.maxInflight}, prober CPU ${fmt(s.proberCores, 2)} cores, target ${fmt(s.targetCores, 2)} cores → ${s.met ? 'sustained' : 'NOT sustained'}${s.failed ? ` — last failure: ${s.lastFailure}` : ''}`,
      );
    }
    const rss = { probemesh: peakRssMiB(prober.pid), blackbox: peakRssMiB(bb.pid) };

    const table = kinds.map((k) => {
      const per = (side) => samples.filter((s) => s.kind === k.kind && s.side === side).map((s) => s.perCpuSecond);
      const ours = per('probemesh');
      const theirs = per('blackbox');
      const ratio = median(ours) / median(theirs);
      return {
        kind: k.kind,
        probemesh: { median: median(ours), min: Math.min(...ours), max: Math.max(...ours) },
        blackbox: { median: median(theirs), min: Math.min(...theirs), max: Math.max(...theirs) },
        ratio,
        goal: k.goal ?? null,
        met: k.goal === undefined ? null : ratio >= k.goal,
        failedProbes: { probemesh: samples.filter((s) => s.kind === k.kind && s.side === 'probemesh').reduce((n, s) => n + s.failed, 0), blackbox: samples.filter((s) => s.kind === k.kind && s.side === 'blackbox').reduce((n, s) => n + s.failed, 0) },
      };
    });
    console.log('\nprobes per CPU-second (median [min–max] over', ROUNDS, 'rounds, concurrency', CONCURRENCY + ')');
    console.log('| target | probemesh | blackbox_exporter 0.23 | ratio | goal |');
    console.log('| --- | --- | --- | --- | --- |');
    for (const r of table) console.log(`| ${r.kind} | ${fmt(r.probemesh.median)} [${fmt(r.probemesh.min)}–${fmt(r.probemesh.max)}] | ${fmt(r.blackbox.median)} [${fmt(r.blackbox.min)}–${fmt(r.blackbox.max)}] | ${fmt(r.ratio, 2)}× | ${r.goal === null ? 'none set' : `≥${r.goal}× ${r.met ? 'met' : 'NOT met'}`} |`);
    console.log(`\npeak RSS after the comparison: probemesh prober ${fmt(rssAfterComparison.probemesh, 1)} MiB, blackbox_exporter ${fmt(rssAfterComparison.blackbox, 1)} MiB; prober after the open-loop run ${fmt(rss.probemesh, 1)} MiB`);
    if (sustained.length) {
      const rates = sustained.map((x) => x.completedPerSecond);
      console.log(`${RATE} HTTP probes/s open loop: completed/s median ${fmt(median(rates))} [${fmt(Math.min(...rates))}–${fmt(Math.max(...rates))}] over ${sustained.length} trials, sustained in ${sustained.filter((x) => x.met).length} of ${sustained.length}`);
    }
    mkdirSync(join(here, 'results'), { recursive: true });
    writeFileSync(
      join(here, 'results', 'probes.json'),
      JSON.stringify({ when: new Date().toISOString(), node: process.version, rounds: ROUNDS, seconds: SECONDS, concurrency: CONCURRENCY, table, samples, rss: { afterComparison: rssAfterComparison, end: rss }, sustained }, null, 2) + '\n',
    );
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    certs.remove();
    rmSync(dir, { recursive: true, force: true });
  }
}
