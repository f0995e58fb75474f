import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/backend";
import { toTensors } from "../src/data";
import { loadDataset } from "../src/datasets";
import { ModelSpec, createModel, disposeModel, forward, getWeights, modelFromWeights } from "../src/model";
import { deriveSeed, mulberry32, shuffledIndices } from "../src/random";
import { lossOf, train } from "../src/train";
import {
  applyMask,
  cnnMaskOracle,
  describeParams,
  getMethod,
  parseParams,
  PruneOutcome,
  FwIteration,
  RelaxedMaskSummary,
  removedCount,
  flatten,
  fullMask,
  keptCount,
  loadMask,
  magnitudeMask,
  maskFileFor,
  maskFromWeights,
  maskSparsity,
  prunableLayout,
  prune,
  methodNames,
  retrainPruned,
  saveMask,
  weightSparsity,
} from "../src/prune";

const tiny = loadDataset({ name: "mnist-embedded", limitTrain: 256, limitTest: 200 });
/** 346 prunable weights: conv 3×3×1×2 (stride 2) → pool → dense 72×4 → dense 4×10. */
const SPEC: ModelSpec = {
  name: "tiny-cnn",
  inputShape: [28, 28, 1],
  layers: [
    { type: "conv2d", filters: 2, kernelSize: 3, stride: 2, activation: "relu" },
    { type: "maxpool", size: 2 },
    { type: "flatten" },
    { type: "dense", units: 4, activation: "relu" },
    { type: "dense", units: 10 },
  ],
};
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-prune-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

async function trainedTinyModel(seed = 0) {
  await initBackend("cpu", { quiet: true });
  const model = createModel(SPEC, seed);
  await train(model, tiny.train, { epochs: 1, batchSize: 32, lr: 0.05, seed });
  return model;
}

for (const loss of ["crossentropy", "mse"] as const) {
  test(`mask gradient = θ ⊙ ∇_w L(θ ⊙ m), checked by finite differences and by tf.grads on the masked model (${loss})`, async () => {
    const model = await trainedTinyModel();
    const oracle = cnnMaskOracle(model, tiny.train, { batchSize: 32, seed: 5, loss });
    try {
      const rand = mulberry32(9);
      const m = Float32Array.from({ length: oracle.n }, () => 0.2 + 0.8 * rand());
      const { grad, loss: value, samples } = oracle.evaluate(m, 3);
      assert.equal(samples, 32);
      assert.equal(grad.length, 346);

      // finite differences of F(m) = L(θ ⊙ m) on the same minibatch (central, h = 1e-2; float32 arithmetic)
      const h = 1e-2;
      let bad = 0;
      let maxGrad = 0;
      for (let i = 0; i < oracle.n; i++) {
        const plus = m.slice();
        const minus = m.slice();
        plus[i] += h;
        minus[i] -= h;
        const fd = (oracle.lossAt(plus) - oracle.lossAt(minus)) / (2 * h);
        maxGrad = Math.max(maxGrad, Math.abs(grad[i]));
        if (Math.abs(fd - grad[i]) > 2e-4 + 0.02 * Math.abs(grad[i])) bad++;
      }
      assert.ok(maxGrad > 1e-3, "the gradient should not be trivially zero");
      if (process.env.FWPRUNE_DEBUG) console.log({ bad, maxGrad });
      assert.ok(bad <= 3, `${bad} of ${oracle.n} coordinates disagree with finite differences (ReLU/max-pool kinks allow a few)`);
      assert.ok(Math.abs(oracle.lossAt(m) - value) < 1e-6);

      // independently: the gradient of the loss w.r.t. the weights of a model whose weights ARE θ ⊙ m, times θ
      const layout = prunableLayout(SPEC);
      const weights = getWeights(model);
      const theta = flatten(weights, layout);
      const masked = { ...weights };
      for (const e of layout) masked[e.name] = theta.subarray(e.offset, e.offset + e.length).map((w, j) => w * m[e.offset + j]);
      const maskedModel = modelFromWeights(SPEC, masked);
      const batch = shuffledIndices(tiny.train.count, deriveSeed(5, "fw/minibatch/0")).subarray(3 * 32, 4 * 32);
      const data = toTensors(tiny.train);
      const x = tf.gather(data.x, tf.tensor1d(batch, "int32")) as tf.Tensor4D;
      const y = tf.gather(data.y, tf.tensor1d(batch, "int32")) as tf.Tensor1D;
      const names = layout.map((e) => e.name);
      const { grads } = tf.variableGrads(
        () => lossOf(forward(SPEC, maskedModel.params, x), y, loss),
        names.map((n) => maskedModel.params[n]),
      );
      for (const e of layout) {
        const gw = grads[maskedModel.params[e.name].name].dataSync();
        for (let j = 0; j < e.length; j++) {
          const expected = theta[e.offset + j] * gw[j];
          assert.ok(Math.abs(expected - grad[e.offset + j]) <= 1e-6 + 1e-4 * Math.abs(expected), `${e.name}[${j}]: ${grad[e.offset + j]} vs ${expected}`);
        }
      }
    } finally {
      oracle.dispose();
    }
  });
}

