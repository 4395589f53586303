// Probes per CPU-second: the probemesh prober's probe modules vs prometheus-blackbox-exporter
// 0.23 on the same local HTTP, HTTPS (h1, CA-signed EC cert) and TCP targets, alternating
// in rounds inside one run. CPU-seconds come from /proc/<pid>/stat (utime+stime) of the
// prober process and of the blackbox_exporter process only: the load generator (this
// process, sending /probe requests to blackbox) and the target server are excluded.
//
// Ours: a child process (the "prober") runs the configured ProbeModules in CONCURRENCY
//   closed loops (the same code the scheduler calls; no NATS publishing).
// Blackbox: CONCURRENCY concurrent /probe requests over keep-alive connections.
// Then: can one prober sustain 5,000 HTTP probes/s on loopback (open loop at 5,000/s)?
//
// Env: ROUNDS (3), SECONDS per measurement (4), CONCURRENCY (32). Writes bench/results/probes.json.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const SECONDS = Number(process.env.SECONDS ?? 4);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 32);
const TICK = 100; // USER_HZ (function declarations below: main() runs before later consts initialise)

// ---------------------------------------------------------------- child modes
if (process.argv[2] === '--target-server') {
  // The targets: HTTP/1.1 200 "ok", HTTPS (HTTP/1.1 only), TCP accept-and-close.
  const http = require('node:http');
  const https = require('node:https');
  const net = require('node:net');
  const [key, cert] = [readFileSync(process.argv[3]), readFileSync(process.argv[4])];
  const h = (_q, s) => {
    s.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 });
    s.end('ok');
  };
  const servers = [http.createServer(h), https.createServer({ key, cert }, h), net.createServer((c) => c.end())];
  for (const s of servers) s.on('connection', (c) => c.on('error', () => {}));
  await Promise.all(servers.map((s) => new Promise((r) => s.listen(0, '127.0.0.1', 4096, r))));
  console.log(JSON.stringify(servers.map((s) => s.address().port)));
} else if (process.argv[2] === '--prober') {
  const { ProbeModules, loadModuleDefinitions } = require('../services/prober/dist/index.js');
  const { AnchoredClock, silentLogger } = require('../packages/common/dist/index.js');
  const modules = new ProbeModules(loadModuleDefinitions({ modules_file: process.argv[3] }));
  const ctx = { clock: new AnchoredClock(), log: silentLogger() };
  const once = async (module, url) => {
    const o = await modules.run({ id: 'b', url, module, timeoutMs: 5000, labels: {} }, AbortSignal.timeout(5000), ctx);
    return o.success;
  };
  for await (const line of createInterface({ input: process.stdin })) {
    const cmd = JSON.parse(line);
    let ok = 0;
    let failed = 0;
    const until = Date.now() + cmd.seconds * 1000;
    if (cmd.rate) {
      // Open loop: start probes at `rate`/s regardless of completions, count the ones done.
      let inflight = 0;
      let maxInflight = 0;
      const start = Date.now();
      let started = 0;
      await new Promise((resolve) => {
        const timer = setInterval(() => {
          const due = Math.floor(((Date.now() - start) / 1000) * cmd.rate);
          while (started < due && Date.now() < until) {
            started++;
            inflight++;
            maxInflight = Math.max(maxInflight, inflight);
            once(cmd.module, cmd.url).then((s) => {
              inflight--;
              s ? ok++ : failed++;
            });
          }
          if (Date.now() >= until) {
            clearInterval(timer);
            const wait = setInterval(() => inflight === 0 && (clearInterval(wait), resolve()), 5);
          }
        }, 2);
      });
      console.log(JSON.stringify({ ok, failed, started, maxInflight, wallMs: Date.now() - start }));
      continue;
    }
    await Promise.all(
      Array.from({ length: cmd.concurrency }, async () => {
        while (Date.now() < until) (await once(cmd.module, cmd.url)) ? ok++ : failed++;
      }),
    );
    console.log(JSON.stringify({ ok, failed }));
  }
} else {
  await main();
}

