import { test } from "node:test";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/backend";
import { loadDataset } from "../src/datasets";
import { asGraph } from "../src/graph";
import { csrFromDense } from "../src/inference/csr";
import { decodeSparseWeights, encodeSparseWeights } from "../src/inference/export";
import { calibrationNoise } from "../src/inference/program";
import { CompileOptions, compileSparseModel } from "../src/inference/sparse-model";
import { ModelSpec, PAPER_CNN, createModel, disposeModel, getWeights } from "../src/model";
import { magnitudeMask } from "../src/prune/magnitude";
import { train } from "../src/train";
import { denseLogits, pruned, relativeError } from "./logits";

const digits = loadDataset({ name: "mnist-embedded", limitTrain: 512, limitTest: 1000 });

function expectSameLogits(label: string, spec: ModelSpec, weights: Record<string, Float32Array>, x: tf.Tensor4D, opts: CompileOptions) {
  const model = compileSparseModel(spec, weights, opts);
  try {
    const logits = tf.tidy(() => model.predict(x).dataSync() as Float32Array);
    const expected = denseLogits(spec, weights, x);
    assert.equal(logits.length, expected.length, `${label}: logits`);
    const err = relativeError(logits, expected);
    assert.ok(err <= 1e-5, `${label}: max relative error ${err.toExponential(2)}`);
    return model.layers;
  } finally {
    model.dispose();
  }
}

test("CSR over outputs: rows, ascending input positions, exact zeros left out (hand-computed)", () => {
  // kernel [inputs 3, outputs 2] = [[1, 0], [0, 2], [3, 4]]; input i read at element 10 − i
  const csr = csrFromDense(new Float32Array([1, 0, 0, 2, 3, 4]), 3, 2, (i) => 10 - i);
  assert.deepEqual([...csr.rowPtr], [0, 2, 4]);
  assert.deepEqual([...csr.idx], [8, 10, 8, 9]);
  assert.deepEqual([...csr.vals], [3, 1, 4, 2]);
  assert.throws(() => csrFromDense(new Float32Array(5), 3, 2, (i) => i), /expected 3×2/);
});

test("the sparse paper CNN gives the dense forward's logits on real digits (sparsity 0 to 0.99, batch 1, 13 and 1000, every path)", async () => {
  await initBackend("wasm", { quiet: true });
  const model = createModel(PAPER_CNN, 7);
  await train(model, digits.train, { epochs: 1, seed: 7 });
  const trained = getWeights(model);
  disposeModel(model);
  const all = tf.tensor4d(digits.test.images, [digits.test.count, 28, 28, 1]);
  try {
    for (const batch of [1, 13, 1000]) {
      const x = tf.slice(all, [0, 0, 0, 0], [batch, -1, -1, -1]) as tf.Tensor4D;
      for (const sparsity of [0, 0.5, 0.9, 0.95, 0.99]) {
        const weights = pruned(PAPER_CNN, trained, sparsity);
        const label = `sparsity ${sparsity}, batch ${batch}`;
        const layers = expectSameLogits(`${label}, all sparse`, PAPER_CNN, weights, x, { paths: "sparse" });
        assert.ok(layers.every((l) => l.path === "sparse"));
        if (batch !== 1000 || sparsity === 0.95) {
          // Mixed layouts: every conversion between tfjs's and the sparse kernels' layouts.
          expectSameLogits(`${label}, mixed`, PAPER_CNN, weights, x, { paths: { conv1: "dense", conv2: "sparse", dense1: "dense", dense2: "sparse" } });
          expectSameLogits(`${label}, mixed'`, PAPER_CNN, weights, x, { paths: { conv1: "sparse", conv2: "dense", dense1: "sparse", dense2: "dense" } });
          expectSameLogits(`${label}, dense`, PAPER_CNN, weights, x, { paths: "dense" });
        }
      }
      x.dispose();
    }
  } finally {
    all.dispose();
  }
});