for (const backend of ["cpu", "wasm"] as const) {
  test(`the mask gradient read into a given array: the bits of a fresh one (${backend})`, async () => {
    await initBackend(backend, { quiet: true });
    const model = createModel(SPEC, 4);
    const oracle = cnnMaskOracle(model, tiny.train, { batchSize: 32, seed: 5, loss: "crossentropy" });
    try {
      const m = Float32Array.from({ length: oracle.n }, (_, i) => (i % 3) / 2);
      const fresh = oracle.evaluate(m, 2);
      const into = new Float32Array(oracle.n).fill(NaN);
      const read = oracle.evaluate(m, 2, into);
      assert.equal(read.grad, into, "the gradient is the array given");
      assert.deepEqual(into, fresh.grad);
      assert.equal(read.loss, fresh.loss);
      assert.ok(fresh.grad.some((g) => g !== 0));
    } finally {
      oracle.dispose();
      disposeModel(model);
    }
  });
}

test("masks: full, from weights, apply (fold), sparsity on weights and masks, save/load beside a checkpoint", async () => {
  const model = await trainedTinyModel();
  const full = fullMask(SPEC);
  assert.equal(maskSparsity(full).global, 0);
  assert.equal(weightSparsity(model).global, 0);
  const mask = magnitudeMask(SPEC, getWeights(model), 0.75);
  const report = maskSparsity(mask);
  assert.equal(report.zeros, Math.round(0.75 * 346));
  assert.equal(report.total, 346);
  const pruned = applyMask(model, mask);
  const measured = weightSparsity(pruned);
  assert.deepEqual(measured, report);
  assert.deepEqual(maskFromWeights(SPEC, getWeights(pruned)), mask);
  assert.deepEqual(getWeights(pruned)["dense1/bias"], getWeights(model)["dense1/bias"], "biases are never masked");
  const file = maskFileFor(path.join(tmp, "ckpt-e2.bin"));
  await saveMask(file, mask, { checkpoint: "ckpt-e2", method: "magnitude" }, { sparsity: 0.75 });
  const loaded = loadMask(file, { checkpoint: "ckpt-e2" });
  assert.deepEqual(loaded.mask, mask);
  assert.deepEqual(loaded.meta, { sparsity: 0.75 });
  assert.throws(() => loadMask(file, { checkpoint: "ckpt-e3" }), /says it is the mask of checkpoint "ckpt-e2"; expected "ckpt-e3"/);
  await assert.rejects(() => saveMask(file, { "dense2/kernel": Float32Array.from([0.5]) }), /expected 0 or 1/);
  fs.writeFileSync(path.join(tmp, "bad.mask"), "nope");
  assert.throws(() => loadMask(path.join(tmp, "bad.mask")), /not an fwprune mask file/);
  assert.throws(() => applyMask(model, { "dense9/kernel": new Float32Array(3) }), /dense9\/kernel/);
});

