// fwprune/runtime in Node: the standalone runtime against tfjs's dense forward (model.ts) and the Node sparse model,
// on real test digits; its dense kernels on layers the sparse ones do not cover; the .fwsparse digest over the whole
// file; the runtime free of Node built-ins and tfjs (esbuild bundles it for the browser).
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { createHash } from "crypto";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { build } from "esbuild";
import { initBackend } from "../src/backend";
import { loadDataset } from "../src/datasets";
import { decodeSparseWeights, encodeSparseWeights, sparseGraphOfSpec, specOfSparseGraph } from "../src/inference/export";
import { compileSparseModel } from "../src/inference/sparse-model";
import { ModelSpec, PAPER_CNN, createModel, getWeights, paramShapes } from "../src/model";
import { loadSparseModel } from "../src/runtime";
import { ModelGraph, encodeSparseFile } from "../src/runtime/format";
import { denseLogits, pruned, relativeError } from "./logits";

const digits = loadDataset({ name: "mnist-embedded", limitTrain: 64, limitTest: 300 });

test("the runtime's logits equal tfjs's dense forward and the Node sparse model on real test digits (every batch size up to a chunk and past it)", async () => {
  await initBackend("wasm", { quiet: true });
  const weights = pruned(PAPER_CNN, getWeights(createModel(PAPER_CNN, 3)), 0.95);
  const model = await loadSparseModel(encodeSparseWeights(PAPER_CNN, weights));
  assert.deepEqual(
    model.layers.map((l) => [l.name, l.path, l.fusedInto ?? ""]),
    [
      ["conv1", "sparse", ""],
      ["maxpool1", "none", "conv1"],
      ["conv2", "sparse", ""],
      ["maxpool3", "none", "conv2"],
      ["flatten4", "none", ""],
      ["dense1", "sparse", ""],
      ["dense2", "sparse", ""],
    ],
  );
  const kernels = Object.entries(weights).filter(([k]) => k.endsWith("/kernel"));
  assert.equal(
    model.layers.reduce((n, l) => n + l.nonzeros, 0),
    kernels.reduce((n, [, v]) => n + v.filter((x) => x !== 0).length, 0),
  );
  for (const n of [1, 7, 8, 9, 300]) {
    const images = digits.test.images.subarray(0, n * 784);
    const expected = denseLogits(PAPER_CNN, weights, images, n);
    const logits = model.predict(images, n);
    assert.equal(logits.length, n * 10);
    const err = relativeError(logits, expected);
    assert.ok(err <= 1e-5, `batch ${n}: max relative error ${err.toExponential(2)}`);
  }
  assert.equal(model.singleImage, true);
  const compiled = compileSparseModel(PAPER_CNN, weights, { paths: "sparse" });
  try {
    const node = tf.tidy(() => compiled.predict(tf.tensor4d(digits.test.images, [300, 28, 28, 1])).dataSync() as Float32Array);
    assert.ok(relativeError(model.predict(digits.test.images, 300), node) <= 1e-5);
  } finally {
    compiled.dispose();
  }
  assert.throws(() => model.predict(digits.test.images.subarray(0, 783), 1), /predict: expected a Float32Array of 1 × 28×28×1 = 784 values, got 783/);
});

test("layers without a sparse kernel (same padding, stride 2, a 3×3 pool, a pool not after a conv) run the dense kernels and match tfjs", async () => {
  await initBackend("wasm", { quiet: true });
  const spec: ModelSpec = {
    name: "odd-cnn",
    inputShape: [28, 28, 1],
    layers: [
      { type: "conv2d", filters: 8, kernelSize: 3, padding: "same", activation: "relu" },
      { type: "conv2d", filters: 12, kernelSize: 4, stride: 2, activation: "relu" },
      { type: "maxpool", size: 3 },
      { type: "conv2d", filters: 6, kernelSize: 2, padding: "same", stride: 2 },
      { type: "maxpool", size: 2 },
      { type: "flatten" },
      { type: "dense", units: 5 },
    ],
  };
  const weights = pruned(spec, getWeights(createModel(spec, 5)), 0.5);
  for (const [k, v] of Object.entries(weights)) if (k.endsWith("/bias")) v.forEach((_, i) => (v[i] = 0.1 * (i - 2)));
  const model = await loadSparseModel(encodeSparseWeights(spec, weights));
  assert.deepEqual(
    model.layers.map((l) => l.path),
    ["dense", "dense", "none", "dense", "none", "none", "sparse"],
  );
  assert.equal(model.singleImage, false, "no single-image path without a sparse kernel for every conv");
  for (const n of [1, 11]) {
    const images = digits.test.images.subarray(0, n * 784);
    const err = relativeError(model.predict(images, n), denseLogits(spec, weights, images, n));
    assert.ok(err <= 1e-5, `batch ${n}: max relative error ${err.toExponential(2)}`);
  }
});

