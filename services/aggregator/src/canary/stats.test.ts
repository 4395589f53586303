import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countPairsAtMost, exceedanceTest, fisherExact, hodgesLehmann, holm, kthPairwiseDifference, lookAlpha, mannWhitney, normalCdf, normalQuantile, quantileWithInterval, requiredTailSamples, sorted } from './stats';
import { SeededRandom } from './random';

test('normal CDF and quantile agree with tables and invert each other', () => {
  assert.ok(Math.abs(normalCdf(1.959964) - 0.975) < 1e-6);
  assert.ok(Math.abs(normalQuantile(0.99) - 2.326348) < 1e-5);
  for (const p of [1e-9, 0.001, 0.3, 0.5, 0.9, 0.999999]) assert.ok(Math.abs(normalCdf(normalQuantile(p)) - p) / p < 1e-5, `p=${p}`);
});

test('Mann-Whitney U matches a hand-computed example with ties, and +Infinity ranks last', () => {
  // baseline 1,2,3 ; canary 2,4,5: pairs canary>baseline = (2>1)+(4>all 3)+(5>all 3) + tie(2,2)/2 = 1+3+3+0.5
  const r = mannWhitney(sorted([1, 2, 3]), sorted([2, 4, 5]));
  assert.equal(r.u, 7.5);
  assert.equal(r.superiority, 7.5 / 9);
  const inf = mannWhitney(sorted([1, 2, 3, 4]), sorted([1.5, 2.5, Infinity, Infinity]));
  assert.equal(inf.u, 1 + 2 + 4 + 4);
  assert.ok(mannWhitney(sorted([1, 1, 1]), sorted([1, 1, 1])).pGreater === 1, 'all tied: no evidence');
});

test('k-th pairwise difference by selection equals brute force (random, tied and equal samples)', () => {
  const rng = new SeededRandom(3);
  for (let trial = 0; trial < 30; trial++) {
    const m = 1 + rng.int(40);
    const n = 1 + rng.int(40);
    const tie = trial % 3 === 0;
    const b = sorted(Array.from({ length: m }, () => (tie ? rng.int(5) : rng.normal())));
    const c = sorted(Array.from({ length: n }, () => (tie ? rng.int(5) : rng.normal() + 0.3)));
    const all: number[] = [];
    for (const x of c) for (const y of b) all.push(x - y);
    all.sort((p, q) => p - q);
    for (const k of [1, Math.ceil(all.length / 3), Math.ceil(all.length / 2), all.length]) {
      assert.equal(kthPairwiseDifference(c, b, k), all[k - 1], `m=${m} n=${n} k=${k}`);
      assert.equal(countPairsAtMost(c, b, all[k - 1]!) >= k, true);
    }
  }
});

test('Hodges-Lehmann recovers a log shift and its interval covers the truth about as often as promised', () => {
  const rng = new SeededRandom(11);
  let covered = 0;
  const trials = 200;
  for (let t = 0; t < trials; t++) {
    const b = sorted(Array.from({ length: 300 }, () => rng.normal()));
    const c = sorted(Array.from({ length: 300 }, () => rng.normal() + 0.2));
    const hl = hodgesLehmann(b, c, 0.9);
    if (hl.lower <= 0.2 && 0.2 <= hl.upper) covered++;
  }
  assert.ok(covered / trials > 0.85 && covered / trials < 0.95, `90 % interval covered ${covered}/${trials}`);
});

test('quantile interval, exceedance test and Fisher exact', () => {
  const x = sorted(Array.from({ length: 1000 }, (_, i) => i + 1));
  const q = quantileWithInterval(x, 0.99, 0.95);
  assert.equal(q.value, 990);
  assert.ok(q.lower < 990 && q.upper > 990 && q.lower >= 980 && q.upper <= 1000);
  assert.equal(quantileWithInterval(sorted([1, 2, 3]), 0.99, 0.95).upper, Infinity, 'too few samples: unbounded');
  // Fisher: 10/10 vs 0/10 → p = 1/C(20,10)
  assert.ok(Math.abs(fisherExact(10, 10, 0, 10).pGreater - 1 / 184756) < 1e-9);
  assert.ok(Math.abs(fisherExact(3, 10, 3, 10).pGreater - fisherExact(3, 10, 3, 10).pLess) < 1e-12);
  const ex = exceedanceTest(sorted(Array.from({ length: 1000 }, (_, i) => i)), sorted(Array.from({ length: 1000 }, (_, i) => (i >= 900 ? i + 300 : i))), 0.95);
  assert.ok(ex.canaryAbove > ex.baselineAbove && ex.pGreater < 0.05);
});

test('alpha spending sums to alpha over the looks and Holm is step-down', () => {
  for (const looks of [1, 3, 5, 10]) {
    let sum = 0;
    for (let k = 1; k <= looks; k++) sum += lookAlpha(0.01, k, looks);
    assert.ok(Math.abs(sum - 0.01) < 1e-12, `looks=${looks}`);
    if (looks > 1) assert.ok(lookAlpha(0.01, 1, looks) < lookAlpha(0.01, looks, looks), 'O\'Brien-Fleming spends little early');
  }
  assert.deepEqual(holm([0.001, 0.04, 0.03, 0.5], 0.05), [true, false, false, false]);
  assert.deepEqual(holm([0.001, 0.02, 0.03], 0.1), [true, true, true]);
  assert.equal(requiredTailSamples(0.99, { alpha: 0.01, power: 0.8, ratio: 2, minTail: 10 }), 2965);
  assert.equal(requiredTailSamples(0.9, { alpha: 0.01, power: 0.8, ratio: 10, minTail: 10 }), 100, 'the k-observation floor');
});
