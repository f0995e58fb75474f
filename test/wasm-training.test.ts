import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/backend";
import { loadDataset } from "../src/data";
import { PAPER_CNN, createModel, disposeModel, getWeights } from "../src/model";
import { trainStep } from "../src/train";

// A training step of the paper CNN on wasm (with fwprune's gradient kernels) follows the cpu backend's
// loss curve and weights: same data, same seed, a few SGD-momentum steps.
const STEPS = 3;
const BATCH = 8;
const data = loadDataset({ name: "mnist-embedded", limitTrain: STEPS * BATCH, limitTest: 10 });

async function lossCurve(backend: "cpu" | "wasm") {
  await initBackend(backend, { quiet: true });
  const model = createModel(PAPER_CNN, 7);
  const optimizer = tf.train.momentum(0.01, 0.9);
  const losses: number[] = [];
  for (let s = 0; s < STEPS; s++) {
    const x = tf.tensor4d(data.train.images.subarray(s * BATCH * 784, (s + 1) * BATCH * 784), [BATCH, 28, 28, 1]);
    const y = tf.tensor1d(data.train.labels.subarray(s * BATCH, (s + 1) * BATCH), "int32");
    losses.push(trainStep(model, optimizer, x, y));
    tf.dispose([x, y]);
  }
  const weights = getWeights(model);
  optimizer.dispose();
  disposeModel(model);
  return { losses, weights };
}

test("a few training steps on wasm give cpu's loss curve and weights", async () => {
  const cpu = await lossCurve("cpu");
  const wasm = await lossCurve("wasm");
  assert.equal(tf.getBackend(), "wasm");
  for (let s = 0; s < STEPS; s++) {
    const rel = Math.abs(wasm.losses[s] - cpu.losses[s]) / Math.abs(cpu.losses[s]);
    assert.ok(rel < 1e-4, `step ${s + 1}: wasm loss ${wasm.losses[s]} vs cpu ${cpu.losses[s]} (relative ${rel.toExponential(2)})`);
  }
  assert.ok(cpu.losses[STEPS - 1] !== cpu.losses[0], "the loss moved, so the steps did update the weights");
  for (const [name, w] of Object.entries(cpu.weights)) {
    let scale = 0;
    let diff = 0;
    for (let i = 0; i < w.length; i++) {
      scale = Math.max(scale, Math.abs(w[i]));
      diff = Math.max(diff, Math.abs(w[i] - wasm.weights[name][i]));
    }
    assert.ok(diff / scale < 1e-4, `${name}: max |Δ| ${diff} vs max |w| ${scale}`);
  }
});