// ---------------------------------------------------------------- parent
function cpuSeconds(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICK; // utime, stime
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
    const target = start([process.execPath, fileURLToPath(import.meta.url), '--target-server', certs.good.keyFile, certs.good.certFile], 'targets');
    const [httpPort, httpsPort, tcpPort] = JSON.parse(await firstLine(target));
    const cfg = join(dir, 'blackbox.yml');
    writeFileSync(
      cfg,
      [
        'modules:',
        '  http_2xx:',
        '    prober: http',
        '  https_2xx:',
        '    prober: http',
        '    http:',
        '      tls_config:',
        `        ca_file: ${certs.caFile}`,
        '  tcp_connect:',
        '    prober: tcp',
        '',
      ].join('\n'),
    );
    const kinds = [
      { kind: 'HTTP', module: 'http_2xx', url: `http://127.0.0.1:${httpPort}/`, goal: 2, blackboxRef: 1260 },
      { kind: 'HTTPS', module: 'https_2xx', url: `https://127.0.0.1:${httpsPort}/`, goal: 1.5, blackboxRef: 730 },
      { kind: 'TCP', module: 'tcp_connect', url: `127.0.0.1:${tcpPort}`, goal: 2, blackboxRef: 2230 },
    ];

    const prober = start([process.execPath, fileURLToPath(import.meta.url), '--prober', cfg], 'prober');
    const proberLines = createInterface({ input: prober.stdout });
    const proberReplies = [];
    proberLines.on('line', (l) => proberReplies.shift()?.(JSON.parse(l)));
    const ask = (cmd) =>
      new Promise((resolve) => {
        proberReplies.push(resolve);
        prober.stdin.write(JSON.stringify(cmd) + '\n');
      });

    const bbPort = 20000 + Math.floor(Math.random() * 20000);
    const bb = start(['/usr/bin/prometheus-blackbox-exporter', `--config.file=${cfg}`, `--web.listen-address=127.0.0.1:${bbPort}`, '--log.level=warn'], 'blackbox');
    const bbUrl = `http://127.0.0.1:${bbPort}`;
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${bbUrl}/metrics`)).ok) break;
      } catch {
        if (i > 100) throw new Error('blackbox_exporter did not start');
      }
      await new Promise((r) => setTimeout(r, 100));
    }

    const runOurs = async (k) => {
      const c0 = cpuSeconds(prober.pid);
      const t0 = performance.now();
      const r = await ask({ module: k.module, url: k.url, concurrency: CONCURRENCY, seconds: SECONDS });
      return { probes: r.ok + r.failed, failed: r.failed, cpu: cpuSeconds(prober.pid) - c0, wall: (performance.now() - t0) / 1000 };
    };
    const runBlackbox = async (k) => {
      const q = `${bbUrl}/probe?module=${k.module}&target=${encodeURIComponent(k.url)}`;
      let ok = 0;
      let failed = 0;
      const c0 = cpuSeconds(bb.pid);
      const t0 = performance.now();
      const until = Date.now() + SECONDS * 1000;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (Date.now() < until) {
            const text = await (await fetch(q)).text();
            /\nprobe_success 1\n/.test(text) ? ok++ : failed++;
          }
        }),
      );
      return { probes: ok + failed, failed, cpu: cpuSeconds(bb.pid) - c0, wall: (performance.now() - t0) / 1000 };
    };

    // Warm-up (JIT, TLS contexts).
    for (const k of kinds) {
      await ask({ module: k.module, url: k.url, concurrency: 8, seconds: 0.5 });
      await Promise.all(Array.from({ length: 8 }, () => fetch(`${bbUrl}/probe?module=${k.module}&target=${encodeURIComponent(k.url)}`).then((r) => r.text())));
    }

    const samples = [];
    for (let round = 1; round <= ROUNDS; round++) {
      for (const k of kinds) {
        const order = round % 2 ? ['probemesh', 'blackbox'] : ['blackbox', 'probemesh'];
        for (const side of order) {
          const r = side === 'probemesh' ? await runOurs(k) : await runBlackbox(k);
          samples.push({ round, kind: k.kind, side, ...r, perCpuSecond: r.probes / r.cpu, perSecond: r.probes / r.wall });
          console.log(`round ${round} ${k.kind.padEnd(5)} ${side.padEnd(9)} ${String(r.probes).padStart(6)} probes (${r.failed} failed) in ${r.wall.toFixed(1)} s, ${r.cpu.toFixed(2)} CPU-s → ${fmt(r.probes / r.cpu)} probes/CPU-s, ${fmt(r.probes / r.wall)} probes/s`);
        }
      }
    }

    // Sustained rate: open loop at 5,000 HTTP probes/s for SECONDS.
    const c0 = cpuSeconds(prober.pid);
    const sustained = await ask({ module: 'http_2xx', url: kinds[0].url, rate: 5000, seconds: SECONDS });
    const sustainedCpu = cpuSeconds(prober.pid) - c0;
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
        goal: k.goal,
        met: ratio >= k.goal,
        failedProbes: samples.filter((s) => s.kind === k.kind).reduce((n, s) => n + s.failed, 0),
      };
    });
    console.log('\nprobes per CPU-second (median [min–max] over', ROUNDS, 'rounds, concurrency', CONCURRENCY + ')');
    console.log('| target | probemesh | blackbox_exporter 0.23 | ratio | goal |');
    console.log('| --- | --- | --- | --- | --- |');
    for (const r of table) console.log(`| ${r.kind} | ${fmt(r.probemesh.median)} [${fmt(r.probemesh.min)}–${fmt(r.probemesh.max)}] | ${fmt(r.blackbox.median)} [${fmt(r.blackbox.min)}–${fmt(r.blackbox.max)}] | ${fmt(r.ratio, 2)}× | ≥${r.goal}× ${r.met ? 'met' : 'NOT met'} |`);
    const rate = sustained.ok / (sustained.wallMs / 1000);
    console.log(`\npeak RSS: probemesh prober ${fmt(rss.probemesh, 1)} MiB, blackbox_exporter ${fmt(rss.blackbox, 1)} MiB`);
    console.log(`5,000 HTTP probes/s open loop for ${SECONDS} s: ${sustained.started} started, ${sustained.ok} ok, ${sustained.failed} failed, ${fmt(rate)} completed/s, max in flight ${sustained.maxInflight}, prober CPU ${fmt(sustainedCpu / (sustained.wallMs / 1000), 2)} cores → ${sustained.ok >= 0.98 * 5000 * SECONDS && sustained.failed === 0 ? 'sustained' : 'NOT sustained'}`);
    mkdirSync(join(here, 'results'), { recursive: true });
    writeFileSync(
      join(here, 'results', 'probes.json'),
      JSON.stringify({ when: new Date().toISOString(), rounds: ROUNDS, seconds: SECONDS, concurrency: CONCURRENCY, table, samples, rss, sustained: { ...sustained, cpuSeconds: sustainedCpu, completedPerSecond: rate } }, null, 2) + '\n',
    );
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    certs.remove();
    rmSync(dir, { recursive: true, force: true });
  }
}
