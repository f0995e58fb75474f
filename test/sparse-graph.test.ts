import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/backend";
import { ModelGraph, NodeSpec, buildGraph, forward } from "../src/graph";
import { modelFromLayersModel } from "../src/graph/load";
import { prepareGraph } from "../src/inference/fold";
import { CompileOptions, compileSparseModel } from "../src/inference/sparse-model";
import { createModel, disposeModel, getWeights } from "../src/model";
import { magnitudeMask } from "../src/prune/magnitude";
import { functionalModel, randomizeWeights, relativeError, saveLayersModel, sequentialModel } from "./graph-models";

/** A residual net whose convs the sparse kernels can run: valid stride-1 convs, BN after them, an add, a fused pool. */
const RESIDUAL: NodeSpec[] = [
  { name: "image", kind: "input", inputs: [], config: { shape: [12, 12, 3] } },
  {
    name: "c1",
    kind: "conv2d",
    inputs: ["image"],
    config: { filters: 8, kernelSize: [3, 3], strides: [1, 1], padding: "valid", useBias: false, activation: "linear" },
  },
  { name: "bn1", kind: "batch-norm", inputs: ["c1"], config: { axis: -1, momentum: 0.99, epsilon: 1e-3, center: true, scale: true } },
  { name: "r1", kind: "activation", inputs: ["bn1"], config: { activation: "relu" } },
  {
    name: "c2",
    kind: "conv2d",
    inputs: ["r1"],
    config: { filters: 8, kernelSize: [1, 1], strides: [1, 1], padding: "valid", useBias: true, activation: "linear" },
  },
  { name: "bn2", kind: "batch-norm", inputs: ["c2"], config: { axis: -1, momentum: 0.99, epsilon: 1e-3, center: true, scale: false } },
  { name: "sum", kind: "add", inputs: ["r1", "bn2"], config: {} },
  { name: "r2", kind: "activation", inputs: ["sum"], config: { activation: "relu" } },
  {
    name: "c3",
    kind: "conv2d",
    inputs: ["r2"],
    config: { filters: 12, kernelSize: [3, 3], strides: [1, 1], padding: "valid", useBias: true, activation: "relu" },
  },
  { name: "pool", kind: "max-pool", inputs: ["c3"], config: { poolSize: [2, 2], strides: [2, 2], padding: "valid" } },
  { name: "drop", kind: "dropout", inputs: ["pool"], config: { rate: 0.3 } },
  { name: "flat", kind: "flatten", inputs: ["drop"], config: {} },
  { name: "fc", kind: "dense", inputs: ["flat"], config: { units: 16, useBias: true, activation: "relu" } },
  { name: "logits", kind: "dense", inputs: ["fc"], config: { units: 5, useBias: true, activation: "softmax" } },
];

/** Random weights (positive variances, so BN matters), the kernels magnitude-pruned to `sparsity`. */
function prunedWeights(graph: ModelGraph, seed: number, sparsity: number): Record<string, Float32Array> {
  const model = createModel(graph, seed);
  const weights = getWeights(model);
  disposeModel(model);
  let s = seed;
  const rand = () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (const p of graph.params) {
    if (p.prunable) continue;
    weights[p.name] = Float32Array.from(weights[p.name], () => (p.role === "moving-variance" ? 0.5 + rand() : (rand() - 0.5) * 0.8));
  }
  const mask = magnitudeMask(graph, weights, sparsity, "global");
  for (const [name, m] of Object.entries(mask)) weights[name] = weights[name].map((w, i) => (m[i] === 0 ? 0 : w));
  return weights;
}

function graphLogits(graph: ModelGraph, weights: Record<string, Float32Array>, x: tf.Tensor): Float32Array {
  return tf.tidy(() => {
    const params = Object.fromEntries(graph.params.map((p) => [p.name, tf.tensor(weights[p.name], p.shape)]));
    return forward(graph, params, x).dataSync() as Float32Array;
  });
}

async function importedGraph(build: () => tf.LayersModel): Promise<ModelGraph> {
  const layers = build();
  randomizeWeights(layers, 3);
  const saved = await saveLayersModel(layers);
  layers.dispose();
  const model = modelFromLayersModel(saved.json, saved.weights);
  disposeModel(model);
  return model.graph;
}

// bnLeft: the batch norms that cannot fold (after an activation)
const cases: { name: string; graph: () => Promise<ModelGraph>; sparse: string[]; bnLeft: string[] }[] = [
  { name: "residual net with BN (valid convs)", graph: async () => buildGraph("res-sparse", RESIDUAL), sparse: ["c1", "c2", "c3", "fc", "logits"], bnLeft: [] },
  {
    name: "residual net with BN, a depthwise branch and global pools (imported)",
    graph: () => importedGraph(() => functionalModel()),
    sparse: ["head"],
    bnLeft: [],
  },
  { name: "depthwise-separable Sequential (imported)", graph: () => importedGraph(() => sequentialModel()), sparse: ["logits"], bnLeft: ["stem_bn", "dw_bn"] },
];

