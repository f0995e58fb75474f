import { test } from "node:test";
import * as assert from "node:assert/strict";
import { FwOracle, frankWolfe, lmoIndices } from "../src/prune/frank-wolfe";
import { describeMomentum, describeStepSize, goldenSectionStep, mokhtariRho, momentumAt, stepSizeAt, toMomentum, toStepSize } from "../src/prune/schedules";
import { mulberry32 } from "../src/random";

/** F(m) = ½ mᵀQm − bᵀm with Q = AᵀA + μI (strongly convex), computed in float64. */
function quadratic(n: number, seed: number, mu: number, bScale: number) {
  const rand = mulberry32(seed);
  const A = Array.from({ length: n }, () => Array.from({ length: n }, () => rand() * 2 - 1));
  const Q = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => A.reduce((s, row) => s + row[i] * row[j], 0) + (i === j ? mu : 0)));
  const b = Array.from({ length: n }, () => (rand() * 2 - 0.5) * bScale);
  const value = (m: ArrayLike<number>) => {
    let s = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) s += 0.5 * m[i] * Q[i][j] * m[j];
      s -= b[i] * m[i];
    }
    return s;
  };
  const gradient = (m: ArrayLike<number>) => Float64Array.from({ length: n }, (_, i) => Q[i].reduce((s, q, j) => s + q * m[j], 0) - b[i]);
  const frobenius = Math.sqrt(Q.flat().reduce((s, q) => s + q * q, 0));
  return { Q, b, value, gradient, frobenius };
}

/** Euclidean projection onto C = {m ∈ [0,1]ⁿ : Σm ≤ k}: clip(y − λ) with the smallest λ ≥ 0 that fits the budget. */
function project(y: Float64Array, k: number): Float64Array {
  const clipAt = (lambda: number) => y.map((v) => Math.min(1, Math.max(0, v - lambda)));
  const sum = (v: Float64Array) => v.reduce((a, c) => a + c, 0);
  if (sum(clipAt(0)) <= k) return clipAt(0);
  let lo = 0;
  let hi = Math.max(...y) + 1;
  for (let it = 0; it < 60; it++) {
    const mid = (lo + hi) / 2;
    if (sum(clipAt(mid)) > k) lo = mid;
    else hi = mid;
  }
  return clipAt(hi);
}

/** The optimum over C, independently of FW: projected gradient descent with step 1/L (linear convergence here). */
function projectedGradientOptimum(q: ReturnType<typeof quadratic>, n: number, k: number): Float64Array {
  let m: Float64Array = new Float64Array(n);
  const step = 1 / q.frobenius;
  for (let it = 0; it < 5000; it++) {
    const g = q.gradient(m);
    m = project(
      m.map((v, i) => v - step * g[i]),
      k,
    );
  }
  return m;
}

function exactOracle(q: ReturnType<typeof quadratic>, n: number): FwOracle {
  return {
    n,
    evaluate: (m) => ({ loss: q.value(m), grad: Float32Array.from(q.gradient(m)), samples: 1 }),
    lossAt: (m) => q.value(m),
  };
}

