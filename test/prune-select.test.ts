import { test } from "node:test";
import * as assert from "node:assert/strict";
import { lmo, lmoIndices, roundMask } from "../src/prune/frank-wolfe";
import { keptCount, magnitudeMask, magnitudeMaskFlat, removedCount } from "../src/prune/magnitude";
import { range, selectSmallest } from "../src/prune/select";
import { mulberry32, shuffledIndices } from "../src/random";
import { ModelSpec } from "../src/model";

/** Random vector with many ties (small integers, including 0) and some non-integers. */
function randomVector(n: number, rand: () => number): Float32Array {
  return Float32Array.from({ length: n }, () => (rand() < 0.7 ? Math.floor(rand() * 7) - 4 : rand() * 6 - 3));
}

/** min ⟨d, v⟩ over ALL vertices of C = {m ∈ [0,1]ⁿ : Σm ≤ k} supported on `allowed`: binary v with ≤ k ones. */
function bruteForceLmo(d: Float32Array, k: number, allowed: Set<number>): { value: number; minimisers: number[] } {
  const n = d.length;
  let best = Infinity;
  let minimisers: number[] = [];
  for (let bits = 0; bits < 1 << n; bits++) {
    let ones = 0;
    let value = 0;
    let ok = true;
    for (let i = 0; i < n; i++) {
      if (bits & (1 << i)) {
        if (!allowed.has(i)) ok = false;
        ones++;
        value += d[i];
      }
    }
    if (!ok || ones > k) continue;
    if (value < best - 1e-9) {
      best = value;
      minimisers = [bits];
    } else if (Math.abs(value - best) <= 1e-9) minimisers.push(bits);
  }
  return { value: best, minimisers };
}

const toBits = (v: Float32Array) => v.reduce((b, x, i) => b | (x === 1 ? 1 << i : 0), 0);

test("selectSmallest picks exactly the count smallest under a strict order (vs a full sort)", () => {
  const rand = mulberry32(1);
  for (let trial = 0; trial < 300; trial++) {
    const n = 1 + Math.floor(rand() * 60);
    const keys = randomVector(n, rand);
    const count = Math.floor(rand() * (n + 1));
    const less = (a: number, b: number) => keys[a] < keys[b] || (keys[a] === keys[b] && a < b);
    const idx = shuffledIndices(n, trial);
    selectSmallest(idx, count, less);
    const expected = [...range(n)]
      .sort((a, b) => (less(a, b) ? -1 : 1))
      .slice(0, count)
      .sort((a, b) => a - b);
    assert.deepEqual(
      [...idx.subarray(0, count)].sort((a, b) => a - b),
      expected,
    );
  }
});

test("LMO matches enumeration of all vertices for n ≤ 10, with and without a sampled subset", () => {
  const rand = mulberry32(2);
  for (let trial = 0; trial < 400; trial++) {
    const n = 1 + Math.floor(rand() * 10);
    const k = Math.floor(rand() * (n + 1));
    const d = randomVector(n, rand);
    const sampled = trial % 2 === 1;
    const subset = sampled ? shuffledIndices(n, 100 + trial).subarray(0, 1 + Math.floor(rand() * n)) : undefined;
    const allowed = new Set(subset ? [...subset] : [...range(n)]);
    const v = lmo(d, k, subset);
    const { value, minimisers } = bruteForceLmo(d, k, allowed);
    const got = v.reduce((s, x, i) => s + x * d[i], 0);
    assert.ok(Math.abs(got - value) < 1e-6, `trial ${trial}: LMO value ${got}, enumeration ${value}`);
    assert.ok(minimisers.includes(toBits(v)), `trial ${trial}: LMO vertex is not a minimiser`);
    // the protocol's rule: only entries < 0, at most k, only from the subset
    for (let i = 0; i < n; i++) if (v[i] === 1) assert.ok(d[i] < 0 && allowed.has(i));
    assert.ok(v.reduce((a, b) => a + b, 0) <= k);
  }
});

test("LMO breaks ties by lower index and is deterministic", () => {
  const d = Float32Array.from([-1, -2, -1, 0, -2, -1, 3]);
  assert.deepEqual([...lmo(d, 3)], [1, 1, 0, 0, 1, 0, 0]);
  assert.deepEqual([...lmo(d, 10)], [1, 1, 1, 0, 1, 1, 0]);
  assert.deepEqual([...lmo(d, 0)], [0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...lmo(d, 2, Int32Array.from([5, 0, 2, 6]))], [1, 0, 1, 0, 0, 0, 0]);
  const big = Float32Array.from({ length: 100000 }, (_, i) => -((i * 7919) % 13));
  assert.deepEqual(lmoIndices(big, 5000).sort(), lmoIndices(big, 5000).sort());
});

