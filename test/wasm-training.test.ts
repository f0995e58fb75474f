import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/backend";
import { loadDataset } from "../src/datasets";
import { FusedMomentumOptimizer } from "../src/kernels";
import { PAPER_CNN, Params, createModel, disposeModel, forward, getWeights } from "../src/model";
import { lossOf, trainStep } from "../src/train";

// A training step of the paper CNN on wasm (with fwprune's gradient kernels and fused momentum update) follows
// the cpu backend's loss curve and weights under tf.train.momentum: same data, same seed, a few SGD-momentum steps.
const STEPS = 3;
const BATCH = 8;
const data = loadDataset({ name: "mnist-embedded", limitTrain: STEPS * BATCH, limitTest: 10 });

function batch(s: number) {
  const x = tf.tensor4d(data.train.images.subarray(s * BATCH * 784, (s + 1) * BATCH * 784), [BATCH, 28, 28, 1]);
  const y = tf.tensor1d(data.train.labels.subarray(s * BATCH, (s + 1) * BATCH), "int32");
  return { x, y };
}

async function lossCurve(backend: "cpu" | "wasm", makeOptimizer: () => tf.Optimizer) {
  await initBackend(backend, { quiet: true });
  const model = createModel(PAPER_CNN, 7);
  const optimizer = makeOptimizer();
  const losses: number[] = [];
  for (let s = 0; s < STEPS; s++) {
    const { x, y } = batch(s);
    losses.push(trainStep(model, optimizer, x, y));
    tf.dispose([x, y]);
  }
  const weights = getWeights(model);
  optimizer.dispose();
  disposeModel(model);
  return { losses, weights };
}

function maxRelativeDiff(a: Float32Array, b: Float32Array): { diff: number; scale: number } {
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(a[i]));
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
  }
  return { diff, scale };
}

test("a few training steps on wasm give cpu's loss curve and weights", async () => {
  const cpu = await lossCurve("cpu", () => tf.train.momentum(0.01, 0.9));
  const wasm = await lossCurve("wasm", () => new FusedMomentumOptimizer(0.01, 0.9));
  assert.equal(tf.getBackend(), "wasm");
  for (let s = 0; s < STEPS; s++) {
    const rel = Math.abs(wasm.losses[s] - cpu.losses[s]) / Math.abs(cpu.losses[s]);
    assert.ok(rel < 1e-4, `step ${s + 1}: wasm loss ${wasm.losses[s]} vs cpu ${cpu.losses[s]} (relative ${rel.toExponential(2)})`);
  }
  assert.ok(cpu.losses[STEPS - 1] !== cpu.losses[0], "the loss moved, so the steps did update the weights");
  for (const [name, w] of Object.entries(cpu.weights)) {
    const { diff, scale } = maxRelativeDiff(w, wasm.weights[name]);
    assert.ok(diff / scale < 1e-4, `${name}: max |Δ| ${diff} vs max |w| ${scale}`);
  }
});

/** The paper CNN in the spec's own layer order (conv + bias, ReLU, then max pool), with plain tf ops. */
function forwardInSpecOrder(params: Params, x: tf.Tensor4D): tf.Tensor2D {
  const convBlock = (h: tf.Tensor4D, name: string): tf.Tensor4D => {
    const z = tf.add(tf.conv2d(h, params[`${name}/kernel`] as tf.Tensor4D, 1, "valid"), params[`${name}/bias`]) as tf.Tensor4D;
    return tf.maxPool(tf.relu(z), 2, 2, "valid");
  };
  const h = convBlock(convBlock(x, "conv1"), "conv2");
  const d1 = tf.relu(tf.add(tf.matMul(tf.reshape(h, [h.shape[0], -1]), params["dense1/kernel"] as tf.Tensor2D), params["dense1/bias"]));
  return tf.add(tf.matMul(d1, params["dense2/kernel"] as tf.Tensor2D), params["dense2/bias"]) as tf.Tensor2D;
}

test("forward pools before bias and ReLU while training: same loss and gradients as the spec's layer order (cpu)", async () => {
  await initBackend("cpu", { quiet: true });
  const model = createModel(PAPER_CNN, 11);
  // Non-zero biases, so that the bias's place in the graph matters.
  for (const [name, v] of Object.entries(model.params)) if (name.endsWith("/bias")) v.assign(tf.randomUniform(v.shape, -0.1, 0.1, "float32", 5));
  const { x, y } = batch(0);
  const vars = Object.values(model.params);
  const ours = tf.variableGrads(() => lossOf(forward(model.graph, model.params, x), y), vars);
  const spec = tf.variableGrads(() => lossOf(forwardInSpecOrder(model.params, x), y), vars);
  assert.ok(Math.abs(ours.value.dataSync()[0] - spec.value.dataSync()[0]) < 1e-6, "loss");
  for (const name of Object.keys(spec.grads)) {
    const { diff, scale } = maxRelativeDiff(spec.grads[name].dataSync() as Float32Array, ours.grads[name].dataSync() as Float32Array);
    assert.ok(scale > 0 && diff / scale < 1e-5, `gradient of ${name}: max |Δ| ${diff} vs max |g| ${scale}`);
  }
  const inference = tf.tidy(() => forward(model.graph, model.params, x).dataSync());
  const recorded = tf.tidy(() => forwardInSpecOrder(model.params, x).dataSync());
  const { diff, scale } = maxRelativeDiff(recorded as Float32Array, inference as Float32Array);
  assert.ok(diff / scale < 1e-5, `inference logits: max |Δ| ${diff} vs max |logit| ${scale}`);
  tf.dispose([x, y, ours.value, spec.value, ...Object.values(ours.grads), ...Object.values(spec.grads)]);
  disposeModel(model);
});
