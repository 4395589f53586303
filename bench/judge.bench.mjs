// Canary judge: (1) time, CPU and memory of one verdict at 10^6 samples per arm (default
// config: Mann-Whitney + exact Hodges-Lehmann selection + p95/p99 tails + failure rate),
// alternating rounds with a subsampled Hodges-Lehmann (4000x4000 pairs) for the same arms;
// (2) measured false-FAIL rate with no change (one look, and 5 looks with alpha spending);
// (3) power table: FAIL rate by median shift x samples per arm (lognormal, log-sigma 0.4 and 0.5).
// Seeded: every figure is reproducible. Writes bench/results/judge.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const a = require('@probemesh/aggregator');
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const QUICK = process.env.QUICK === '1';
const median = (xs) => [...xs].sort((p, q) => p - q)[Math.floor((xs.length - 1) / 2)];
const spread = (xs) => [Math.min(...xs), Math.max(...xs)];
const rss = () => process.resourceUsage().maxRSS / 1024; // MiB

function arms(n, factor, sigma, seed) {
  const rng = new a.SeededRandom(seed);
  const b = new Float64Array(n);
  const c = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    b[i] = 0.05 * rng.lognormal(0, sigma);
    c[i] = 0.05 * factor * rng.lognormal(0, sigma);
  }
  return { b, c };
}
const ones = (n) => new Float64Array(n).fill(1);

// (1) 10^6 per arm
const N = QUICK ? 100_000 : 1_000_000;
const cfg = a.parseJudgeConfig('');
const big = arms(N, 1.03, 0.5, 1);
const rssBefore = rss();
const full = { wall: [], cpu: [] };
const sub = { wall: [], cpu: [], err: [] };
let exact;
for (let r = 0; r < ROUNDS; r++) {
  {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const v = a.judge(cfg, new Map([['latency', { baseline: big.b, canary: big.c }], ['errors', { baseline: ones(N), canary: ones(N) }]]));
    full.wall.push(Number(process.hrtime.bigint() - t0) / 1e9);
    const cu = process.cpuUsage(c0);
    full.cpu.push((cu.user + cu.system) / 1e6);
    exact = v.metrics[0].tests.find((t) => t.test === 'central').effect;
    full.verdict = v.verdict;
  }
  {
    const rng = new a.SeededRandom(100 + r);
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const k = 4000;
    const sb = a.sorted(Array.from({ length: k }, () => Math.log(big.b[rng.int(N)])));
    const sc = a.sorted(Array.from({ length: k }, () => Math.log(big.c[rng.int(N)])));
    const hl = a.hodgesLehmann(sb, sc, 0.99);
    sub.wall.push(Number(process.hrtime.bigint() - t0) / 1e9);
    const cu = process.cpuUsage(c0);
    sub.cpu.push((cu.user + cu.system) / 1e6);
    sub.err.push(Math.abs(Math.exp(hl.shift) - exact.value));
  }
}
const peak = rss();
console.log(`\n(1) one verdict, ${N.toLocaleString()} samples per arm (default config), ${ROUNDS} rounds alternating`);
console.log('| method | wall s (median [min,max]) | CPU s | ratio estimate | goal |');
console.log('| --- | --- | --- | --- | --- |');
console.log(`| judge (exact HL selection, MWU, tails, Fisher) | ${median(full.wall).toFixed(2)} [${spread(full.wall).map((x) => x.toFixed(2)).join(', ')}] | ${median(full.cpu).toFixed(2)} | ${exact.value.toFixed(4)} [${exact.lower.toFixed(4)}, ${exact.upper.toFixed(4)}] | < 10 s |`);
console.log(`| HL by 4000x4000 subsample (reference) | ${median(sub.wall).toFixed(3)} [${spread(sub.wall).map((x) => x.toFixed(3)).join(', ')}] | ${median(sub.cpu).toFixed(3)} | abs error vs exact ${median(sub.err).toFixed(4)} | - |`);
console.log(`peak RSS ${peak.toFixed(0)} MiB (before the judge: ${rssBefore.toFixed(0)} MiB, arms + success arrays = ${((4 * N * 8) / 2 ** 20).toFixed(0)} MiB); goal < 1 GiB`);