for (const [label, bScale] of [
  ["budget active", 4],
  ["interior optimum", 0.3],
] as const) {
  test(`FW with 2/(t+2) reaches the projected-gradient optimum of a strongly convex quadratic (${label}); gap is O(1/t)`, async () => {
    const n = 8;
    const k = 3;
    const q = quadratic(n, 7, 1, bScale);
    const optimum = projectedGradientOptimum(q, n, k);
    const fStar = q.value(optimum);
    if (label === "budget active") assert.ok(optimum.reduce((a, c) => a + c, 0) > k - 1e-6, "test setup: the budget should bind");
    const T = 20000;
    const { m, history } = await frankWolfe(exactOracle(q, n), new Float32Array(n), { k, iterations: T, stepSize: "2/(t+2)", momentum: "none" });
    const distance = Math.max(...optimum.map((v, i) => Math.abs(v - m[i])));
    assert.ok(distance < 0.02, `‖m_T − m*‖∞ = ${distance}`);
    assert.ok(q.value(m) - fStar < 1e-4, `F(m_T) − F* = ${q.value(m) - fStar}`);
    // Jaggi (2013): F(m_t) − F* ≤ 2C/(t+2), min_{s≤t} gap_s ≤ 6.75·C/(t+2) with C ≤ ‖Q‖₂·diam(C)² ≤ ‖Q‖_F·min(n, 2k)
    const curvature = q.frobenius * Math.min(n, 2 * k);
    let minGap = Infinity;
    for (const it of history) {
      minGap = Math.min(minGap, it.gap);
      assert.ok(it.gap >= -1e-4, `gap at t=${it.t} is ${it.gap} < 0`);
      if (it.t >= 1) assert.ok(it.loss - fStar <= (2 * curvature) / (it.t + 2) + 1e-6, `primal bound broken at t=${it.t}`);
      if (it.t >= 2) assert.ok(minGap <= (6.75 * curvature) / (it.t + 2), `gap bound broken at t=${it.t}: ${minGap}`);
    }
    const minGapUpTo = (t: number) => Math.min(...history.slice(0, t).map((h) => h.gap));
    assert.ok(minGapUpTo(10000) * 10000 <= 2 * minGapUpTo(100) * 100, "t·gap should not grow: O(1/t)");
    assert.ok(minGapUpTo(10000) < minGapUpTo(100) / 20, `gap fell only from ${minGapUpTo(100)} to ${minGapUpTo(10000)}`);
  });
}

test("FW with line search and with a constant step also approach the optimum; every iterate stays in C", async () => {
  const n = 8;
  const k = 3;
  const q = quadratic(n, 11, 1, 4);
  const fStar = q.value(projectedGradientOptimum(q, n, k));
  const ls = await frankWolfe(exactOracle(q, n), new Float32Array(n), {
    k,
    iterations: 3000,
    stepSize: { kind: "line-search", evaluations: 20 },
    momentum: "none",
  });
  assert.ok(q.value(ls.m) - fStar < 1e-3, `line search: F − F* = ${q.value(ls.m) - fStar}`);
  const constant = await frankWolfe(exactOracle(q, n), new Float32Array(n), {
    k,
    iterations: 3000,
    stepSize: 0.01,
    momentum: "none",
    onIteration: (_it, m) => {
      assert.ok(m.every((v) => v >= 0 && v <= 1 + 1e-6));
      assert.ok(m.reduce((a, c) => a + c, 0) <= k + 1e-4);
    },
  });
  assert.ok(q.value(constant.m) - fStar < 0.05, `constant γ: F − F* = ${q.value(constant.m) - fStar}`);
});

/** A stochastic oracle: the exact gradient plus seeded noise that depends on t only. */
function noisyOracle(q: ReturnType<typeof quadratic>, n: number): FwOracle {
  return {
    n,
    evaluate: (m, t) => {
      const rand = mulberry32(1000 + t);
      return { loss: q.value(m), grad: Float32Array.from(q.gradient(m), (g) => g + (rand() - 0.5) * 3), samples: 4 };
    },
  };
}