test("each layer's path is the one calibration measured faster, and the counts of weights are the layers'", async () => {
  await initBackend("wasm", { quiet: true });
  const weights = pruned(PAPER_CNN, getWeights(createModel(PAPER_CNN, 3)), 0.9);
  const x = tf.tensor4d(digits.test.images.subarray(0, 40 * 784), [40, 28, 28, 1]);
  const layers = expectSameLogits("auto", PAPER_CNN, weights, x, { paths: "auto", calibrationBatch: 64, calibrationRepeats: 3 });
  x.dispose();
  assert.deepEqual(
    layers.map((l) => l.layer),
    ["conv1", "conv2", "dense1", "dense2"],
  );
  let zeros = 0;
  for (const l of layers) {
    assert.ok(l.denseMs !== undefined && l.sparseMs !== undefined, `${l.layer}: both paths timed`);
    const faster = (l.sparseMs as number) < (l.denseMs as number) ? "sparse" : "dense";
    if (l.sparseMs !== l.denseMs) assert.equal(l.path, faster, `${l.layer}: chose ${l.path} at dense ${l.denseMs} ms, sparse ${l.sparseMs} ms`);
    assert.equal(l.weights, weights[`${l.layer}/kernel`].length);
    zeros += l.weights - l.nonzeros;
  }
  const exact = Object.entries(weights)
    .filter(([k]) => k.endsWith("/kernel"))
    .reduce((n, [, v]) => n + v.filter((w) => w === 0).length, 0);
  assert.equal(zeros, exact);
});

test("calibration noise: in [−1, 1), one array grown and reused, the same values whatever was asked before", () => {
  const noise = calibrationNoise();
  const small = noise(1000).slice();
  assert.ok(small.every((v) => v >= -1 && v < 1) && new Set(small).size > 990, "spread over [−1, 1)");
  const large = noise(5000);
  assert.deepEqual(large.subarray(0, 1000), small, "grown: the first values unchanged");
  assert.equal(noise(3000).buffer, large.buffer, "a shorter request reuses the array");
  assert.deepEqual(calibrationNoise()(1000), small, "seeded: every calibration sees the same noise");
});

test("other specs: padded and strided convolutions, a 3×3 pool and a conv without a pool fall back where they must and still agree", async () => {
  await initBackend("wasm", { quiet: true });
  const spec: ModelSpec = {
    name: "odd",
    inputShape: [12, 11, 3],
    layers: [
      { type: "conv2d", filters: 8, kernelSize: 3, activation: "relu" },
      { type: "conv2d", filters: 6, kernelSize: 3, padding: "same" },
      { type: "maxpool", size: 3 },
      { type: "conv2d", filters: 4, kernelSize: 2, activation: "relu" },
      { type: "conv2d", filters: 5, kernelSize: 2, stride: 2 },
      { type: "flatten" },
      { type: "dense", units: 7, activation: "relu" },
      { type: "dense", units: 3 },
    ],
  };
  const weights = pruned(spec, getWeights(createModel(spec, 5)), 0.6);
  for (const [name, v] of Object.entries(weights)) if (name.endsWith("/bias")) v.forEach((_, i) => (v[i] = 0.1 * (i - 2)));
  const x = tf.randomUniform([21, 12, 11, 3], 0, 1, "float32", 9) as tf.Tensor4D;
  const layers = expectSameLogits("odd spec, sparse where possible", spec, weights, x, { paths: "sparse" });
  assert.deepEqual(
    layers.map((l) => l.path),
    ["sparse", "dense", "sparse", "dense", "sparse", "sparse"],
  );
  expectSameLogits("odd spec, auto", spec, weights, x, { calibrationBatch: 16, calibrationRepeats: 1 });
  assert.throws(() => compileSparseModel(spec, weights, { paths: { conv2: "sparse" } }), /conv2.*valid stride-1/);
  assert.throws(() => compileSparseModel(spec, weights, { paths: { conv9: "sparse" } }), /paths\["conv9"\]: no such layer/);
  assert.throws(() => compileSparseModel(spec, { ...weights, "dense2/kernel": new Float32Array(3) }), /weights\["dense2\/kernel"\]: expected 21 values, got 3/);
  x.dispose();
});

test("a mask given at compile time prunes like zeroed weights; the cpu backend runs the dense path only", async () => {
  await initBackend("wasm", { quiet: true });
  const weights = getWeights(createModel(PAPER_CNN, 11));
  const mask = magnitudeMask(PAPER_CNN, weights, 0.9, "global");
  const x = tf.tensor4d(digits.test.images.subarray(0, 9 * 784), [9, 28, 28, 1]);
  const layers = expectSameLogits("mask", PAPER_CNN, pruned(PAPER_CNN, weights, 0.9), x, { paths: "sparse" });
  const masked = compileSparseModel(PAPER_CNN, weights, { mask, paths: "sparse" });
  assert.deepEqual(masked.layers, layers);
  const logits = tf.tidy(() => masked.predict(x).dataSync() as Float32Array);
  assert.ok(relativeError(logits, denseLogits(PAPER_CNN, pruned(PAPER_CNN, weights, 0.9), x)) <= 1e-5);
  masked.dispose();
  x.dispose();
  await initBackend("cpu", { quiet: true });
  try {
    assert.throws(() => compileSparseModel(PAPER_CNN, weights, { paths: "sparse" }), /wasm backend/);
    const onCpu = compileSparseModel(PAPER_CNN, weights, {});
    assert.ok(onCpu.layers.every((l) => l.path === "dense"));
    onCpu.dispose();
  } finally {
    await initBackend("wasm", { quiet: true });
  }
});