test("one image at a time (batches under 8): a conv without a pool, odd widths and a 3×3 pool match tfjs, and agree with the tiles", async () => {
  await initBackend("wasm", { quiet: true });
  const spec: ModelSpec = {
    name: "single-path-cnn",
    inputShape: [28, 28, 1],
    layers: [
      { type: "conv2d", filters: 6, kernelSize: 5, activation: "relu" },
      { type: "conv2d", filters: 10, kernelSize: 2 },
      { type: "maxpool", size: 3 },
      { type: "conv2d", filters: 4, kernelSize: 3, activation: "relu" },
      { type: "maxpool", size: 2 },
      { type: "flatten" },
      { type: "dense", units: 7, activation: "relu" },
      { type: "dense", units: 3 },
    ],
  };
  const weights = pruned(spec, getWeights(createModel(spec, 8)), 0.6);
  for (const [k, v] of Object.entries(weights)) if (k.endsWith("/bias")) v.forEach((_, i) => (v[i] = 0.05 * (i - 1)));
  const model = await loadSparseModel(encodeSparseWeights(spec, weights));
  assert.equal(model.singleImage, true);
  const images = digits.test.images.subarray(0, 8 * 784);
  const tiles = model.predict(images, 8);
  for (const n of [1, 3, 7]) {
    const x = images.subarray(0, n * 784);
    const logits = model.predict(x, n);
    const err = relativeError(logits, denseLogits(spec, weights, x, n));
    assert.ok(err <= 1e-5, `batch ${n}: max relative error ${err.toExponential(2)}`);
    assert.ok(relativeError(logits, tiles.subarray(0, n * 3)) <= 1e-6, `batch ${n} vs the same images in a tile`);
  }
});

const TINY: ModelSpec = {
  name: "tiny",
  inputShape: [5, 5, 1],
  layers: [{ type: "conv2d", filters: 2, kernelSize: 3, activation: "relu" }, { type: "flatten" }, { type: "dense", units: 3 }],
};

test("the .fwsparse digest covers the whole file: every flipped bit (header included) is refused by the Node decoder, every flipped byte by the runtime", async () => {
  const weights = pruned(TINY, getWeights(createModel(TINY, 1)), 0.5);
  const bytes = encodeSparseWeights(TINY, weights);
  // From a Node Buffer at an odd offset too (what fs.readFileSync may hand over): views must not leak into the weights.
  const odd = Buffer.alloc(bytes.length + 3);
  odd.set(bytes, 3);
  const back = decodeSparseWeights(odd.subarray(3), "tiny.fwsparse");
  assert.deepEqual(sparseGraphOfSpec(back.spec), sparseGraphOfSpec(TINY));
  for (const [name, v] of Object.entries(weights))
    assert.ok(
      back.weights[name].every((x, i) => x === v[i]),
      name,
    );
  const headerEnd = 12 + new DataView(bytes.buffer, bytes.byteOffset + 8, 4).getUint32(0, true);
  assert.ok(headerEnd > 200 && bytes.length < 1500, `${bytes.length} bytes, header up to ${headerEnd}`);
  for (let i = 0; i < bytes.length; i++) {
    for (let bit = 0; bit < 8; bit++) {
      const flipped = bytes.slice();
      flipped[i] ^= 1 << bit;
      assert.throws(
        () => decodeSparseWeights(flipped, "tiny.fwsparse"),
        /tiny\.fwsparse: (the file does not match its SHA-256|not an fwprune sparse file)/,
        `byte ${i} bit ${bit}`,
      );
    }
    const flipped = bytes.slice();
    flipped[i] ^= 0x10;
    await assert.rejects(
      loadSparseModel(flipped, { source: "tiny.fwsparse" }),
      /tiny\.fwsparse: (the file does not match its SHA-256|not an fwprune sparse file)/,
      `byte ${i}`,
    );
  }
  await assert.rejects(loadSparseModel(bytes.subarray(0, bytes.length - 1)), /does not match its SHA-256/);
  assert.throws(() => decodeSparseWeights(new TextEncoder().encode("FWSPARS1 an old file")), /a format-1 sparse file .* export the model again/);
  assert.throws(() => specOfSparseGraph({ ...sparseGraphOfSpec(TINY), output: "conv1" }), /model\.output: "conv1"; expected the last node, "dense1"/);
});

test("the runtime refuses a model it cannot run, naming the node", async () => {
  const graph = sparseGraphOfSpec(TINY);
  const weights = getWeights(createModel(TINY, 1));
  const tensors = paramShapes(TINY).map((p) => ({ name: p.name, shape: p.shape, values: weights[p.name], sparse: p.prunable }));
  const encode = (g: ModelGraph) => encodeSparseFile(g, tensors, (b) => new Uint8Array(createHash("sha256").update(b).digest()));
  await assert.rejects(
    loadSparseModel(encode({ ...graph, nodes: graph.nodes.map((n, i) => (i === 1 ? { ...n, op: "softmax" } : n)) })),
    /model\.nodes\[1\] \("flatten1", softmax\): op "softmax" is not one the runtime runs \(conv2d, maxpool, flatten, dense\)/,
  );
  await assert.rejects(
    loadSparseModel(encode({ ...graph, nodes: graph.nodes.map((n, i) => (i === 2 ? { ...n, inputs: ["conv1"] } : n)) })),
    /model\.nodes\[2\] \("dense1", dense\): inputs \["conv1"\]; the runtime runs chains of nodes, so expected \["flatten1"\]/,
  );
  await assert.rejects(
    loadSparseModel(encode({ ...graph, nodes: graph.nodes.map((n, i) => (i === 0 ? { ...n, attrs: { ...n.attrs, activation: "tanh" } } : n)) })),
    /model\.nodes\[0\] \("conv1", conv2d\): attrs\.activation: "tanh"; expected "relu" or "linear"/,
  );
});

test("the runtime bundles for the browser with no Node built-in and no tfjs", async () => {
  const result = await build({
    entryPoints: [path.join(__dirname, "..", "src", "runtime", "index.ts")],
    bundle: true,
    format: "esm",
    platform: "browser",
    write: false,
    metafile: true,
    logLevel: "silent",
  });
  const inputs = Object.keys(result.metafile.inputs);
  assert.ok(
    inputs.every((f) => f.startsWith("src/runtime/") || f.startsWith("src/kernels/") || f === "src/inference/csr.ts"),
    inputs.join(", "),
  );
});
