import { before, test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/backend";
import { ModelGraph, NodeSpec, buildGraph, channelGroups, forward, layersModelArtifacts, paramCount, totalFlops } from "../src/graph";
import { modelFromLayersModel } from "../src/graph/load";
import { createModel, disposeModel, getWeights, modelFromWeights } from "../src/model";
import { cnnGroupOracle } from "../src/prune/group-oracle";
import { applyGroupMask, expandGroupMask, groupCount, groupLayout, groupMaskFlops, l1GroupMask, keptPerLayer } from "../src/prune/groups";
import { getMethod, parseParams } from "../src/prune/method";
import "../src/prune/methods";
import { surgery, unsurgery } from "../src/prune/surgery";
import { mulberry32 } from "../src/random";
import { functionalModel, loadInTfjs, randomizeWeights, relativeError, saveLayersModel, sequentialModel } from "./graph-models";

type Config<K extends NodeSpec["kind"]> = Extract<NodeSpec, { kind: K }>["config"];
const conv = (name: string, input: string, filters: number, k = 3, extra: Partial<Config<"conv2d">> = {}): NodeSpec => ({
  name,
  kind: "conv2d",
  inputs: [input],
  config: { filters, kernelSize: [k, k], strides: [1, 1], padding: "same", useBias: true, activation: "linear", ...extra },
});
const bn = (name: string, input: string): NodeSpec => ({
  name,
  kind: "batch-norm",
  inputs: [input],
  config: { axis: -1, momentum: 0.99, epsilon: 1e-3, center: true, scale: true },
});
const relu = (name: string, input: string): NodeSpec => ({ name, kind: "activation", inputs: [input], config: { activation: "relu" } });
const dense = (name: string, input: string, units: number): NodeSpec => ({
  name,
  kind: "dense",
  inputs: [input],
  config: { units, useBias: true, activation: "linear" },
});
const input = (shape: number[]): NodeSpec => ({ name: "input", kind: "input", inputs: [], config: { shape } });

/** A residual block with BN: the Add joins conv0's channels (the shortcut) with conv2's (through bn2). */
const RESIDUAL = buildGraph("residual", [
  input([8, 8, 3]),
  conv("conv0", "input", 6, 3, { activation: "relu" }),
  conv("conv1", "conv0", 5),
  bn("bn1", "conv1"),
  relu("relu1", "bn1"),
  conv("conv2", "relu1", 6),
  bn("bn2", "conv2"),
  { name: "add", kind: "add", inputs: ["bn2", "conv0"], config: {} },
  relu("relu2", "add"),
  { name: "pool", kind: "max-pool", inputs: ["relu2"], config: { poolSize: [2, 2], strides: [2, 2], padding: "valid" } },
  conv("conv3", "pool", 4),
  { name: "gap", kind: "global-avg-pool", inputs: ["conv3"], config: {} },
  dense("head", "gap", 3),
]);

/** Depthwise-separable: a depthwise conv (multiplier 2) with BN follows conv0's channels; a SeparableConv2D; a flatten. */
const SEPARABLE = buildGraph("separable", [
  input([8, 8, 3]),
  conv("conv0", "input", 4, 3, { activation: "relu" }),
  {
    name: "dw",
    kind: "depthwise-conv2d",
    inputs: ["conv0"],
    config: { kernelSize: [3, 3], strides: [1, 1], padding: "same", depthMultiplier: 2, useBias: true, activation: "linear" },
  },
  bn("dwbn", "dw"),
  { name: "dwrelu", kind: "activation", inputs: ["dwbn"], config: { activation: "relu6" } },
  conv("pw", "dwrelu", 5, 1, { activation: "relu" }),
  {
    name: "sep",
    kind: "separable-conv2d",
    inputs: ["pw"],
    config: { filters: 3, kernelSize: [3, 3], strides: [2, 2], padding: "valid", depthMultiplier: 2, useBias: true, activation: "relu" },
  },
  { name: "flat", kind: "flatten", inputs: ["sep"], config: {} },
  dense("hidden", "flat", 6),
  { name: "drop", kind: "dropout", inputs: ["hidden"], config: { rate: 0.5 } },
  dense("head", "drop", 3),
  { name: "softmax", kind: "activation", inputs: ["head"], config: { activation: "softmax" } },
]);

/** Two branches concatenated: conv_c reads conv_a's channels then conv_b's; a reshape before the head. */
const CONCAT = buildGraph("concat", [
  input([6, 6, 2]),
  conv("conv_a", "input", 3, 3, { activation: "relu" }),
  conv("conv_b", "input", 4, 1, { activation: "tanh" }),
  { name: "cat", kind: "concatenate", inputs: ["conv_a", "conv_b"], config: {} },
  conv("conv_c", "cat", 5, 3, { activation: "relu", padding: "valid" }),
  { name: "avg", kind: "avg-pool", inputs: ["conv_c"], config: { poolSize: [2, 2], strides: [2, 2], padding: "valid" } },
  { name: "reshape", kind: "reshape", inputs: ["avg"], config: { targetShape: [4, 5] } },
  { name: "gmp", kind: "global-max-pool", inputs: ["conv_c"], config: {} },
  { name: "flat", kind: "flatten", inputs: ["reshape"], config: {} },
  { name: "both", kind: "concatenate", inputs: ["flat", "gmp"], config: {} },
  dense("head", "both", 3),
]);

before(async () => {
  await initBackend(undefined, { quiet: true });
});

/** Seeded weights with every bias and BN parameter away from its default, so that a removed group's share matters. */
function randomWeights(graph: ModelGraph, seed: number): Record<string, Float32Array> {
  const model = createModel(graph, seed);
  const w = getWeights(model);
  disposeModel(model);
  const rand = mulberry32(seed + 1000);
  for (const p of graph.params) {
    if (p.prunable) continue;
    const v = w[p.name];
    for (let i = 0; i < v.length; i++) v[i] = p.role === "moving-variance" || p.role === "gamma" ? 0.5 + rand() : (rand() - 0.5) * 0.4;
  }
  return w;
}

function randomInput(graph: ModelGraph, n: number, seed: number): tf.Tensor {
  const shape = graph.nodes[0].outputShape;
  const rand = mulberry32(seed);
  return tf.tensor(
    Float32Array.from({ length: n * shape.reduce((a, b) => a * b, 1) }, () => rand() * 2 - 1),
    [n, ...shape],
  );
}

function logits(graph: ModelGraph, weights: Record<string, Float32Array>, x: tf.Tensor): Float32Array {
  const model = modelFromWeights(graph, weights);
  try {
    return tf.tidy(() => forward(graph, model.params, x).dataSync() as Float32Array);
  } finally {
    disposeModel(model);
  }
}

function randomGroups(graph: ModelGraph, seed: number): Float32Array {
  const layout = groupLayout(graph);
  const rand = mulberry32(seed);
  const g = Float32Array.from({ length: groupCount(layout) }, () => (rand() < 0.5 ? 1 : 0));
  for (const l of layout) g[l.offset + Math.floor(rand() * l.count)] = 1; // ≥ 1 per family
  return g;
}

test("coupled groups: an Add joins its inputs' channels, a depthwise conv and BN follow, a concat maps ranges; the head's channels are never groups", () => {
  const describe = (g: ModelGraph) => groupLayout(g).map((f) => [f.name, f.count, f.offset]);
  assert.deepEqual(describe(RESIDUAL), [
    ["conv0+conv2", 6, 0],
    ["conv1", 5, 6],
    ["conv3", 4, 11],
  ]);
  assert.deepEqual(describe(SEPARABLE), [
    ["conv0", 4, 0],
    ["pw", 5, 4],
    ["sep", 3, 9],
    ["hidden", 6, 12],
  ]);
  assert.deepEqual(describe(CONCAT), [
    ["conv_a", 3, 0],
    ["conv_b", 4, 3],
    ["conv_c", 5, 7],
  ]);
  const ch = (g: ModelGraph, node: string) => Array.from(channelGroups(g).nodeChannels[node]);
  // Residual: conv0, bn2, add, relu2, pool and conv2 carry one group per channel index; the head's outputs none.
  for (const node of ["conv0", "conv2", "bn2", "add", "relu2", "pool"]) assert.deepEqual(ch(RESIDUAL, node), [0, 1, 2, 3, 4, 5], node);
  assert.deepEqual(ch(RESIDUAL, "gap"), [11, 12, 13, 14]);
  assert.deepEqual(ch(RESIDUAL, "head"), [-1, -1, -1]);
  // Depthwise with multiplier 2: input channel c owns outputs 2c and 2c + 1.
  assert.deepEqual(ch(SEPARABLE, "dw"), [0, 0, 1, 1, 2, 2, 3, 3]);
  assert.deepEqual(ch(SEPARABLE, "dwbn"), [0, 0, 1, 1, 2, 2, 3, 3]);
  // Flatten of [3, 3, 3]: value r is channel r mod 3.
  assert.deepEqual(
    ch(SEPARABLE, "flat"),
    Array.from({ length: 27 }, (_, r) => 9 + (r % 3)),
  );
  assert.deepEqual(ch(SEPARABLE, "softmax"), [-1, -1, -1]);
  // Concat: conv_a's channels then conv_b's; reshape [2, 2, 5] → [4, 5] keeps the channel axis; the second concat
  // joins the flattened values with the global max pool's channels.
  assert.deepEqual(ch(CONCAT, "cat"), [0, 1, 2, 3, 4, 5, 6]);
  assert.deepEqual(ch(CONCAT, "reshape"), [7, 8, 9, 10, 11]);
  assert.deepEqual(ch(CONCAT, "both"), [...Array.from({ length: 20 }, (_, r) => 7 + (r % 5)), 7, 8, 9, 10, 11]);
});

test("channels that reach the input, the logits or a softmax are never groups", () => {
  // conv's output is added to the input: its channels are the input's, so they cannot go.
  const shortcut = buildGraph("shortcut", [
    input([5, 5, 2]),
    conv("conv", "input", 2),
    { name: "add", kind: "add", inputs: ["input", "conv"], config: {} },
    { name: "flat", kind: "flatten", inputs: ["add"], config: {} },
    dense("hidden", "flat", 4),
    dense("head", "hidden", 2),
  ]);
  assert.deepEqual(
    groupLayout(shortcut).map((f) => f.name),
    ["hidden"],
  );
  // An all-conv net whose logits are a global pool of the last conv: that conv's filters are the logits.
  const allConv = buildGraph("all-conv", [
    input([5, 5, 1]),
    conv("conv1", "input", 3),
    conv("conv2", "conv1", 2),
    { name: "gap", kind: "global-avg-pool", inputs: ["conv2"], config: {} },
  ]);
  assert.deepEqual(
    groupLayout(allConv).map((f) => f.name),
    ["conv1"],
  );
  const none = buildGraph("no-groups", [input([5, 5, 1]), conv("conv1", "input", 3), { name: "gap", kind: "global-avg-pool", inputs: ["conv1"], config: {} }]);
  assert.deepEqual(groupLayout(none), []);
  assert.throws(() => l1GroupMask(none, randomWeights(none, 0), 0.5, "flops", "per-layer"), /model "no-groups" has no channel groups to prune/);
  // A softmax in the middle mixes its channels.
  const mid = buildGraph("mid-softmax", [
    input([4]),
    dense("d1", "input", 3),
    { name: "sm", kind: "activation", inputs: ["d1"], config: { activation: "softmax" } },
    dense("d2", "sm", 3),
    dense("head", "d2", 2),
  ]);
  assert.deepEqual(
    groupLayout(mid).map((f) => f.name),
    ["d2"],
  );
});

test("the weight-level mask of a group mask: the depthwise channels, BN entries and pointwise rows a removed conv0 filter owns", () => {
  const groups = new Float32Array(groupCount(groupLayout(SEPARABLE))).fill(1);
  groups[1] = 0; // conv0 filter 1: depthwise kernel [:, :, 1, :], its bias 2 and 3, BN entries 2 and 3, pw rows 2 and 3
  const mask = expandGroupMask(SEPARABLE, groups);
  const dw = mask["dw/depthwise_kernel"]; // [3, 3, 4, 2]
  for (let i = 0; i < dw.length; i++) assert.equal(dw[i], Math.floor(i / 2) % 4 === 1 ? 0 : 1, `dw ${i}`);
  const pw = mask["pw/kernel"]; // [1, 1, 8, 5]
  for (let i = 0; i < pw.length; i++) assert.equal(pw[i], [2, 3].includes(Math.floor(i / 5)) ? 0 : 1, `pw ${i}`);
  const conv0 = mask["conv0/kernel"]; // [3, 3, 3, 4]
  for (let i = 0; i < conv0.length; i++) assert.equal(conv0[i], i % 4 === 1 ? 0 : 1);
  const w = randomWeights(SEPARABLE, 1);
  const masked = applyGroupMask(SEPARABLE, w, groups);
  for (const name of ["dw/bias", "dwbn/gamma", "dwbn/beta", "dwbn/moving_mean", "dwbn/moving_variance"]) {
    assert.deepEqual(
      Array.from(masked[name], (v) => v === 0),
      [false, false, true, true, false, false, false, false],
      name,
    );
  }
  // A separable conv's filter: its pointwise column and its bias; the hidden dense rows reading it through the flatten.
  groups.fill(1);
  groups[9 + 2] = 0;
  const m2 = expandGroupMask(SEPARABLE, groups);
  const sepPw = m2["sep/pointwise_kernel"]; // [1, 1, 10, 3]
  for (let i = 0; i < sepPw.length; i++) assert.equal(sepPw[i], i % 3 === 2 ? 0 : 1);
  const hidden = m2["hidden/kernel"]; // [27, 6]
  for (let i = 0; i < hidden.length; i++) assert.equal(hidden[i], Math.floor(i / 6) % 3 === 2 ? 0 : 1);
});

test("surgery on a residual net with BN, a depthwise-separable net and a concat: logits equal the masked model's, fewer parameters and FLOPs, unsurgery inverts it", () => {
  for (const graph of [RESIDUAL, SEPARABLE, CONCAT]) {
    const x = randomInput(graph, 5, 3);
    for (const seed of [1, 2, 3]) {
      const weights = randomWeights(graph, seed);
      const groups = randomGroups(graph, seed);
      assert.ok(groups.includes(0), "some group removed");
      const masked = logits(graph, applyGroupMask(graph, weights, groups), x);
      const smaller = surgery(graph, weights, groups);
      const cut = logits(smaller.graph, smaller.weights, x);
      const scale = Math.max(...masked.map(Math.abs));
      const err = Math.max(...masked.map((v, i) => Math.abs(v - cut[i])));
      assert.ok(err <= 1e-5 * scale, `${graph.name} seed ${seed}: max |Δlogit| ${err} vs max |logit| ${scale}`);
      // The removed groups mattered: the unmasked model's logits differ.
      const full = logits(graph, weights, x);
      assert.ok(Math.max(...full.map((v, i) => Math.abs(v - masked[i]))) > 1e-3 * scale, `${graph.name} seed ${seed}: masking changed nothing`);
      assert.ok(paramCount(smaller.graph) < paramCount(graph));
      assert.equal(totalFlops(smaller.graph), groupMaskFlops(graph, groupLayout(graph), groups));
      assert.ok(totalFlops(smaller.graph) < totalFlops(graph));
      assert.equal(smaller.graph.form, graph.form);
      // The narrowed graph's groups are the kept ones, family by family.
      assert.deepEqual(
        groupLayout(smaller.graph).map((f) => f.count),
        keptPerLayer(groupLayout(graph), groups),
      );
      const back = unsurgery(graph, smaller.weights, groups);
      const expected = applyGroupMask(graph, weights, groups);
      for (const p of graph.params) assert.deepEqual(back[p.name], expected[p.name], `${graph.name}: ${p.name}`);
    }
    x.dispose();
  }
});

test("models built and saved with plain tfjs (a residual BN net with a depthwise branch; a depthwise-separable Sequential): surgered, exported and reloaded by plain tfjs, they give the masked model's outputs", async () => {
  for (const [built, families] of [
    [
      functionalModel(),
      [
        ["c1+c2", 8],
        ["pw", 12],
      ],
    ],
    [
      sequentialModel(),
      [
        ["stem", 6],
        ["sep", 8],
        ["fc", 4],
      ],
    ],
  ] as const) {
    randomizeWeights(built, 11);
    const saved = await saveLayersModel(built);
    const imported = modelFromLayersModel(saved.json as never, saved.weights);
    const graph = imported.graph;
    const weights = getWeights(imported);
    disposeModel(imported);
    assert.deepEqual(
      groupLayout(graph).map((f) => [f.name, f.count]),
      families,
    );
    const x = randomInput(graph, 6, 4);
    for (const seed of [1, 2]) {
      const groups = randomGroups(graph, seed);
      const maskedModel = modelFromWeights(graph, applyGroupMask(graph, weights, groups));
      const masked = tf.tidy(() => forward(graph, maskedModel.params, x, { output: "output" }).dataSync() as Float32Array);
      disposeModel(maskedModel);
      const smaller = surgery(graph, weights, groups);
      assert.ok(paramCount(smaller.graph) < paramCount(graph));
      const artifacts = layersModelArtifacts(smaller.graph, smaller.weights);
      const reloaded = await loadInTfjs(artifacts.json as never, artifacts.weights);
      const out = tf.tidy(() => (reloaded.predict(x) as tf.Tensor).dataSync() as Float32Array);
      assert.equal(reloaded.countParams(), paramCount(smaller.graph));
      reloaded.dispose();
      const err = relativeError(out, masked);
      assert.ok(err <= 1e-5, `${graph.name} seed ${seed}: plain tfjs on the surgered export vs the masked model, max relative error ${err}`);
    }
    x.dispose();
    built.dispose();
  }
});

test("invalid group masks are refused: a family emptied, a wrong length, a value other than 0 or 1", () => {
  const n = groupCount(groupLayout(RESIDUAL));
  const w = randomWeights(RESIDUAL, 1);
  const emptied = new Float32Array(n).fill(1);
  emptied.fill(0, 6, 11);
  assert.throws(() => surgery(RESIDUAL, w, emptied), /removes every group of conv1/);
  assert.throws(() => expandGroupMask(RESIDUAL, emptied), /removes every group of conv1/);
  assert.throws(() => surgery(RESIDUAL, w, new Float32Array(n - 1).fill(1)), /expected 15 entries/);
  assert.throws(() => applyGroupMask(RESIDUAL, w, new Float32Array(n).fill(0.5)), /expected 0 or 1/);
});

test("the group oracle on BN graphs (with and without BN scale): m = the 0/1 mask gives the masked model's loss, and its gradient matches finite differences", async () => {
  const built = functionalModel();
  randomizeWeights(built, 3);
  const saved = await saveLayersModel(built);
  built.dispose();
  const imported = modelFromLayersModel(saved.json as never, saved.weights);
  checkGroupOracle(RESIDUAL, randomWeights(RESIDUAL, 4));
  // wasm has no depthwise-conv gradient kernels (yet): the imported net, with its depthwise branch, on the cpu backend
  const backend = tf.getBackend();
  await tf.setBackend("cpu");
  try {
    checkGroupOracle(imported.graph, getWeights(imported));
  } finally {
    disposeModel(imported);
    await tf.setBackend(backend);
  }
});

function checkGroupOracle(graph: ModelGraph, weights: Record<string, Float32Array>): void {
  const rand = mulberry32(5);
  const count = 24;
  const shape = graph.nodes[0].outputShape;
  const split = {
    images: Float32Array.from({ length: count * shape.reduce((a, b) => a * b, 1) }, () => rand() * 2 - 1),
    labels: Int32Array.from({ length: count }, () => Math.floor(rand() * 3)),
    count,
    shape: shape as [number, number, number],
  };
  const model = modelFromWeights(graph, weights);
  const oracle = cnnGroupOracle(model, split, { batchSize: 12, seed: 2, loss: "crossentropy" });
  const groups = randomGroups(graph, 6);
  const { loss } = oracle.evaluate(groups, 0);
  // The masked model's loss on the same minibatch (same seed): its oracle at m = 1.
  const maskedModel = modelFromWeights(graph, applyGroupMask(graph, weights, groups));
  const maskedOracle = cnnGroupOracle(maskedModel, split, { batchSize: 12, seed: 2, loss: "crossentropy" });
  const { loss: maskedLoss } = maskedOracle.evaluate(new Float32Array(groups.length).fill(1), 0);
  assert.ok(Math.abs(loss - maskedLoss) <= 1e-5 * Math.max(1, Math.abs(maskedLoss)), `oracle at the 0/1 mask ${loss}, masked model ${maskedLoss}`);
  const m = Float32Array.from(groups, () => 0.3 + 0.7 * rand());
  const { grad } = oracle.evaluate(m, 1);
  const eps = 1e-2;
  for (let i = 0; i < m.length; i++) {
    const plus = m.slice();
    const minus = m.slice();
    plus[i] += eps;
    minus[i] -= eps;
    const fd = (oracle.lossAt(plus) - oracle.lossAt(minus)) / (2 * eps);
    assert.ok(Math.abs(grad[i] - fd) <= 2e-3 + 0.03 * Math.abs(fd), `group ${i}: gradient ${grad[i]}, finite differences ${fd}`);
  }
  assert.ok(grad.some((g) => g !== 0));
  oracle.dispose();
  maskedOracle.dispose();
  disposeModel(model);
  disposeModel(maskedModel);
}

test("the structured methods prune a residual BN graph to their FLOP target, and the surgered model is valid", async () => {
  const rand = mulberry32(8);
  const count = 32;
  const shape = RESIDUAL.nodes[0].outputShape;
  const split = {
    images: Float32Array.from({ length: count * shape.reduce((a, b) => a * b, 1) }, () => rand()),
    labels: Int32Array.from({ length: count }, () => Math.floor(rand() * 3)),
    count,
    shape: shape as [number, number, number],
  };
  const weights = randomWeights(RESIDUAL, 2);
  const checkpoint = modelFromWeights(RESIDUAL, weights);
  const before = tf.memory().numTensors;
  for (const name of ["structured-magnitude", "structured-random", "structured-fw", "structured-fw-momentum"]) {
    const method = getMethod(name);
    const params = parseParams(method, name.includes("fw") ? { iterations: 3, batchSize: 8 } : {});
    const outcome = await method.prune!(checkpoint, params, { train: split, seed: 1, target: 0.4 });
    const groups = outcome.groups as Float32Array;
    const smaller = surgery(RESIDUAL, weights, groups);
    assert.ok(totalFlops(smaller.graph) <= 0.6 * totalFlops(RESIDUAL), `${name}: ${totalFlops(smaller.graph)} of ${totalFlops(RESIDUAL)} FLOPs`);
    assert.deepEqual(outcome.mask, expandGroupMask(RESIDUAL, groups));
  }
  assert.equal(tf.memory().numTensors, before);
  const { groups, score } = l1GroupMask(RESIDUAL, weights, 0.4, "groups", "global");
  const removedMax = Math.max(...Array.from(score).filter((_, i) => groups[i] === 0));
  const keptMin = Math.min(...Array.from(score).filter((_, i) => groups[i] === 1));
  assert.ok(removedMax <= keptMin);
  disposeModel(checkpoint);
});