test("FW-momentum with β = 0 equals plain FW exactly; β > 0 differs; samples add up", async () => {
  const n = 10;
  const q = quadratic(n, 3, 0.5, 3);
  const m0 = Float32Array.from([1, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
  const opts = { k: 3, iterations: 300, stepSize: 0.05 } as const;
  const plain = await frankWolfe(noisyOracle(q, n), m0, { ...opts, momentum: "none" });
  const beta0 = await frankWolfe(noisyOracle(q, n), m0, { ...opts, momentum: { kind: "constant", beta: 0 } });
  assert.deepEqual(beta0.m, plain.m);
  assert.deepEqual(beta0.history, plain.history);
  const beta9 = await frankWolfe(noisyOracle(q, n), m0, { ...opts, momentum: 0.9 });
  assert.notDeepEqual(beta9.m, plain.m);
  assert.equal(beta9.history[0].beta, 0);
  assert.equal(beta9.history[5].beta, 0.9);
  assert.equal(plain.samples, 1200);
  assert.equal(plain.history[299].samples, 1200);
  // momentum averages the noise out: a smaller final loss than plain FW on this noisy problem
  assert.ok(q.value(beta9.m) < q.value(plain.m), `β=0.9: ${q.value(beta9.m)} vs plain ${q.value(plain.m)}`);
});

test("each iteration's arithmetic, float for float: the direction, the gap (summed in index order, then the vertex's order), the step and the non-zero count", async () => {
  // An oracle with zero and repeated gradient entries (ties, entries that are not negative) and a schedule with γ = 0
  // and γ = 1 steps (a mask entry that returns to zero): each value is checked against the formulas written plainly.
  const n = 3001;
  const k = 300;
  const rand = mulberry32(11);
  const grads = Array.from({ length: 12 }, () => Float32Array.from({ length: n }, (_, i) => (i % 7 === 0 ? 0 : Math.round((rand() - 0.5) * 64) / 64)));
  const oracle: FwOracle = { n, evaluate: (_m, t) => ({ loss: t, grad: grads[t], samples: 5 }) };
  const m0 = Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 0.25 : 0));
  // Schedules are self-contained functions (their source identifies them), so the tables sit inside them.
  const gamma = (t: number) => [0.5, 0, 0.3, 1, 0.125, 0, 0.7, 0.01, 0.2, 0.9, 0.05, 0.5][t];
  const beta = (t: number) => [0, 0.9, 0.5, 0.99, 0.1, 0.9, 0.3, 0.75, 0.9, 0.6, 0.2, 0.9][t];
  const opts = { k, iterations: 12, stepSize: { name: "g", fn: gamma }, momentum: { name: "b", fn: beta } };
  const { m, history } = await frankWolfe(oracle, m0, opts);
  const want = m0.slice();
  const d = new Float32Array(n);
  for (let t = 0; t < 12; t++) {
    for (let i = 0; i < n; i++) d[i] = t === 0 ? grads[t][i] : beta(t) * d[i] + (1 - beta(t)) * grads[t][i];
    const chosen = lmoIndices(d, k);
    let gap = 0;
    for (let i = 0; i < n; i++) gap += d[i] * want[i];
    for (const i of chosen) gap -= d[i];
    for (let i = 0; i < n; i++) want[i] *= 1 - gamma(t);
    for (const i of chosen) want[i] += gamma(t);
    const nonzero = want.filter((v) => v !== 0).length;
    const it = history[t];
    assert.deepEqual([it.gap, it.stepSize, it.vertexSize, it.nonzero, it.samples], [gap, gamma(t), chosen.length, nonzero, 5 * (t + 1)], `iteration ${t}`);
  }
  assert.deepEqual(m, want);
  assert.ok(
    history.some((h, t) => t > 0 && h.nonzero < history[t - 1].nonzero),
    "some entry returned to zero",
  );
});

test("lmoSampleFraction: seeded, reproducible, and different from the full LMO", async () => {
  const n = 10;
  const q = quadratic(n, 5, 1, 3);
  const run = (seed: number, lmoSampleFraction: number) =>
    frankWolfe(exactOracle(q, n), new Float32Array(n), { k: 4, iterations: 50, stepSize: "2/(t+2)", momentum: "none", seed, lmoSampleFraction });
  const a = await run(1, 0.3);
  assert.deepEqual((await run(1, 0.3)).m, a.m);
  assert.notDeepEqual((await run(2, 0.3)).m, a.m);
  assert.notDeepEqual((await run(1, 1)).m, a.m);
  assert.ok(
    a.history.every((h) => h.vertexSize <= 3),
    "a vertex can only use the 3 sampled coordinates",
  );
});