for (const c of cases) {
  test(`compileSparseModel on any graph: ${c.name}, pruned to 0.9, equals the graph's forward at batches 1 and 13 on every path`, async () => {
    await initBackend("wasm", { quiet: true });
    const graph = await c.graph();
    const weights = prunedWeights(graph, 5, 0.9);
    for (const batch of [1, 13]) {
      const x = tf.randomUniform([batch, ...graph.nodes[0].outputShape], -1, 1, "float32", 11);
      const expected = graphLogits(graph, weights, x);
      const options: CompileOptions[] = [{ paths: "sparse" }, { paths: "dense" }, { calibrationBatch: 8, calibrationRepeats: 1 }];
      for (const opts of options) {
        const model = compileSparseModel(graph, weights, opts);
        try {
          const logits = tf.tidy(() => model.predict(x).dataSync() as Float32Array);
          assert.equal(logits.length, expected.length);
          const err = relativeError(logits, expected);
          assert.ok(err <= 1e-5, `batch ${batch}, paths ${JSON.stringify(opts.paths ?? "auto")}: max relative error ${err.toExponential(2)}`);
          assert.deepEqual(
            model.graph.nodes.filter((n) => n.kind === "batch-norm").map((n) => n.name),
            c.bnLeft,
          );
          if (opts.paths === "sparse")
            assert.deepEqual(
              model.layers.filter((l) => l.path === "sparse").map((l) => l.layer),
              c.sparse,
            );
          const profile = model.profile(x);
          assert.ok(profile.length > 0 && profile.every((s) => s.ms >= 0 && model.layers.some((l) => l.layer === s.layer)));
        } finally {
          model.dispose();
        }
      }
      x.dispose();
    }
  });
}

test("BN folds into the conv it alone reads (w·γ/√(var+ε), (b−mean)·γ/√(var+ε)+β by hand), and not after an activation or a shared conv", () => {
  const nodes: NodeSpec[] = [
    { name: "in", kind: "input", inputs: [], config: { shape: [1] } },
    { name: "d", kind: "dense", inputs: ["in"], config: { units: 2, useBias: true, activation: "linear" } },
    { name: "bn", kind: "batch-norm", inputs: ["d"], config: { axis: -1, momentum: 0.9, epsilon: 0.5, center: true, scale: true } },
  ];
  const weights = {
    "d/kernel": new Float32Array([2, -3]),
    "d/bias": new Float32Array([1, 4]),
    "bn/gamma": new Float32Array([3, 1]),
    "bn/beta": new Float32Array([0.25, -1]),
    "bn/moving_mean": new Float32Array([2, 1]),
    "bn/moving_variance": new Float32Array([3.5, 0.5]),
  };
  const folded = prepareGraph(buildGraph("fold", nodes), weights);
  assert.deepEqual(
    folded.graph.nodes.map((n) => n.name),
    ["in", "d"],
  );
  // scale = γ/√(var+ε) = [3/2, 1/1]
  assert.deepEqual([...folded.values["d/kernel"]], [3, -3]);
  assert.deepEqual([...folded.values["d/bias"]], [(1 - 2) * 1.5 + 0.25, (4 - 1) * 1 - 1]);
  assert.deepEqual([...weights["d/kernel"]], [2, -3], "the caller's weights are left alone");
  const afterRelu = nodes.map((n) => (n.name === "d" ? { ...n, config: { ...n.config, activation: "relu" } } : n)) as NodeSpec[];
  assert.deepEqual(
    prepareGraph(buildGraph("relu", afterRelu), weights).graph.nodes.map((n) => n.name),
    ["in", "d", "bn"],
  );
  const shared: NodeSpec[] = [...nodes, { name: "both", kind: "concatenate", inputs: ["d", "bn"], config: {} }];
  assert.deepEqual(
    prepareGraph(buildGraph("shared", shared), weights).graph.nodes.map((n) => n.name),
    ["in", "d", "bn", "both"],
  );
  assert.throws(
    () => prepareGraph(buildGraph("fold", nodes), { ...weights, "bn/gamma": new Float32Array(3) }),
    /weights\["bn\/gamma"\]: expected 2 values, got 3/,
  );
});

test("paths naming a layer the sparse kernels cannot run are refused, naming it and why", async () => {
  await initBackend("wasm", { quiet: true });
  const graph = await importedGraph(() => functionalModel());
  const weights = prunedWeights(graph, 5, 0.5);
  assert.throws(() => compileSparseModel(graph, weights, { paths: { dw: "sparse" } }), /paths\["dw"\]: no sparse kernel runs depthwise-conv2d nodes/);
  assert.throws(() => compileSparseModel(graph, weights, { paths: { c1: "sparse" } }), /paths\["c1"\]: .*valid stride-1/);
  assert.throws(() => compileSparseModel(graph, weights, { paths: { bn2: "sparse" } }), /paths\["bn2"\]: no such layer/);
});
