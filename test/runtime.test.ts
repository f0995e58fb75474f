// fwprune/runtime in Node on the paper CNN family: the standalone runtime against tfjs's dense forward (model.ts) and
// the Node sparse model, on real test digits; strided and padded convolutions; the .fwsparse digest over the whole
// file; malformed headers refused naming the field; the runtime free of Node built-ins and tfjs (esbuild bundles it
// for the browser). Imported graphs (residual, depthwise-separable, ...): test/runtime-graph.test.ts.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { createHash } from "crypto";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { build } from "esbuild";
import { initBackend } from "../src/backend";
import { loadDataset } from "../src/datasets";
import { asGraph, serializeGraph } from "../src/graph";
import { decodeSparseWeights, encodeSparseWeights } from "../src/inference/export";
import { compileSparseModel } from "../src/inference/sparse-model";
import { ModelSpec, PAPER_CNN, createModel, getWeights, paramShapes } from "../src/model";
import { loadSparseModel } from "../src/runtime";
import { SparseModelGraph, encodeSparseFile } from "../src/runtime/format";
import { denseLogits, pruned, relativeError } from "./logits";

const digits = loadDataset({ name: "mnist-embedded", limitTrain: 64, limitTest: 300 });

test("the runtime's logits equal tfjs's dense forward and the Node sparse model on real test digits (every batch size up to a chunk and past it)", async () => {
  await initBackend("wasm", { quiet: true });
  const weights = pruned(PAPER_CNN, getWeights(createModel(PAPER_CNN, 3)), 0.95);
  const model = await loadSparseModel(encodeSparseWeights(PAPER_CNN, weights));
  assert.deepEqual(
    model.layers.map((l) => [l.name, l.kind, l.path, l.fusedInto ?? ""]),
    [
      ["conv1", "conv2d", "sparse", ""],
      ["maxpool1", "max-pool", "none", "conv1"],
      ["conv2", "conv2d", "sparse", ""],
      ["maxpool3", "max-pool", "none", "conv2"],
      ["flatten4", "flatten", "none", ""],
      ["dense1", "dense", "sparse", ""],
      ["dense2", "dense", "sparse", ""],
    ],
  );
  assert.equal(model.singleExample, true);
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
  const compiled = compileSparseModel(PAPER_CNN, weights, { paths: "sparse" });
  try {
    const node = tf.tidy(() => compiled.predict(tf.tensor4d(digits.test.images, [300, 28, 28, 1])).dataSync() as Float32Array);
    assert.ok(relativeError(model.predict(digits.test.images, 300), node) <= 1e-5);
  } finally {
    compiled.dispose();
  }
  assert.throws(() => model.predict(digits.test.images.subarray(0, 783), 1), /predict: expected a Float32Array of 1 × 28×28×1 = 784 values, got 783/);
});

test("strided and same-padded convolutions (through stride-phase planes), a 3×3 pool and a pool not after a conv match tfjs", async () => {
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
    ["sparse", "sparse", "none", "sparse", "none", "none", "sparse"],
  );
  assert.equal(model.singleExample, false, "strided and padded convolutions run in tiles only");
  for (const n of [1, 11]) {
    const images = digits.test.images.subarray(0, n * 784);
    const err = relativeError(model.predict(images, n), denseLogits(spec, weights, images, n));
    assert.ok(err <= 1e-5, `batch ${n}: max relative error ${err.toExponential(2)}`);
  }
});

test("one example alone (batches of 1 and 9) and batches under 8 (one tile, partly empty): a conv without a pool, odd widths and a 3×3 pool match tfjs and give the floats of a full tile", async () => {
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
  assert.equal(model.singleExample, true);
  const images = digits.test.images.subarray(0, 16 * 784);
  const tiles = model.predict(images, 16);
  for (const n of [1, 3, 7, 9]) {
    const x = images.subarray(0, n * 784);
    const logits = model.predict(x, n);
    const err = relativeError(logits, denseLogits(spec, weights, x, n));
    assert.ok(err <= 1e-5, `batch ${n}: max relative error ${err.toExponential(2)}`);
    assert.deepEqual(Array.from(logits), Array.from(tiles.subarray(0, n * 3)), `batch ${n} vs the same images in full tiles`);
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
  assert.deepEqual(back.graph, asGraph(TINY));
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
        /tiny\.fwsparse: (does not match its SHA-256|not an fwprune sparse model file)/,
        `byte ${i} bit ${bit}`,
      );
    }
    const flipped = bytes.slice();
    flipped[i] ^= 0x10;
    await assert.rejects(
      loadSparseModel(flipped, { source: "tiny.fwsparse" }),
      /tiny\.fwsparse: (does not match its SHA-256|not an fwprune sparse model file)/,
      `byte ${i}`,
    );
  }
  await assert.rejects(loadSparseModel(bytes.subarray(0, bytes.length - 1)), /does not match its SHA-256/);
  assert.throws(() => decodeSparseWeights(new TextEncoder().encode("FWSPARS1 an old file")), /a format-1 sparse file .* export the model again/);
  // formats 2 (the paper CNN's chain of layers) and 3 (the same header fields and payload in a framing of its own) are
  // refused, saying what to do
  for (const format of [2, 3]) {
    const old = bytes.slice();
    old.set(new TextEncoder().encode(`FWSPARS${format}`));
    const expected = new RegExp(`old\\.fwsparse: a format-${format} sparse file .* write it again with this fwprune \\(fwprune export or fwprune prune\\)`);
    assert.throws(() => decodeSparseWeights(old, "old.fwsparse"), expected);
    await assert.rejects(loadSparseModel(old, { source: "old.fwsparse" }), expected);
  }
});