test("FW rejects infeasible starts and bad options, naming the field", async () => {
  const q = quadratic(4, 1, 1, 1);
  const o = exactOracle(q, 4);
  await assert.rejects(
    frankWolfe(o, Float32Array.from([1, 1, 1, 0]), { k: 2, iterations: 1, stepSize: 0.1, momentum: "none" }),
    /m0 sums to 3, more than the kept count k = 2/,
  );
  await assert.rejects(frankWolfe(o, new Float32Array(3), { k: 2, iterations: 1, stepSize: 0.1, momentum: "none" }), /m0: expected 4 entries, got 3/);
  await assert.rejects(frankWolfe(o, new Float32Array(4), { k: 2, iterations: 1, stepSize: 0.1, momentum: "none", lmoSampleFraction: 0 }), /lmoSampleFraction/);
  await assert.rejects(
    frankWolfe({ n: 4, evaluate: o.evaluate }, new Float32Array(4), { k: 2, iterations: 1, stepSize: "line-search", momentum: "none" }),
    /lossAt/,
  );
});

test("schedules: values, shorthands, canonical descriptions, and named custom functions", () => {
  assert.equal(stepSizeAt(toStepSize("2/(t+2)"), 0), 1);
  assert.equal(stepSizeAt(toStepSize("2/(t+2)"), 2), 0.5);
  assert.equal(stepSizeAt(toStepSize(0.02), 123), 0.02);
  const decay = { name: "my-decay", fn: (t: number) => 1 / (t + 10) };
  assert.equal(stepSizeAt(toStepSize(decay), 0), 0.1);
  assert.deepEqual(describeStepSize(decay), { kind: "custom", name: "my-decay", source: String(decay.fn) });
  assert.deepEqual(describeStepSize(0.02), { kind: "constant", gamma: 0.02 });
  assert.deepEqual(describeStepSize({ kind: "constant", gamma: 0.02 }), describeStepSize(0.02));
  assert.deepEqual(describeStepSize("line-search"), { kind: "line-search", evaluations: 8 });
  assert.deepEqual(describeStepSize("2/(t+2)"), { kind: "open-loop" });
  assert.throws(() => toStepSize({ name: "", fn: () => 0.1 }), /non-empty name/);
  assert.throws(() => toStepSize(1.5), /stepSize.gamma: expected a number in \(0, 1\], got 1.5/);
  assert.throws(() => stepSizeAt(toStepSize({ name: "bad", fn: () => 2 }), 3), /stepSize "bad" gave γ\(3\) = 2/);

  assert.ok(Math.abs(mokhtariRho(0) - 1) < 1e-12);
  assert.ok(Math.abs(mokhtariRho(19) - 4 / 9) < 1e-12);
  assert.ok(Math.abs(momentumAt(toMomentum("mokhtari"), 19) - 5 / 9) < 1e-12);
  assert.equal(momentumAt(toMomentum(0.9), 4), 0.9);
  assert.equal(momentumAt(toMomentum("none"), 4), 0);
  assert.deepEqual(describeMomentum(0.9), { kind: "constant", beta: 0.9 });
  const warmup = (t: number) => Math.min(0.9, t / 10);
  assert.deepEqual(describeMomentum({ name: "warmup", fn: warmup }), { kind: "custom", name: "warmup", source: String(warmup) });
  assert.deepEqual(describeMomentum("mokhtari"), { kind: "mokhtari" });
  assert.throws(() => toMomentum(1), /momentum.beta: expected a number in \[0, 1\), got 1/);
  assert.throws(() => toStepSize({ kind: "constant", gamma: 0.1, beta: 2 } as never), /stepSize: unknown key "beta"; expected only kind, gamma/);
  assert.throws(() => toMomentum("sometimes" as never), /momentum: unknown schedule "sometimes"; expected a number β, "mokhtari"/);
});

test("golden-section step finds the minimiser of a 1-D convex function and never beats φ(0) falsely", () => {
  const r = goldenSectionStep((g) => (g - 0.3) ** 2, 0.09, 30);
  assert.ok(Math.abs(r.gamma - 0.3) < 1e-4, `γ = ${r.gamma}`);
  const flat = goldenSectionStep((g) => g, 0, 8);
  assert.equal(flat.gamma, 0);
});