test("methods: magnitude, random, fw and fw-momentum through one interface; kept count k respected; β = 0 equals fw exactly", async () => {
  assert.deepEqual(methodNames().slice(0, 6), ["dense", "dense-retrained", "magnitude", "random", "fw", "fw-momentum"]);
  const model = await trainedTinyModel();
  const n = 346;
  const k = keptCount(n, 0.8);
  const ctx = { train: tiny.train, seed: 0, target: 0.8 };
  const mag = await prune(model, "magnitude", {}, ctx);
  assert.equal(maskSparsity(mag.mask).zeros, n - k);
  assert.equal(mag.samplesUsed, 0);
  const calls: number[] = [];
  const fw = await prune(model, "fw", { iterations: 12, batchSize: 32 }, { ...ctx, progress: (done, total) => void calls.push(done / total) });
  const history = (r: PruneOutcome) => r.history as FwIteration[];
  assert.equal(calls.length, 12);
  assert.equal(calls[11], 1);
  assert.equal(history(fw).length, 12);
  assert.equal(fw.samplesUsed, 12 * 32);
  assert.ok(maskSparsity(fw.mask).zeros >= n - k, "rounding keeps at most k");
  assert.ok(history(fw).every((h) => h.vertexSize <= k && Number.isFinite(h.gap) && Number.isFinite(h.loss) && h.stepSize === 0.02));
  const relaxed = fw.details?.relaxedMask as RelaxedMaskSummary;
  assert.equal(relaxed.kept, n - maskSparsity(fw.mask).zeros);
  assert.equal(relaxed.zeros + relaxed.bins.reduce((a, b) => a + b.count, 0), n, "every entry of m_T is counted once");
  const beta0 = await prune(model, "fw-momentum", { iterations: 12, batchSize: 32, momentum: { kind: "constant", beta: 0 } }, ctx);
  assert.deepEqual(beta0.mask, fw.mask);
  assert.deepEqual(beta0.history, fw.history);
  const fwm = await prune(model, "fw-momentum", { iterations: 12, batchSize: 32 }, ctx);
  assert.equal(history(fwm)[3].beta, 0.9);
  assert.notDeepEqual(fwm.history, fw.history, "β = 0.9 changes the path");
  const again = await prune(model, "fw-momentum", { iterations: 12, batchSize: 32 }, ctx);
  assert.deepEqual(again.mask, fwm.mask, "same seed, same mask");
  const sampled = await prune(model, "fw", { iterations: 4, batchSize: 32, lmoSampleFraction: 0.1, stepSize: "line-search", loss: "mse" }, ctx);
  assert.ok(history(sampled).every((h) => h.vertexSize <= Math.round(0.1 * n)));

  assert.deepEqual(describeParams(getMethod("fw-momentum"), parseParams(getMethod("fw-momentum"))), {
    iterations: 200,
    batchSize: 128,
    stepSize: { kind: "constant", gamma: 0.02 },
    momentum: { kind: "constant", beta: 0.9 },
    tau: 0.5,
    lmoSampleFraction: 1,
    loss: "crossentropy",
  });
  const halving = (t: number) => 0.5 ** t;
  assert.deepEqual(describeParams(getMethod("fw"), parseParams(getMethod("fw"), { stepSize: { name: "halving", fn: halving } })).stepSize, {
    kind: "custom",
    name: "halving",
    source: String(halving),
  });
  await assert.rejects(prune(model, "fw", { iterationz: 3 }, ctx), /Unrecognized key\(s\) in object: 'iterationz'/);
  await assert.rejects(prune(model, "nope", {}, ctx), /method "nope" is not registered/);
  await assert.rejects(prune(model, "dense", {}, ctx), /method "dense" does not prune/);
});

test("random: a seeded, uniformly random global mask removing exactly round(s·n) weights", async () => {
  const model = await trainedTinyModel();
  const n = 346;
  const ctx = { train: tiny.train, seed: 3, target: 0.5 };
  const a = await prune(model, "random", {}, ctx);
  assert.equal(maskSparsity(a.mask).zeros, removedCount(n, 0.5));
  assert.deepEqual((await prune(model, "random", {}, ctx)).mask, a.mask, "same seed, same mask");
  assert.notDeepEqual((await prune(model, "random", {}, { ...ctx, seed: 4 })).mask, a.mask, "another seed, another mask");
  // Uniform: over 200 seeds, each weight is removed about half the time (binomial sd 0.035 per weight).
  const removed = new Float64Array(n);
  const layout = prunableLayout(SPEC);
  for (let seed = 0; seed < 200; seed++) {
    const flat = flatten((await prune(model, "random", {}, { ...ctx, seed })).mask, layout);
    flat.forEach((v, i) => (removed[i] += v === 0 ? 1 / 200 : 0));
  }
  const mean = removed.reduce((x, y) => x + y, 0) / n;
  assert.ok(Math.abs(mean - 0.5) < 1e-9, `exactly half removed on average, got ${mean}`);
  assert.ok(
    removed.every((f) => f > 0.3 && f < 0.7),
    `every weight removed in 30-70% of draws: ${Math.min(...removed)}..${Math.max(...removed)}`,
  );
});

test("masked retraining keeps pruned weights exactly zero under SGD momentum; regrow lets them come back", async () => {
  const model = await trainedTinyModel();
  const mask = magnitudeMask(SPEC, getWeights(model), 0.7);
  const zeros = maskSparsity(mask).zeros;
  const held = await retrainPruned(model, mask, tiny.train, { seed: 1, epochs: 2, batchSize: 32 });
  assert.equal(held.training.samples, 512);
  assert.ok(held.sparsity.zeros >= zeros);
  const w = getWeights(held.model);
  for (const [name, m] of Object.entries(mask))
    for (let i = 0; i < m.length; i++) if (m[i] === 0) assert.ok(w[name][i] === 0, `${name}[${i}] came back as ${w[name][i]}`);
  assert.ok(held.training.epochLosses.every(Number.isFinite));
  const regrown = await retrainPruned(model, mask, tiny.train, { seed: 1, epochs: 2, batchSize: 32, regrow: true });
  assert.ok(regrown.sparsity.zeros < zeros / 2, `regrow: ${regrown.sparsity.zeros} zeros remain of ${zeros}`);
  assert.equal(weightSparsity(model).zeros, 0, "the checkpoint itself is untouched");
});
