import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/backend";
import { buildGraph, forward, graphFromLayersTopology, graphFromSpec, NodeSpec } from "../src/graph";
import { loadModel, modelFromLayersModel } from "../src/graph/load";
import { PAPER_CNN, disposeModel, getWeights } from "../src/model";
import { loadCheckpoint, saveCheckpoint } from "../src/train";
import { Saved, functionalModel, saveLayersModel, sequentialModel } from "./graph-models";

type Layer = { class_name: string; config: Record<string, unknown> };
const layersOf = (saved: Saved) => (saved.json.modelTopology as { config: { layers: Layer[] } }).config.layers;
const copy = (saved: Saved): Saved => ({ json: JSON.parse(JSON.stringify(saved.json)), weights: saved.weights });

test("an unsupported layer is refused before any work, with its class, its name and what is supported", async () => {
  await initBackend("wasm", { quiet: true });
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ name: "c", inputShape: [6, 6, 1], filters: 2, kernelSize: 3 }),
      tf.layers.leakyReLU({ name: "leaky" }),
      tf.layers.flatten({ name: "f" }),
    ],
  });
  const saved = await saveLayersModel(model);
  model.dispose();
  const tensors = tf.memory().numTensors;
  assert.throws(
    () => modelFromLayersModel(saved.json, saved.weights, "my/model.json"),
    /my\/model\.json: layer "leaky" has class "LeakyReLU".*supported: .*BatchNormalization.*Conv2D.*DepthwiseConv2D/,
  );
  assert.equal(tf.memory().numTensors, tensors);
});

