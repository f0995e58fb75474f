import { before, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/backend";
import { Split } from "../src/data";
import { datasetFor } from "../src/datasets";
import { ModelSpec, PAPER_CNN, createModel, disposeModel, forward, getWeights, modelFromWeights, paramShapes } from "../src/model";
import { cnnMaskOracle, minibatchStream } from "../src/prune/cnn-oracle";
import { applyMaskToWeights, unflatten } from "../src/prune/mask";
import { lossOf } from "../src/train";
import { FwOracle, frankWolfe, lmoIndices } from "../src/prune/frank-wolfe";
import { cnnGroupOracle } from "../src/prune/group-oracle";
import {
  applyGroupMask,
  expandGroupMask,
  flopBudget,
  groupCount,
  groupL1,
  groupLayout,
  groupMaskFlops,
  keptPerLayer,
  roundGroupMask,
  selectGroups,
  specFlops,
} from "../src/prune/groups";
import { surgery, unsurgery } from "../src/prune/surgery";
import { mulberry32 } from "../src/random";
import { PRESETS, computeRecord, planRuns, readRecord, resolveConfig, sweep, validateConfig } from "../src/experiment";

/** conv(3) → pool → conv(4) → flatten → dense(5) → dense(10) on 28×28 digits: 12 groups. */
const TINY_CNN: ModelSpec = {
  name: "tiny-cnn",
  inputShape: [28, 28, 1],
  layers: [
    { type: "conv2d", filters: 3, kernelSize: 5, stride: 3, activation: "relu" },
    { type: "maxpool", size: 2 },
    { type: "conv2d", filters: 4, kernelSize: 3, activation: "relu" },
    { type: "flatten" },
    { type: "dense", units: 5, activation: "relu" },
    { type: "dense", units: 10 },
  ],
};

let digits: Split;
before(async () => {
  await initBackend(undefined, { quiet: true });
  const { train } = datasetFor({ name: "mnist-embedded", trainSize: 8000, testSize: 2000, seed: 0, limitTrain: 64 });
  digits = train;
});

/** A seeded model with non-zero biases (so that a removed group's bias matters). */
function randomModel(spec: ModelSpec, seed: number) {
  const m = createModel(spec, seed);
  const w = getWeights(m);
  disposeModel(m);
  const rand = mulberry32(seed + 1000);
  for (const [name, v] of Object.entries(w)) if (name.endsWith("/bias")) for (let i = 0; i < v.length; i++) v[i] = (rand() - 0.5) * 0.2;
  return modelFromWeights(spec, w);
}

function randomGroups(spec: ModelSpec, seed: number): Float32Array {
  const layout = groupLayout(spec);
  const rand = mulberry32(seed);
  const g = Float32Array.from({ length: groupCount(layout) }, () => (rand() < 0.5 ? 1 : 0));
  for (const l of layout) g[l.offset + Math.floor(rand() * l.count)] = 1; // ≥ 1 per layer
  return g;
}

function logits(spec: ModelSpec, weights: Record<string, Float32Array>, x: tf.Tensor4D): Float32Array {
  const model = modelFromWeights(spec, weights);
  try {
    return tf.tidy(() => forward(spec, model.params, x).dataSync() as Float32Array);
  } finally {
    disposeModel(model);
  }
}

test("the group layout: every conv filter and hidden neuron, never the output layer", () => {
  const layout = groupLayout(PAPER_CNN);
  assert.deepEqual(
    layout.map((g) => [g.name, g.count, g.offset]),
    [
      ["conv1", 32, 0],
      ["conv2", 64, 32],
      ["dense1", 128, 96],
    ],
  );
  assert.equal(groupCount(layout), 224);
});

test("the group LMO is the vertex of C = {m ∈ [0,1]^G : Σm ≤ k} that minimises ⟨d, v⟩ (enumeration, G ≤ 10)", () => {
  const rand = mulberry32(7);
  for (let trial = 0; trial < 60; trial++) {
    const G = 1 + (trial % 10);
    const k = Math.floor(rand() * (G + 1));
    // Values on a coarse grid, so ties happen and the tie rule (lower index) is exercised.
    const d = Float32Array.from({ length: G }, () => Math.round((rand() * 2 - 1) * 4) / 4);
    let best = Infinity;
    let bestSet = -1;
    for (let set = 0; set < 1 << G; set++) {
      let size = 0;
      let value = 0;
      for (let g = 0; g < G; g++) {
        if (set & (1 << g)) {
          size++;
          value += d[g];
        }
      }
      if (size > k) continue;
      // among equal values: the fewest groups, then the lexicographically lowest indices
      if (value < best - 1e-12 || (Math.abs(value - best) <= 1e-12 && isPreferred(set, bestSet, G))) {
        best = value;
        bestSet = set;
      }
    }
    const chosen = lmoIndices(d, k);
    const value = Array.from(chosen).reduce((s, g) => s + d[g], 0);
    assert.ok(Math.abs(value - best) < 1e-9, `G=${G} k=${k} d=${d}: LMO value ${value}, optimum ${best}`);
    assert.ok(chosen.length <= k);
    const set = Array.from(chosen).reduce((s, g) => s | (1 << g), 0);
    assert.equal(set, bestSet, `G=${G} k=${k} d=${Array.from(d)}: the LMO chose ${set.toString(2)}, expected ${bestSet.toString(2)}`);
  }
});

/** The LMO's set among optimal ones: no zero entries (only d < 0 taken), then lower indices first. */
function isPreferred(set: number, other: number, G: number): boolean {
  if (other < 0) return true;
  const size = (s: number) => Array.from({ length: G }, (_, g) => (s >> g) & 1).reduce((a, b) => a + b, 0);
  if (size(set) !== size(other)) return size(set) < size(other);
  for (let g = 0; g < G; g++) {
    const a = (set >> g) & 1;
    const b = (other >> g) & 1;
    if (a !== b) return a === 1;
  }
  return false;
}

test("the group gradient equals the sum of the weight-level mask gradients over the group, and finite differences", () => {
  const model = randomModel(TINY_CNN, 3);
  const layout = groupLayout(TINY_CNN);
  const n = groupCount(layout);
  const rand = mulberry32(11);
  const m = Float32Array.from({ length: n }, () => 0.4 + 0.6 * rand());
  const opts = { batchSize: 32, seed: 5, loss: "crossentropy" as const };
  const groupOracle = cnnGroupOracle(model, digits, opts);
  const { grad, loss } = groupOracle.evaluate(m, 0);

  // Weight level: the same point as kernels θ ⊙ M (M = m_g on group g's column) and biases b ⊙ m. The weight-level
  // oracle gives θᵢ ∂L/∂wᵢ for every kernel entry; the biases' share b_g ∂L/∂b_g comes from autodiff on the same batch.
  const w = getWeights(model);
  const scaled = { ...w };
  for (const g of layout) scaled[`${g.name}/bias`] = w[`${g.name}/bias`].map((b, c) => b * m[g.offset + c]);
  const weightModel = modelFromWeights(TINY_CNN, scaled);
  const weightOracle = cnnMaskOracle(weightModel, digits, opts);
  const M = new Float32Array(weightOracle.n).fill(1);
  for (const e of weightOracle.layout) {
    const g = layout.find((x) => `${x.name}/kernel` === e.name);
    const outs = e.shape[e.shape.length - 1];
    if (g) for (let i = 0; i < e.length; i++) M[e.offset + i] = m[g.offset + (i % outs)];
  }
  const weightLevel = weightOracle.evaluate(M, 0);
  assert.ok(Math.abs(weightLevel.loss - loss) < 1e-5, `same point, same minibatch, same loss: ${weightLevel.loss} vs ${loss}`);
  const sum = new Float64Array(n);
  for (const e of weightOracle.layout) {
    const g = layout.find((l) => `${l.name}/kernel` === e.name);
    if (!g) continue;
    const outs = e.shape[e.shape.length - 1];
    for (let i = 0; i < e.length; i++) sum[g.offset + (i % outs)] += weightLevel.grad[e.offset + i];
  }
  const batch = minibatchStream(digits, opts.batchSize, opts.seed);
  const { x, y } = batch.draw(0);
  const biasNames = layout.map((g) => `${g.name}/bias`);
  const biasShares = tf.tidy(() => {
    const masked = applyMaskToWeights(w, unflatten(M, weightOracle.layout));
    const fixed: Record<string, tf.Tensor> = {};
    for (const [name, v] of Object.entries(masked))
      if (!biasNames.includes(name)) fixed[name] = tf.tensor(v, paramShapes(TINY_CNN).find((p) => p.name === name)?.shape);
    const f = (...bs: tf.Tensor[]) => {
      const params = { ...fixed };
      biasNames.forEach((name, l) => (params[name] = bs[l]));
      return lossOf(forward(TINY_CNN, params, x), y, "crossentropy");
    };
    const biases = biasNames.map((name) => tf.tensor1d(scaled[name]));
    return tf
      .valueAndGrads(f)(biases)
      .grads.map((gb, l) => tf.mul(gb, tf.tensor1d(w[biasNames[l]])).dataSync());
  });
  batch.dispose();
  layout.forEach((g, l) => biasShares[l].forEach((v, c) => (sum[g.offset + c] += v)));
  for (let i = 0; i < n; i++) {
    assert.ok(Math.abs(grad[i] - sum[i]) <= 1e-5 + 1e-4 * Math.abs(sum[i]), `group ${i}: group gradient ${grad[i]}, sum of weight-level gradients ${sum[i]}`);
  }
  // Finite differences of F in each m_g (kernel column and bias together), central, on the same minibatch.
  const eps = 1e-2;
  for (let i = 0; i < n; i++) {
    const plus = m.slice();
    const minus = m.slice();
    plus[i] += eps;
    minus[i] -= eps;
    const fd = (groupOracle.lossAt(plus) - groupOracle.lossAt(minus)) / (2 * eps);
    assert.ok(Math.abs(grad[i] - fd) <= 1e-3 + 0.02 * Math.abs(fd), `group ${i}: gradient ${grad[i]}, finite differences ${fd}`);
  }
  weightOracle.dispose();
  groupOracle.dispose();
  disposeModel(weightModel);
  disposeModel(model);
});

test("a removed group's gradient is exactly 0 (its pre-activation is 0, where ReLU's gradient is 0): FW from a 0/1 mask cannot add groups", () => {
  const model = randomModel(TINY_CNN, 4);
  const layout = groupLayout(TINY_CNN);
  const m = randomGroups(TINY_CNN, 9);
  const oracle = cnnGroupOracle(model, digits, { batchSize: 32, seed: 1, loss: "crossentropy" });
  const { grad } = oracle.evaluate(m, 0);
  const removed = Array.from(m.keys()).filter((i) => m[i] === 0);
  assert.ok(removed.length > 0);
  for (const i of removed) assert.equal(grad[i], 0, `removed group ${i}`);
  // Inside C (every m_g > 0) the same groups have gradients again.
  const inside = oracle.evaluate(new Float32Array(groupCount(layout)).fill(0.5), 1).grad;
  assert.ok(removed.some((i) => inside[i] !== 0));
  oracle.dispose();
  disposeModel(model);
});

test("surgery preserves the masked model's logits (max relative error 1e-5), and unsurgery inverts it", () => {
  const x = tf.tensor4d(digits.images.subarray(0, 16 * 784), [16, 28, 28, 1]);
  for (const [spec, seed] of [
    [TINY_CNN, 1],
    [TINY_CNN, 2],
    [PAPER_CNN, 3],
  ] as [ModelSpec, number][]) {
    const model = randomModel(spec, seed);
    const weights = getWeights(model);
    disposeModel(model);
    const groups = randomGroups(spec, seed);
    const masked = logits(spec, applyGroupMask(spec, weights, groups), x);
    const smaller = surgery(spec, weights, groups);
    const cut = logits(smaller.spec, smaller.weights, x);
    const scale = Math.max(...masked.map(Math.abs));
    const err = Math.max(...masked.map((v, i) => Math.abs(v - cut[i])));
    assert.ok(err <= 1e-5 * scale, `${spec.name} seed ${seed}: max |Δlogit| ${err} vs max |logit| ${scale}`);
    assert.equal(specFlops(smaller.spec), groupMaskFlops(spec, groupLayout(spec), groups));
    const back = unsurgery(spec, smaller.weights, groups);
    const expected = applyGroupMask(spec, weights, groups);
    for (const name of Object.keys(expected)) assert.deepEqual(back[name], expected[name], name);
  }
  x.dispose();
});

test("the weight-level mask of a group mask zeroes the group's column and the next layer's inputs through the flatten", () => {
  const layout = groupLayout(TINY_CNN);
  const groups = new Float32Array(groupCount(layout)).fill(1);
  groups[layout[1].offset + 2] = 0; // conv2 filter 2: its column and, after the flatten of [2, 2, 4], dense1 rows 2, 6, 10, 14
  const mask = expandGroupMask(TINY_CNN, groups);
  const conv2 = mask["conv2/kernel"];
  for (let i = 0; i < conv2.length; i++) assert.equal(conv2[i], i % 4 === 2 ? 0 : 1);
  const dense1 = mask["dense1/kernel"];
  for (let r = 0; r < 16; r++) for (let c = 0; c < 5; c++) assert.equal(dense1[r * 5 + c], r % 4 === 2 ? 0 : 1, `dense1 row ${r}`);
  assert.ok(mask["conv1/kernel"].every((v) => v === 1));
  assert.throws(() => expandGroupMask(TINY_CNN, new Float32Array(groupCount(layout))), /removes every group of conv1/);
});

test("group selection meets its budget: FLOPs (global, per layer) and group counts, ≥ 1 group per layer", () => {
  const model = createModel(PAPER_CNN, 0);
  const weights = getWeights(model);
  disposeModel(model);
  const layout = groupLayout(PAPER_CNN);
  const score = groupL1(PAPER_CNN, weights, true);
  for (const reduction of [0.25, 0.5, 0.75, 0.95]) {
    for (const scope of ["global", "per-layer"] as const) {
      const g = selectGroups(PAPER_CNN, layout, score, reduction, "flops", scope);
      const flops = groupMaskFlops(PAPER_CNN, layout, g);
      assert.ok(flops <= flopBudget(PAPER_CNN, reduction), `${scope} ${reduction}: ${flops} FLOPs`);
      assert.ok(flops >= flopBudget(PAPER_CNN, reduction) * 0.9, `${scope} ${reduction}: ${flops} FLOPs, far below the budget`);
      assert.ok(keptPerLayer(layout, g).every((k) => k >= 1));
    }
    const perLayer = keptPerLayer(layout, selectGroups(PAPER_CNN, layout, score, reduction, "groups", "per-layer"));
    assert.deepEqual(
      perLayer,
      layout.map((l) => l.count - Math.min(l.count - 1, Math.round(reduction * l.count))),
    );
    const global = selectGroups(PAPER_CNN, layout, score, reduction, "groups", "global");
    assert.equal(
      global.reduce((a, b) => a + b, 0),
      224 - Math.round(reduction * 224),
    );
  }
  // Global selection removes the lowest scores first.
  const g = selectGroups(PAPER_CNN, layout, score, 0.5, "groups", "global");
  const keptMin = Math.min(...Array.from(score).filter((_, i) => g[i] === 1));
  const removedMax = Math.max(...Array.from(score).filter((_, i) => g[i] === 0));
  assert.ok(removedMax <= keptMin);
});

test("rounding a relaxed group mask: m ≥ τ, at most k, ≥ 1 per layer, then within the FLOP budget", () => {
  const layout = groupLayout(TINY_CNN);
  const n = groupCount(layout);
  const m = Float32Array.from({ length: n }, (_, i) => [0.9, 0.2, 0.6, 0.95, 0.1, 0.7, 0.55, 0.8, 0.3, 0.3, 0.99, 0.2][i]);
  const tie = new Float32Array(n);
  const r = roundGroupMask(TINY_CNN, layout, m, { k: 5, tau: 0.5, tieScore: tie });
  // largest five ≥ 0.5: 10 (0.99), 3 (0.95), 0 (0.9), 7 (0.8), 5 (0.7); dense1 (8..11) keeps 10
  assert.deepEqual(Array.from(r), [1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 1, 0]);
  const lowM = Float32Array.from({ length: n }, (_, i) => (i < 3 ? 0.9 : 0.1));
  const r2 = roundGroupMask(TINY_CNN, layout, lowM, { k: 12, tau: 0.5, tieScore: tie });
  assert.deepEqual(keptPerLayer(layout, r2), [3, 1, 1]); // conv2 and dense1 keep their largest (first index on ties)
  const budget = groupMaskFlops(TINY_CNN, layout, new Float32Array(n).fill(1)) * 0.5;
  const r3 = roundGroupMask(TINY_CNN, layout, m, { k: 12, tau: 0, tieScore: tie, maxFlops: budget });
  assert.ok(groupMaskFlops(TINY_CNN, layout, r3) <= budget);
});

/** Euclidean projection onto C = {m ∈ [0,1]^G : Σm ≤ k}: clip(y − λ) with the smallest λ ≥ 0 that fits the budget. */
function project(y: Float64Array, k: number): Float64Array {
  const clipAt = (lambda: number) => y.map((v) => Math.min(1, Math.max(0, v - lambda)));
  const sum = (v: Float64Array) => v.reduce((a, c) => a + c, 0);
  if (sum(clipAt(0)) <= k) return clipAt(0);
  let lo = 0;
  let hi = Math.max(...y) + 1;
  for (let it = 0; it < 80; it++) {
    const mid = (lo + hi) / 2;
    if (sum(clipAt(mid)) > k) lo = mid;
    else hi = mid;
  }
  return clipAt(hi);
}

test("FW on a convex quadratic over the group polytope reaches the projected optimum (plain and with momentum)", async () => {
  // F(m) = ½ ‖m − c‖² over G = 8 groups with k_G = 3 kept: the optimum over C is the Euclidean projection of c onto C
  // (computed independently above, by bisection on the KKT multiplier), and the budget binds for this c.
  const G = 8;
  const k = 3;
  const rand = mulberry32(21);
  const c = Float64Array.from({ length: G }, () => rand() * 1.6 - 0.3);
  const oracle: FwOracle = {
    n: G,
    evaluate(m) {
      let loss = 0;
      const grad = new Float32Array(G);
      for (let g = 0; g < G; g++) {
        loss += 0.5 * (m[g] - c[g]) ** 2;
        grad[g] = m[g] - c[g];
      }
      return { loss, grad, samples: 0 };
    },
    lossAt(m) {
      let loss = 0;
      for (let g = 0; g < G; g++) loss += 0.5 * (m[g] - c[g]) ** 2;
      return loss;
    },
  };
  const optimum = project(c, k);
  assert.ok(optimum.reduce((a, v) => a + v, 0) > k - 1e-6, "test set-up: the budget should bind");
  const F = (m: ArrayLike<number>) => oracle.lossAt!(Float32Array.from(m));
  const m0 = new Float32Array(G);
  for (const run of [
    { stepSize: { kind: "line-search" as const, evaluations: 30 }, momentum: { kind: "none" as const }, iterations: 3000 },
    { stepSize: "2/(t+2)" as const, momentum: { kind: "none" as const }, iterations: 20000 },
    { stepSize: "2/(t+2)" as const, momentum: { kind: "constant" as const, beta: 0.5 }, iterations: 20000 },
  ]) {
    const { m } = await frankWolfe(oracle, m0, { k, ...run });
    const gap = F(m) - F(optimum);
    assert.ok(gap >= -1e-6 && gap < 1e-3, `${JSON.stringify(run)}: F(m_T) − F* = ${gap}`);
    const dist = Math.max(...Array.from(m, (v, g) => Math.abs(v - optimum[g])));
    assert.ok(dist < 0.03, `${JSON.stringify(run)}: max |m_T − m*| = ${dist} (m* = ${Array.from(optimum).map((v) => v.toFixed(3))})`);
  }
});

test("the structured preset: 4 methods (+ 2 FW variants) × 3 FLOP targets × budgets 2, 10 × 3 seeds plus the dense baselines; the shipped presets' keys are unchanged", () => {
  const structured = validateConfig(PRESETS.structured);
  const runs = planRuns(structured);
  assert.equal(runs.length, (6 * 3 + 2) * 2 * 3);
  assert.deepEqual([...new Set(runs.map((r) => r.sparsity))].sort(), [0.25, 0.5, 0.75, null]);
  const surgered = runs.filter((r) => r.inputs.retrain?.surgered);
  assert.equal(surgered.length, 6 * 3 * 2 * 3, "exactly the structured runs retrain a surgered model");
  assert.ok(surgered.every((r) => r.method.startsWith("structured-") && r.inputs.retrain?.masked === false));
  // Adding a retraining mode must leave every other run's key alone: each run of the shipped presets is found.
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-structured-keys-"));
  for (const preset of ["paper", "tradeoff"] as const) {
    const plans = planRuns(validateConfig(PRESETS[preset]));
    const missing = plans.filter((p) => readRecord(empty, p.key).kind !== "ok");
    assert.equal(missing.length, 0, `${preset}: ${missing.length} of ${plans.length} runs not among the shipped records`);
  }
  fs.rmSync(empty, { recursive: true });
  assert.throws(
    () =>
      resolveConfig({ preset: "structured", methods: ["structured-fw", { name: "m", method: "structured-magnitude", match: { sparsity: "structured-fw" } }] }),
    /matching sparsity needs two methods that prune weights/,
  );
});

test("a structured sweep end to end: surgered records with FLOPs within the target, measured speeds, no tensor left behind", async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-structured-sweep-"));
  const config = resolveConfig({
    preset: "structured",
    name: "tiny-structured",
    seeds: [0],
    budgets: [1],
    pretrain: { epochs: 1 },
    dataset: { name: "mnist-embedded", limitTrain: 300, limitTest: 100 },
    methods: [
      "dense-retrained",
      "structured-magnitude",
      { name: "sfwm-groups", method: "structured-fw-momentum", params: { iterations: 4, batchSize: 32, budget: "groups", start: "uniform" } },
    ],
    sparsity: [0.5],
    inference: { repeats: 1, batchSize: 1000 },
  });
  await sweep(config, { dataDir, workers: 0 });
  const before = tf.memory().numTensors;
  for (const plan of planRuns(config)) {
    const record = await computeRecord(plan, dataDir, config);
    assert.equal(record.status, "ok", record.reason);
    const m = record.metrics!;
    if (plan.method === "dense-retrained") {
      assert.equal(m.surgered, undefined);
      continue;
    }
    const s = m.surgered!;
    assert.ok(s, `${plan.label}: surgered metrics`);
    assert.equal(m.flops.remaining, s.flops, "the weight-level FLOP count of the unsurgered weights is the surgered model's");
    assert.equal(m.flops.dense, s.denseFlops);
    assert.ok(s.params < s.denseParams);
    assert.ok(s.batch.speedup > 0 && s.batchOne.speedup > 0 && s.batchOne.samples === 100);
    if (plan.label === "structured-magnitude") assert.ok(s.flops <= 0.5 * s.denseFlops, `${s.flops} of ${s.denseFlops} FLOPs`);
    else {
      const kept = Object.values(s.groups).reduce((n, g) => n + g.kept, 0);
      assert.ok(kept <= 224 - Math.round(0.5 * 224), `groups budget: ${kept} kept`);
      assert.equal(record.history?.length, 4);
    }
    assert.ok(m.prunedAccuracy !== undefined && m.testAccuracy > 0);
  }
  assert.equal(tf.memory().numTensors, before);
  fs.rmSync(dataDir, { recursive: true });
});