test("a malformed header is refused before any work, naming the node and the field (by the runtime and by the Node decoder alike)", async () => {
  const graph = serializeGraph(asGraph(TINY));
  const weights = getWeights(createModel(TINY, 1));
  const tensors = paramShapes(TINY).map((p) => ({ name: p.name, shape: p.shape, values: weights[p.name], sparse: p.prunable }));
  const encode = (g: SparseModelGraph, t = tensors) => encodeSparseFile(g, t, (b) => new Uint8Array(createHash("sha256").update(b).digest()));
  const withNode = (i: number, change: (n: Record<string, unknown>) => object) =>
    encode({ ...graph, nodes: graph.nodes.map((n, j) => (j === i ? change(n as unknown as Record<string, unknown>) : n)) as SparseModelGraph["nodes"] });
  const cases: [Uint8Array, RegExp][] = [
    [withNode(2, (n) => ({ ...n, kind: "lstm" })), /model\.nodes\[2\] \("flatten1", lstm\): kind "lstm" is not one the runtime runs \(input, conv2d, /],
    [withNode(3, (n) => ({ ...n, inputs: ["dense1"] })), /model\.nodes\[3\] \("dense1", dense\): inputs: "dense1" is not an earlier node/],
    [withNode(2, (n) => ({ ...n, inputs: ["dense1"] })), /model\.nodes\[2\] \("flatten1", flatten\): inputs: "dense1" is not an earlier node/],
    [
      withNode(1, (n) => ({ ...n, config: { ...(n.config as object), kernelSize: [2, 2] } })),
      /model\.nodes\[1\] \("conv1", conv2d\): tensor "conv1\/kernel": shape \[3,3,1,2\]; expected \[2,2,1,2\]/,
    ],
    [
      withNode(1, (n) => ({ ...n, config: { ...(n.config as object), kernelSize: [3, 0] } })),
      /"conv1", conv2d\): config\.kernelSize: \[3,0\]; expected two positive integers/,
    ],
    [
      withNode(1, (n) => ({ ...n, config: { ...(n.config as object), activation: "gelu" } })),
      /"conv1", conv2d\): config\.activation: "gelu"; expected one of "relu", /,
    ],
    [
      withNode(1, (n) => ({ ...n, config: { ...(n.config as object), padding: "full" } })),
      /"conv1", conv2d\): config\.padding: "full"; expected one of "valid", "same"/,
    ],
    [
      withNode(3, (n) => ({ ...n, config: { ...(n.config as object), units: 4 } })),
      /"dense1", dense\): tensor "dense1\/kernel": shape \[18,3\]; expected \[18,4\]/,
    ],
    [
      withNode(0, (n) => ({ ...n, config: { shape: [5, 5, -1] } })),
      /model\.nodes\[0\] \("input", input\): config\.shape: \[5,5,-1\]; expected positive integers/,
    ],
    [encode(graph, tensors.slice(1)), /"conv1", conv2d\): tensor "conv1\/kernel" \(its kernel\) is missing from the file/],
    [encode(graph, [...tensors, { name: "extra", shape: [1], values: new Float32Array(1), sparse: false }]), /tensor "extra": no node of the model owns it/],
  ];
  for (const [bytes, expected] of cases) {
    await assert.rejects(
      loadSparseModel(bytes, { source: "bad.fwsparse" }),
      (err: Error) => /^bad\.fwsparse: /.test(err.message) && expected.test(err.message),
    );
    assert.throws(() => decodeSparseWeights(bytes, "bad.fwsparse"), expected);
  }
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
    inputs.every((f) => f.startsWith("src/runtime/") || f.startsWith("src/kernels/") || f === "src/inference/csr.ts" || f === "src/graph/types.ts"),
    inputs.join(", "),
  );
});