test("absurd models are refused from their topology alone, naming the layer and the number; the limits can be raised", async () => {
  const saved = await saveLayersModel(sequentialModel());
  const tensors = tf.memory().numTensors;
  const huge = copy(saved);
  layersOf(huge)[0].config.filters = 5e8; // 3·2·3·5e8 = 9e9 weights in one conv kernel
  assert.throws(
    () => modelFromLayersModel(huge.json, huge.weights),
    /layer "stem" \(conv2d, node 1\).*this layer 9,000,000,000.*over the limit of 200,000,000 \(maxParams/,
  );
  const wide = copy(saved);
  layersOf(wide)[0].config.batch_input_shape = [null, 1e6, 1e6, 1e6];
  assert.throws(
    () => modelFromLayersModel(wide.json, wide.weights),
    /layer "stem_input".*input size per example \[1000000,1000000,1000000\] is 1,000,000,000,000,000,000, over the limit/,
  );
  const deep = copy(saved);
  const layers = layersOf(deep);
  for (let i = 0; i < 2000; i++) layers.splice(3, 0, { class_name: "Activation", config: { name: `a${i}`, activation: "linear" } });
  assert.throws(
    () => modelFromLayersModel(deep.json, deep.weights),
    /the layer count is 2,016, over the limit of 1,000 \(maxLayers; raise it with the option limits\.maxLayers or FWPRUNE_MAX_LAYERS\)/,
  );
  assert.equal(tf.memory().numTensors, tensors);

  assert.equal(graphFromLayersTopology(deep.json.modelTopology, "deep", { limits: { maxLayers: 3000 } }).nodes.length, 2016);
  process.env.FWPRUNE_MAX_LAYERS = "2500";
  try {
    assert.equal(graphFromLayersTopology(deep.json.modelTopology).nodes.length, 2016);
  } finally {
    delete process.env.FWPRUNE_MAX_LAYERS;
  }
});

test("a config's sequential model is bounded too, its input shape and layers named as the config names them", () => {
  const flatHead = [{ type: "flatten" as const }, { type: "dense" as const, units: 10 }];
  assert.throws(
    () => graphFromSpec({ name: "wide", inputShape: [1e6, 1e6, 1e6], layers: flatHead }),
    /^Error: model\.inputShape: .*input size per example \[1000000,1000000,1000000\].*over the limit/,
  );
  assert.throws(
    () => graphFromSpec({ name: "huge", inputShape: [2000, 2000, 1], layers: [{ type: "conv2d", filters: 4096, kernelSize: 1000 }, ...flatHead] }),
    /^Error: model\.layers\[0\] \(conv2d\): .*over the limit of 200,000,000 \(maxParams/,
  );
});

test("loadModel reads model.json and its weight files, keeps paths inside the model's folder and checks their sizes", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-graph-"));
  try {
    const tfjsModel = sequentialModel();
    const saved = await saveLayersModel(tfjsModel);
    fs.writeFileSync(path.join(dir, "weights.bin"), saved.weights);
    const file = path.join(dir, "model.json");
    fs.writeFileSync(file, JSON.stringify(saved.json));
    const model = loadModel(file);
    const expected = Object.fromEntries(tfjsModel.weights.map((w) => [w.originalName, w.read().dataSync()]));
    assert.deepEqual(getWeights(model), expected);
    disposeModel(model);
    tfjsModel.dispose();

    const escaping = copy(saved);
    escaping.json.weightsManifest[0].paths = ["../weights.bin"];
    fs.writeFileSync(file, JSON.stringify(escaping.json));
    assert.throws(() => loadModel(file), /weight path "\.\.\/weights\.bin" leaves the model's folder/);
    fs.writeFileSync(file, JSON.stringify(saved.json));
    fs.writeFileSync(path.join(dir, "weights.bin"), saved.weights.subarray(0, saved.weights.length - 4));
    assert.throws(() => loadModel(file), new RegExp(`declares ${saved.weights.length} bytes in weights\\.bin; the files hold ${saved.weights.length - 4}`));
    assert.throws(() => loadModel(path.join(dir, "missing.json")), /missing\.json: cannot read the model \(ENOENT\)/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("a checkpoint of an imported model stores its graph and gives back the same model", async () => {
  await initBackend("wasm", { quiet: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-graph-"));
  const saved = await saveLayersModel(functionalModel());
  const model = modelFromLayersModel(saved.json, saved.weights);
  try {
    await saveCheckpoint(path.join(dir, "ckpt"), model, {}, { note: 1 });
    const back = loadCheckpoint(path.join(dir, "ckpt"));
    assert.deepEqual(back.model.graph, model.graph);
    assert.equal(back.model.spec, undefined);
    assert.deepEqual(getWeights(back.model), getWeights(model));
    assert.deepEqual(back.meta, { note: 1 });
    disposeModel(back.model);
  } finally {
    disposeModel(model);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("the paper CNN's graph keeps fwprune's parameter names", () => {
  const graph = graphFromSpec(PAPER_CNN);
  assert.deepEqual(
    graph.params.map((p) => p.name),
    ["conv1/kernel", "conv1/bias", "conv2/kernel", "conv2/bias", "dense1/kernel", "dense1/bias", "dense2/kernel", "dense2/bias"],
  );
  assert.deepEqual(
    graph.nodes.map((n) => n.name),
    ["input", "conv1", "maxpool1", "conv2", "maxpool3", "flatten4", "dense1", "dense2"],
  );
  assert.equal(graph.logits, "dense2");
});

test("BN in training mode: batch statistics (biased variance) and the Keras moving-average update, by hand", async () => {
  await initBackend("wasm", { quiet: true });
  const nodes: NodeSpec[] = [
    { name: "in", kind: "input", inputs: [], config: { shape: [2] } },
    { name: "bn", kind: "batch-norm", inputs: ["in"], config: { axis: -1, momentum: 0.9, epsilon: 0.001, center: true, scale: true } },
  ];
  const graph = buildGraph("bn", nodes);
  const xs = [1, 10, 2, 20, 4, 40, 5, 50];
  const params = {
    "bn/gamma": tf.tensor1d([2, 1]),
    "bn/beta": tf.tensor1d([0.5, 0]),
    "bn/moving_mean": tf.tensor1d([1, 1]),
    "bn/moving_variance": tf.tensor1d([1, 2]),
  };
  const x = tf.tensor2d(xs, [4, 2]);
  const statUpdates: Record<string, tf.Tensor> = {};
  const y = forward(graph, params, x, { training: true, statUpdates }).dataSync();
  for (const c of [0, 1]) {
    const col = [0, 1, 2, 3].map((i) => xs[2 * i + c]);
    const mean = col.reduce((a, b) => a + b, 0) / 4;
    const variance = col.reduce((a, b) => a + (b - mean) ** 2, 0) / 4;
    const [gamma, beta, mm, mv] = [[2, 1][c], [0.5, 0][c], 1, [1, 2][c]];
    col.forEach((v, i) => assert.ok(Math.abs(y[2 * i + c] - ((gamma * (v - mean)) / Math.sqrt(variance + 0.001) + beta)) < 1e-5));
    assert.ok(Math.abs(statUpdates["bn/moving_mean"].dataSync()[c] - (0.9 * mm + 0.1 * mean)) < 1e-5);
    assert.ok(Math.abs(statUpdates["bn/moving_variance"].dataSync()[c] - (0.9 * mv + 0.1 * variance)) < 1e-4);
  }
  // inference mode: the moving statistics
  const z = forward(graph, params, x).dataSync();
  assert.ok(Math.abs(z[1] - ((1 * (10 - 1)) / Math.sqrt(2 + 0.001) + 0)) < 1e-5);
  tf.dispose([x, ...Object.values(params), ...Object.values(statUpdates)]);
});

test("dropout drops only in training mode, reproducibly for a seed", async () => {
  await initBackend("wasm", { quiet: true });
  const graph = buildGraph("d", [
    { name: "in", kind: "input", inputs: [], config: { shape: [1000] } },
    { name: "drop", kind: "dropout", inputs: ["in"], config: { rate: 0.3 } },
  ]);
  const x = tf.ones([2, 1000]);
  const a = forward(graph, {}, x, { training: true, seed: 5 }).dataSync();
  const b = forward(graph, {}, x, { training: true, seed: 5 }).dataSync();
  const c = forward(graph, {}, x, { training: true, seed: 6 }).dataSync();
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  const dropped = a.filter((v) => v === 0).length / a.length;
  assert.ok(dropped > 0.25 && dropped < 0.35, `dropped ${dropped}`);
  assert.ok(a.every((v) => v === 0 || Math.abs(v - 1 / 0.7) < 1e-6));
  assert.deepEqual(forward(graph, {}, x).dataSync(), x.dataSync());
  x.dispose();
});
