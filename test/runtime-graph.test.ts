// The standalone runtime on imported model graphs: models built here with plain tfjs (a residual block with BN and
// Add, a depthwise-separable block, average and global pools, concatenate, reshape, softmax heads; Sequential and
// functional), saved as model.json, imported, pruned, written as .fwsparse, read back from disk and run. Their outputs
// must equal plain tfjs's predict on the same pruned weights and fwprune's graph forward, within 1e-5 relative.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/backend";
import { forward, layersModelArtifacts } from "../src/graph";
import { modelFromLayersModel } from "../src/graph/load";
import { encodeSparseWeights, readSparseModelFile } from "../src/inference/export";
import { disposeModel, getWeights } from "../src/model";
import { loadSparseModel } from "../src/runtime";
import { functionalModel, loadInTfjs, randomizeWeights, relativeError, saveLayersModel, sequentialModel } from "./graph-models";

/** Every fusion the runtime makes, and kinds the other two models leave out: a 2×2 max pool in a conv's kernel, a ReLU
 * layer and a batch norm folded into the conv before them, a dense layer on an image's last axis, a reshape back to
 * an image, a 3×3 stride-2 "same" average pool, a stride-2 conv with a 2×3 kernel, a Softmax layer. */
function fusionsModel(): tf.LayersModel {
  const x = tf.input({ shape: [13, 12, 2], name: "pixels" });
  let a = tf.layers.conv2d({ name: "c1", filters: 6, kernelSize: 3, padding: "same", activation: "relu" }).apply(x) as tf.SymbolicTensor;
  a = tf.layers.maxPooling2d({ name: "p1", poolSize: 2 }).apply(a) as tf.SymbolicTensor;
  let b = tf.layers.conv2d({ name: "c2", filters: 6, kernelSize: 3, padding: "same", useBias: false }).apply(a) as tf.SymbolicTensor;
  b = tf.layers.batchNormalization({ name: "bn2" }).apply(b) as tf.SymbolicTensor;
  b = tf.layers.activation({ name: "relu2", activation: "relu" }).apply(b) as tf.SymbolicTensor;
  const sum = tf.layers.add({ name: "sum" }).apply([a, b]) as tf.SymbolicTensor;
  const mixed = tf.layers.dense({ name: "mix", units: 4, activation: "tanh" }).apply(sum) as tf.SymbolicTensor;
  const pooled = tf.layers.averagePooling2d({ name: "avg", poolSize: 3, strides: 2, padding: "same" }).apply(mixed) as tf.SymbolicTensor;
  let c = tf.layers.conv2d({ name: "c3", filters: 5, kernelSize: [2, 3], strides: 2, padding: "same" }).apply(mixed) as tf.SymbolicTensor;
  c = tf.layers.batchNormalization({ name: "bn3" }).apply(c) as tf.SymbolicTensor;
  const both = tf.layers.concatenate({ name: "both" }).apply([pooled, c]) as tf.SymbolicTensor;
  const flat = tf.layers.flatten({ name: "flat" }).apply(both) as tf.SymbolicTensor;
  const hidden = tf.layers.dense({ name: "fc", units: 18, activation: "relu6" }).apply(flat) as tf.SymbolicTensor;
  const image = tf.layers.reshape({ name: "back", targetShape: [3, 3, 2] }).apply(hidden) as tf.SymbolicTensor;
  const d = tf.layers.conv2d({ name: "c4", filters: 4, kernelSize: 2, activation: "sigmoid" }).apply(image) as tf.SymbolicTensor;
  const g = tf.layers.globalAveragePooling2d({ name: "gap" }).apply(d) as tf.SymbolicTensor;
  const logits = tf.layers.dense({ name: "logits", units: 3 }).apply(g) as tf.SymbolicTensor;
  const probs = tf.layers.softmax({ name: "probs", axis: -1 }).apply(logits) as tf.SymbolicTensor;
  return tf.model({ name: "fusions", inputs: x, outputs: probs });
}