test("the sparse file gives back every weight exactly (gaps past 255 included) and refuses damaged bytes, naming what is wrong", () => {
  const weights = pruned(PAPER_CNN, getWeights(createModel(PAPER_CNN, 13)), 0.98);
  weights["dense1/kernel"].fill(0, 1000, 5000); // a run of 4,000 zeros: filler entries
  weights["dense2/bias"][3] = -1.5;
  const bytes = encodeSparseWeights(PAPER_CNN, weights);
  const back = decodeSparseWeights(bytes);
  assert.deepEqual(back.graph, asGraph(PAPER_CNN));
  for (const [name, v] of Object.entries(weights))
    assert.ok(
      back.weights[name].every((x, i) => x === v[i]),
      name,
    );
  const nonzeros = Object.entries(weights)
    .filter(([k]) => k.endsWith("/kernel"))
    .reduce((n, [, v]) => n + v.filter((x) => x !== 0).length, 0);
  assert.ok(bytes.length < 5 * nonzeros + 4 * (32 + 64 + 128 + 10) + 4096, `${bytes.length} bytes for ${nonzeros} non-zeros`);
  assert.throws(() => decodeSparseWeights(bytes.subarray(0, bytes.length - 8), "m.fwsparse"), /m\.fwsparse: does not match its SHA-256/);
  const flipped = bytes.slice();
  flipped[flipped.length - 100] ^= 1;
  assert.throws(() => decodeSparseWeights(flipped), /SHA-256/);
  assert.throws(() => decodeSparseWeights(Buffer.from("not a model at all")), /not an fwprune sparse model file/);
  assert.throws(() => encodeSparseWeights(PAPER_CNN, { ...weights, "conv1/bias": new Float32Array(3) }), /weights\["conv1\/bias"\]: expected 32 values, got 3/);
});

const CLI = path.join(__dirname, "..", "dist", "cli.js");

test(
  "fwprune bench --sparse --json: one line per sparsity × batch with both speeds, the FLOP bound and the per-layer split; bad flags refused first",
  { skip: !fs.existsSync(CLI) && "dist/cli.js not built" },
  () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-bench-sparse-"));
    try {
      const run = (...args: string[]) =>
        spawnSync(process.execPath, [CLI, "bench", "--sparse", "--json", "--data-dir", dir, ...args], {
          encoding: "utf8",
          env: { ...process.env, FWPRUNE_QUIET: "1" },
        });
      const bad = run("--sparsities", "0.9,1.5");
      assert.notEqual(bad.status, 0);
      assert.match(bad.stderr, /--sparsities: expected numbers in \[0, 1\), got 1\.5/);
      assert.ok(!fs.existsSync(path.join(dir, "checkpoints")), "nothing computed before the flags are checked");
      const ok = run("--sparsities", "0.5,0.9", "--batches", "40,1", "--rounds", "3", "--budget", "1");
      assert.equal(ok.status, 0, ok.stderr);
      const lines = ok.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Record<string, unknown> & { layers: Record<string, unknown>[] });
      assert.deepEqual(
        lines.map((l) => [l.sparsity, l.batch]),
        [
          [0.5, 40],
          [0.5, 1],
          [0.9, 40],
          [0.9, 1],
        ],
      );
      for (const l of lines) {
        for (const field of ["denseSamplesPerSec", "sparseSamplesPerSec", "speedup", "flopsSpeedup"])
          assert.ok((l[field] as number) > 0, `${field} of ${JSON.stringify(l)}`);
        assert.ok((l.maxRelativeError as number) <= 1e-5);
        assert.deepEqual(
          l.layers.map((y) => y.layer),
          ["conv1", "conv2", "dense1", "dense2"],
        );
        assert.ok(l.layers.every((y) => (y.flopBoundMs as number) >= 0 && ["dense", "sparse"].includes(y.path as string)));
      }
      assert.ok((lines[2].flopsSpeedup as number) > (lines[0].flopsSpeedup as number), "sparser, higher bound");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);