test("rounding keeps entries ≥ τ, never more than k, largest m first (ties by |θ|, then index)", () => {
  const rand = mulberry32(3);
  for (let trial = 0; trial < 300; trial++) {
    const n = 1 + Math.floor(rand() * 40);
    const k = Math.floor(rand() * (n + 1));
    const tau = [0.5, 0.3, 1][trial % 3];
    const m = Float32Array.from({ length: n }, () => Math.floor(rand() * 5) / 4);
    const theta = Float32Array.from({ length: n }, () => Math.floor(rand() * 3) - 1);
    const r = roundMask(m, k, tau, theta);
    const kept = [...range(n)].filter((i) => r[i] === 1);
    const eligible = [...range(n)].filter((i) => m[i] >= tau);
    assert.ok(kept.length <= k, `kept ${kept.length} > k = ${k}`);
    assert.equal(kept.length, Math.min(k, eligible.length));
    const order = eligible.sort((a, b) => m[b] - m[a] || Math.abs(theta[b]) - Math.abs(theta[a]) || a - b);
    assert.deepEqual(
      kept,
      order.slice(0, k).sort((a, b) => a - b),
    );
  }
  assert.deepEqual([...roundMask(Float32Array.from([0.9, 0.5, 0.5, 0.49, 1]), 2, 0.5, Float32Array.from([1, -1, 3, 9, 1]))], [1, 0, 0, 0, 1]);
  assert.deepEqual([...roundMask(Float32Array.from([0.5, 0.5, 0.5]), 2, 0.5, Float32Array.from([1, -3, 3]))], [0, 1, 1]);
});

test("magnitude pruning removes exactly round(s·n), smallest |w| first, ties by lower index, deterministically", () => {
  assert.equal(removedCount(10, 0.35), 4);
  assert.equal(removedCount(224800, 0.9), 202320);
  assert.equal(keptCount(224800, 0.9), 22480);
  assert.equal(removedCount(7, 0.5), 4);
  const rand = mulberry32(4);
  for (let trial = 0; trial < 200; trial++) {
    const n = 1 + Math.floor(rand() * 50);
    const s = [0, 0.1, 0.5, 0.9, 0.95, 1, rand()][trial % 7];
    const w = randomVector(n, rand);
    const mask = magnitudeMaskFlat(w, s);
    const removed = [...range(n)].filter((i) => mask[i] === 0);
    assert.equal(removed.length, Math.round(s * n + 1e-9));
    const expected = [...range(n)].sort((a, b) => Math.abs(w[a]) - Math.abs(w[b]) || a - b).slice(0, removed.length);
    assert.deepEqual(
      removed,
      expected.sort((a, b) => a - b),
    );
    assert.deepEqual(magnitudeMaskFlat(w, s), mask);
  }
  assert.deepEqual([...magnitudeMaskFlat(new Float32Array(5).fill(0.3), 0.4)], [0, 0, 1, 1, 1]);
  assert.throws(() => magnitudeMaskFlat(new Float32Array(3), 1.5), /sparsity: expected a number in \[0, 1\], got 1.5/);
});

test("magnitude pruning over a model: global ranks all kernels together, per-layer prunes each kernel alone", () => {
  const spec: ModelSpec = { name: "tiny", inputShape: [4, 4, 1], layers: [{ type: "flatten" }, { type: "dense", units: 2 }, { type: "dense", units: 2 }] };
  const weights = {
    "dense1/kernel": Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32]),
    "dense1/bias": Float32Array.from([0, 0]),
    "dense2/kernel": Float32Array.from([0.5, -40, 0.1, 33]),
    "dense2/bias": Float32Array.from([0, 0]),
  };
  const global = magnitudeMask(spec, weights, 0.5);
  assert.deepEqual(Object.keys(global), ["dense1/kernel", "dense2/kernel"]);
  // n = 36, remove 18: 0.1, 0.5, then 1..16
  assert.deepEqual([...global["dense2/kernel"]], [0, 1, 0, 1]);
  assert.equal(global["dense1/kernel"].filter((x) => x === 0).length, 16);
  const perLayer = magnitudeMask(spec, weights, 0.5, "per-layer");
  assert.deepEqual([...perLayer["dense2/kernel"]], [0, 1, 0, 1]);
  assert.equal(perLayer["dense1/kernel"].filter((x) => x === 0).length, 16);
  assert.deepEqual([...perLayer["dense1/kernel"].subarray(14, 18)], [0, 0, 1, 1]);
});

test("LMO over vectors of different sizes one after another (its scratch is reused): each matches a full sort, earlier results intact", () => {
  const rand = mulberry32(21);
  // Signs alternating at random, values from a few levels (many ties), −0, NaN and −∞ among them.
  const vector = (n: number) =>
    Float32Array.from({ length: n }, (_, i) => (i % 97 === 0 ? [-0, NaN, -Infinity][i % 3] : (rand() < 0.5 ? -1 : 1) * Math.floor(rand() * 8)));
  const bySort = (d: Float32Array, k: number, candidates?: Int32Array) =>
    Array.from(candidates ?? d.keys())
      .filter((i) => d[i] < 0)
      .sort((a, b) => d[a] - d[b] || a - b)
      .slice(0, k)
      .sort((a, b) => a - b);
  const sorted = (idx: Int32Array) => Array.from(idx).sort((a, b) => a - b);
  const calls: [Float32Array, number, Int32Array | undefined][] = [
    [vector(5000), 700, undefined],
    [vector(300), 40, undefined],
    [vector(8000), 1000, undefined],
    [vector(8000), 600, shuffledIndices(8000, 4).subarray(0, 2000)],
    [vector(200), 150, undefined], // fewer negative entries than k: all of them
  ];
  const results = calls.map(([d, k, candidates]) => lmoIndices(d, k, candidates));
  calls.forEach(([d, k, candidates], c) => assert.deepEqual(sorted(results[c]), bySort(d, k, candidates), `call ${c}`));
});