/** Each prunable kernel with its smaller half (by magnitude) set to exact zeros. */
function prunedHalf(weights: Record<string, Float32Array>, prunable: string[]): Record<string, Float32Array> {
  const out = { ...weights };
  for (const name of prunable) {
    const sorted = Array.from(weights[name], Math.abs).sort((a, b) => a - b);
    const cut = sorted[Math.floor(sorted.length / 2)];
    out[name] = weights[name].map((w) => (Math.abs(w) < cut ? 0 : w));
  }
  return out;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-runtime-graph-"));
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A multilayer perceptron on flat inputs: vectors all the way (columns for the dense layers), a BN evaluated, a softmax. */
function mlp(): tf.LayersModel {
  return tf.sequential({
    name: "mlp",
    layers: [
      tf.layers.dense({ name: "d1", inputShape: [20], units: 16, activation: "relu" }),
      tf.layers.batchNormalization({ name: "bn" }),
      tf.layers.dropout({ name: "drop", rate: 0.3 }),
      tf.layers.dense({ name: "d2", units: 6, activation: "softmax" }),
    ],
  });
}

const CASES: { name: string; build: () => tf.LayersModel; fused: [string, string][] }[] = [
  {
    name: "a functional residual block with BN, a depthwise branch, both global pools, concatenate",
    build: () => functionalModel(),
    fused: [
      ["bn2", "c2"],
      ["act", "residual"],
      ["dw_bn", "dw"],
      ["dw_relu6", "dw"],
      ["drop", "cat"],
    ],
  },
  {
    name: "a Sequential depthwise-separable CNN with pools, reshape and a softmax layer",
    build: () => sequentialModel(),
    fused: [
      ["drop", "avg"],
      ["probs", "logits"],
    ],
  },
  {
    name: "a functional model of every fusion, strided and same-padded windows, dense on an image",
    build: fusionsModel,
    fused: [
      ["p1", "c1"],
      ["bn2", "c2"],
      ["relu2", "c2"],
      ["bn3", "c3"],
    ],
  },
  { name: "a Sequential perceptron on flat inputs with a batch norm it cannot fold", build: mlp, fused: [["drop", "bn"]] },
];

for (const c of CASES) {
  test(`${c.name}: the runtime's outputs from the written .fwsparse equal plain tfjs's and fwprune's (pruned weights, batches 1 to 70)`, async () => {
    await initBackend("wasm", { quiet: true });
    const built = c.build();
    randomizeWeights(built, 7);
    const saved = await saveLayersModel(built);
    built.dispose();
    const imported = modelFromLayersModel(saved.json, saved.weights);
    try {
      const graph = imported.graph;
      const weights = prunedHalf(
        getWeights(imported),
        graph.params.filter((p) => p.prunable).map((p) => p.name),
      );
      const file = path.join(dir, `${graph.name}.fwsparse`);
      fs.writeFileSync(file, encodeSparseWeights(graph, weights));
      const back = readSparseModelFile(file);
      assert.deepEqual(back.graph, graph);
      for (const [k, v] of Object.entries(weights))
        assert.ok(
          back.weights[k].every((x, i) => x === v[i]),
          k,
        );

      const runtime = await loadSparseModel(fs.readFileSync(file), { source: file });
      for (const [node, into] of c.fused) assert.equal(runtime.layers.find((l) => l.name === node)?.fusedInto, into, `${node} fused into ${into}`);
      const kernels = graph.params.filter((p) => p.prunable);
      assert.equal(
        runtime.layers.reduce((n, l) => n + l.nonzeros, 0),
        kernels.reduce((n, p) => n + weights[p.name].filter((x) => x !== 0).length, 0),
        "non-zeros the runtime keeps",
      );

      const artifacts = layersModelArtifacts(graph, weights);
      const plain = await loadInTfjs(artifacts.json as never, artifacts.weights);
      const shape = graph.nodes[0].outputShape;
      try {
        for (const n of [1, 9, 70]) {
          const x = tf.randomUniform([n, ...shape], -1, 1, "float32", n);
          const tfjs = tf.tidy(() => (plain.predict(x) as tf.Tensor).dataSync() as Float32Array);
          const ours = tf.tidy(() =>
            forward(graph, Object.fromEntries(graph.params.map((p) => [p.name, tf.tensor(weights[p.name], p.shape)])), x, { output: "output" }).dataSync(),
          );
          const got = runtime.predict(x.dataSync() as Float32Array, n);
          x.dispose();
          assert.equal(got.length, tfjs.length);
          assert.ok(relativeError(got, tfjs) <= 1e-5, `batch ${n}: max relative error ${relativeError(got, tfjs).toExponential(2)} against plain tfjs`);
          assert.ok(relativeError(got, ours) <= 1e-5, `batch ${n}: against fwprune's forward`);
        }
      } finally {
        plain.dispose();
      }
    } finally {
      disposeModel(imported);
    }
  });
}
