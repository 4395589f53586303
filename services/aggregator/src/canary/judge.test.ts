/**
 * Statistical behaviour of the judge on seeded simulated latency (lognormal unless
 * stated): false-FAIL rate with no change, power for a +10 % median shift, tail-only
 * regressions, bimodal and heavy-tailed distributions, failures as +∞.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseJudgeConfig, JudgeConfig } from './config';
import { judge, Verdict } from './judge';
import { SeededRandom } from './random';

type Gen = (r: SeededRandom, canary: boolean) => number;

function trials(cfg: JudgeConfig, n: number, gen: Gen, count: number, seed: number): Record<Verdict, number> & { last: ReturnType<typeof judge> } {
  const rng = new SeededRandom(seed);
  const out = { PASS: 0, MARGINAL: 0, FAIL: 0, INSUFFICIENT_DATA: 0 } as Record<Verdict, number> & { last: ReturnType<typeof judge> };
  for (let t = 0; t < count; t++) {
    const b = new Array<number>(n);
    const c = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      b[i] = gen(rng, false);
      c[i] = gen(rng, true);
    }
    const ok = (a: number[]) => a.map((x) => (x === Infinity ? 0 : 1));
    const v = judge(cfg, new Map([['latency', { baseline: b, canary: c }], ['errors', { baseline: ok(b), canary: ok(c) }]]));
    out[v.verdict]++;
    out.last = v;
  }
  return out;
}

const logn = (sigma: number, factor = 1): Gen => (r, c) => 0.05 * r.lognormal(0, sigma) * (c ? factor : 1);

test('no change: false FAIL rate ≤ 1 % over 1000 trials (n = 300 per arm, default config)', () => {
  const r = trials(parseJudgeConfig(''), 300, logn(0.5), 1000, 1);
  assert.ok(r.FAIL <= 10, `false FAILs ${r.FAIL}/1000`);
  assert.equal(r.MARGINAL + r.FAIL + r.PASS + r.INSUFFICIENT_DATA, 1000);
});

test('no change, 5 planned looks with alpha spending: false FAIL rate ≤ 1 % over 400 runs', () => {
  const cfg = parseJudgeConfig('{"looks": 5, "tails": []}');
  const rng = new SeededRandom(5);
  let fails = 0;
  for (let run = 0; run < 400; run++) {
    const b: number[] = [];
    const c: number[] = [];
    for (let look = 1; look <= 5; look++) {
      for (let i = 0; i < 200; i++) {
        b.push(0.05 * rng.lognormal(0, 0.5));
        c.push(0.05 * rng.lognormal(0, 0.5));
      }
      const v = judge(cfg, new Map([['latency', { baseline: b, canary: c }]]), { look });
      if (v.verdict === 'FAIL') {
        fails++;
        break;
      }
    }
  }
  assert.ok(fails <= 4, `runs with a false FAIL at any look: ${fails}/400`);
});

test('+10 % median shift at 1,000 samples per arm: FAIL ≥ 95 % (log-σ = 0.4, default config)', () => {
  const r = trials(parseJudgeConfig(''), 1000, logn(0.4, 1.1), 200, 2);
  assert.ok(r.FAIL >= 190, `FAIL ${r.FAIL}/200 (${JSON.stringify({ ...r, last: undefined })})`);
  const central = r.last.metrics[0]!.tests.find((t) => t.test === 'central')!;
  assert.ok(central.effect!.value > 1.03 && central.effect!.value < 1.17, `HL ratio ${central.effect!.value}`);
  assert.ok(central.effect!.lower < central.effect!.value && central.effect!.value < central.effect!.upper);
});

test('seed config {thresholds: {pass: 0.05, marginal: 0.1}}: +20 % FAILs, +7.5 % is MARGINAL, no change PASSes', () => {
  const cfg = parseJudgeConfig('{"thresholds": {"pass": 0.05, "marginal": 0.1}, "tails": []}');
  assert.equal(trials(cfg, 2000, logn(0.3, 1.2), 20, 3).FAIL, 20);
  assert.equal(trials(cfg, 2000, logn(0.3, 1.075), 20, 4).MARGINAL, 20);
  assert.equal(trials(cfg, 2000, logn(0.3), 20, 5).PASS, 20);
});

// p99-only regression: 1.5 % of canary probes take 4× longer (median and p95 barely move).
const p99Only: Gen = (r, c) => 0.05 * r.lognormal(0, 0.3) * (c && r.next() < 0.015 ? 4 : 1);

test('a p99-only regression is detected when samples suffice (6000/arm) and INSUFFICIENT_DATA below (1000/arm)', () => {
  const cfg = parseJudgeConfig('{"tails": [0.99]}');
  const big = trials(cfg, 6000, p99Only, 10, 6);
  assert.equal(big.FAIL, 10);
  const p99 = big.last.metrics[0]!.tests.find((t) => t.test === 'p99')!;
  assert.equal(p99.classification, 'FAIL');
  assert.ok(p99.effect!.value > 1.5, `p99 ratio ${p99.effect!.value}`);
  assert.equal(big.last.metrics[0]!.tests.find((t) => t.test === 'central')!.classification, 'PASS', 'the median did not move');
  const small = trials(cfg, 1000, p99Only, 10, 7);
  assert.equal(small.INSUFFICIENT_DATA, 10, 'never a silent pass');
  const t = small.last.metrics[0]!.tests.find((x) => x.test === 'p99')!;
  assert.equal(t.requiredSamples, 3450, "alpha 0.005, power 0.8, exceedance doubling");
  assert.match(small.last.decidedBy.detail, /p99 needs 3450 samples per arm/);
});

test('bimodal latency: a shift of mass to the slow mode is caught; equal mixtures PASS', () => {
  const bim = (slowShare: number): Gen => (r, c) => (r.next() < (c ? slowShare : 0.3) ? 0.05 : 0.01) * r.lognormal(0, 0.1);
  const cfg = parseJudgeConfig('{"tails": [0.95]}');
  const moved = trials(cfg, 2000, bim(0.45), 20, 8);
  assert.equal(moved.PASS + moved.INSUFFICIENT_DATA, 0, JSON.stringify({ ...moved, last: undefined }));
  const same = trials(cfg, 2000, bim(0.3), 50, 9);
  assert.equal(same.FAIL, 0);
  assert.ok(same.PASS >= 45, `equal mixtures PASS ${same.PASS}/50`);
});

test('heavy-tailed (Pareto α = 1.5) latency: +15 % FAILs, no change never FAILs', () => {
  const par = (f: number): Gen => (r, c) => 0.02 * Math.pow(1 - r.next(), -1 / 1.5) * (c ? f : 1);
  const cfg = parseJudgeConfig('{"tails": [0.95]}');
  assert.equal(trials(cfg, 2000, par(1.15), 20, 10).FAIL, 20);
  const same = trials(cfg, 2000, par(1), 100, 11);
  assert.equal(same.FAIL, 0);
});

test('failures count as +∞ latency and as a failure rate: 3 % canary failures FAIL the run', () => {
  const fl: Gen = (r, c) => (c && r.next() < 0.03 ? Infinity : 0.05 * r.lognormal(0, 0.3));
  const r = trials(parseJudgeConfig('{"tails": []}'), 1000, fl, 5, 12);
  assert.equal(r.FAIL, 5);
  const lat = r.last.metrics.find((m) => m.name === 'latency')!;
  assert.ok(lat.samples.canary_failures! > 10, 'failures kept in the latency sample');
  const err = r.last.metrics.find((m) => m.name === 'errors')!;
  assert.equal(err.classification, 'FAIL');
  assert.equal(r.last.decidedBy.rule, 'critical_metric');
});

test('absolute SLO: canary p95 above max_seconds FAILs with rule "slo"; sparse data is INSUFFICIENT_DATA', () => {
  const cfg = parseJudgeConfig('{"slos": [{"quantile": 0.95, "max_seconds": 0.06}], "tails": []}');
  const r = trials(cfg, 2000, logn(0.3), 3, 13);
  assert.equal(r.FAIL, 3);
  assert.equal(r.last.decidedBy.rule, 'slo');
  const sparse = trials(cfg, 100, logn(0.3), 1, 14);
  assert.equal(sparse.last.metrics[0]!.tests.find((t) => t.test === 'slo_p95')!.classification, 'INSUFFICIENT_DATA');
});

test('score thresholds and non-critical metrics: one failing non-critical metric of four lowers the score', () => {
  const cfg = parseJudgeConfig(
    JSON.stringify({
      metrics: [
        { name: 'a', query: 'm_a', groups: ['g'] },
        { name: 'b', query: 'm_b', groups: ['g'] },
        { name: 'c', query: 'm_c', groups: ['g'] },
        { name: 'd', query: 'm_d', groups: ['g'] },
      ],
      thresholds: { pass: 90, marginal: 70 },
    }),
  );
  const rng = new SeededRandom(15);
  const arm = (f: number) => Array.from({ length: 500 }, () => 0.05 * rng.lognormal(0, 0.1) * f);
  const v = judge(cfg, new Map([['a', { baseline: arm(1), canary: arm(1) }], ['b', { baseline: arm(1), canary: arm(1) }], ['c', { baseline: arm(1), canary: arm(1) }], ['d', { baseline: arm(1), canary: arm(1.5) }]]));
  assert.equal(v.metrics[3]!.classification, 'FAIL');
  assert.equal(v.score, 75);
  assert.equal(v.verdict, 'MARGINAL');
  assert.equal(v.decidedBy.rule, 'score_pass');
  assert.equal(v.decidedBy.limit, 90);
});

test('the judge is deterministic and reports counts, effect intervals and the deciding threshold', () => {
  const cfg = parseJudgeConfig('');
  const a = trials(cfg, 3000, logn(0.3, 1.3), 1, 16).last;
  const b = trials(cfg, 3000, logn(0.3, 1.3), 1, 16).last;
  assert.deepEqual(a, b);
  assert.equal(a.verdict, 'FAIL');
  assert.equal(a.decidedBy.threshold, 'marginal');
  assert.equal(a.decidedBy.limit, 0.05);
  const m = a.metrics[0]!;
  assert.equal(m.samples.baseline, 3000);
  assert.equal(m.effect!.kind, 'ratio');
  assert.ok(m.effect!.lower > 1.2 && m.effect!.upper < 1.4);
});