function rate(n, factor, sigma, trials, seed, config = cfg, verdict = 'FAIL') {
  const rng = new a.SeededRandom(seed);
  let hits = 0;
  const counts = { PASS: 0, MARGINAL: 0, FAIL: 0, INSUFFICIENT_DATA: 0 };
  const b = new Float64Array(n);
  const c = new Float64Array(n);
  for (let t = 0; t < trials; t++) {
    for (let i = 0; i < n; i++) {
      b[i] = 0.05 * rng.lognormal(0, sigma);
      c[i] = 0.05 * factor * rng.lognormal(0, sigma);
    }
    const v = a.judge(config, new Map([['latency', { baseline: b, canary: c }], ['errors', { baseline: ones(n), canary: ones(n) }]]));
    counts[v.verdict]++;
    if (v.verdict === verdict) hits++;
  }
  return { rate: hits / trials, counts };
}

// (2) false FAIL
const T = QUICK ? 200 : 2000;
const ff = [];
for (const [n, sigma] of [[300, 0.5], [1000, 0.5], [3000, 0.3]]) ff.push({ n, sigma, looks: 1, trials: T, ...rate(n, 1, sigma, T, 7 + n) });
{
  const looksCfg = a.parseJudgeConfig('{"looks": 5}');
  const rng = new a.SeededRandom(77);
  const runs = QUICK ? 100 : 1000;
  let fails = 0;
  for (let run = 0; run < runs; run++) {
    const b = [];
    const c = [];
    for (let look = 1; look <= 5; look++) {
      for (let i = 0; i < 300; i++) {
        b.push(0.05 * rng.lognormal(0, 0.5));
        c.push(0.05 * rng.lognormal(0, 0.5));
      }
      if (a.judge(looksCfg, new Map([['latency', { baseline: b, canary: c }], ['errors', { baseline: ones(b.length), canary: ones(c.length) }]]), { look }).verdict === 'FAIL') {
        fails++;
        break;
      }
    }
  }
  ff.push({ n: '300 per look, 1500 total', sigma: 0.5, looks: 5, trials: runs, rate: fails / runs });
}
console.log('\n(2) false-FAIL rate, no change (default config, alpha 0.005); goal <= 1 %');
console.log('| samples per arm | log-sigma | looks | trials | FAIL rate | verdicts |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const r of ff) console.log(`| ${r.n} | ${r.sigma} | ${r.looks} | ${r.trials} | ${(r.rate * 100).toFixed(2)} % | ${r.counts ? JSON.stringify(r.counts) : '-'} |`);

// (3) power
const PT = QUICK ? 40 : 200;
const shifts = [1.02, 1.05, 1.1, 1.2];
const ns = [100, 300, 1000, 3000];
const power = [];
for (const sigma of [0.4, 0.5]) {
  console.log(`\n(3) FAIL rate (power), default config, log-sigma ${sigma}, ${PT} trials per cell; goal >= 95 % at +10 %, 1000/arm`);
  console.log(`| median shift | ${ns.map((n) => `n=${n}`).join(' | ')} |`);
  console.log(`| --- | ${ns.map(() => '---').join(' | ')} |`);
  for (const f of shifts) {
    const row = ns.map((n) => rate(n, f, sigma, PT, Math.round(f * 1000) + n));
    row.forEach((r, i) => power.push({ sigma, shift: f, n: ns[i], ...r }));
    console.log(`| +${Math.round((f - 1) * 100)} % | ${row.map((r) => `${(r.rate * 100).toFixed(1)} %`).join(' | ')} |`);
  }
}

mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(join(here, 'results', 'judge.json'), JSON.stringify({ n: N, rounds: ROUNDS, full, sub, exact, peakRssMiB: peak, rssBeforeMiB: rssBefore, falseFail: ff, power, machine: { node: process.version } }, null, 2));
console.log('\nwrote bench/results/judge.json');
