import { test } from "node:test";
import * as assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/backend";
import { FusedMomentumOptimizer } from "../src/kernels";
import { Model, PAPER_CNN, createModel, disposeModel, forward, trainableVariables } from "../src/model";
import { modelFromLayersModel } from "../src/graph/load";
import { mulberry32 } from "../src/random";
import { trainStep } from "../src/train";
import { ZooModelName, layersTrainStep, zooModel } from "../src/zoo";
import { saveLayersModel } from "./graph-models";

// Numerics are frozen: shipped records (the architectures sweep among them) must stay reproducible, so a speed-up of a
// kernel or of the forward/backward path may not change a single bit of a trained model. This test trains each model
// a few SGD-momentum steps on wasm, at the sweeps' batch size and input shape, through both training paths (the
// model graph's trainStep, and tfjs-layers' layersTrainStep that `fwprune bench --zoo` times), and compares the
// SHA-256 of every weight (batch norm's moving statistics included) and of the inference logits afterwards with a
// golden value.
//
// The golden hashes were produced by running this test on main's kernels at commit ec0f06c (before any speed-up
// of the zoo models' training), on this x86-64 machine (relaxed SIMD's FMA rounds once here; a machine whose
// relaxed_madd rounds twice would get other bits, see src/kernels/gemm.ts), with `FWPRUNE_PRINT_HASHES=1`, which
// prints the values instead of comparing them.
const GOLDEN: Record<string, string> = {
  "paper-cnn graph weights": "b97ea77085ba1fe4839c1f29620a88a9ed41f251cb48302f343caeb8ba6399ed",
  "paper-cnn graph logits": "ca76c4cdba44347fd288a55cd849d7192c921147ed8b555db2f5a7e365185b3c",
  "residual-net graph weights": "7bdd770331e465808360b2526f66beb2d8c595b00076ea52116ea7235b3643af",
  "residual-net graph logits": "b67462fdbce7059e03165ca879b5bfff305595800bb7696cddc6c6f882cab192",
  "residual-net layers weights": "31a4d6615cfe141a08f25ce2ef9be7785c1b9618d17a453a0f57dc5c88128cab",
  "residual-net layers logits": "b67462fdbce7059e03165ca879b5bfff305595800bb7696cddc6c6f882cab192",
  "separable-net graph weights": "2430cefbacbf52de10ae979e368ebef4bb53f0a542d6b04311e43727e490eb45",
  "separable-net graph logits": "db18b398cc61f9a86e0fd14c20a4a61655116319aec88bc0e4bcfaedfa5a331f",
  "separable-net layers weights": "bcdeb7ebafd8d3c6dbd334cf3e8bf797a56ea8f2f9a341c06b2809826fd87d32",
  "separable-net layers logits": "db18b398cc61f9a86e0fd14c20a4a61655116319aec88bc0e4bcfaedfa5a331f",
};

const BATCH = 64;
const STEPS = 3;

/** Seeded uniform images [BATCH, 28, 28, 1] and labels, one minibatch per step, the same on every run. */
function batches(): { x: tf.Tensor4D; y: tf.Tensor1D }[] {
  const rand = mulberry32(11);
  return Array.from({ length: STEPS }, () => ({
    x: tf.tensor4d(
      Float32Array.from({ length: BATCH * 28 * 28 }, () => rand()),
      [BATCH, 28, 28, 1],
    ),
    y: tf.tensor1d(
      Int32Array.from({ length: BATCH }, () => Math.floor(rand() * 10)),
      "int32",
    ),
  }));
}

function digest(arrays: Float32Array[]): string {
  const hash = createHash("sha256");
  for (const a of arrays) hash.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  return hash.digest("hex");
}

function check(key: string, value: string): void {
  if (process.env.FWPRUNE_PRINT_HASHES) {
    console.log(`    ${JSON.stringify(key)}: ${JSON.stringify(value)},`);
    return;
  }
  assert.equal(value, GOLDEN[key], `${key}: the trained bits changed`);
}

/** Train a model graph with src/train.ts's trainStep; hash its parameters (sorted by name) and its logits. */
function trainGraphModel(key: string, model: Model): void {
  const optimizer = new FusedMomentumOptimizer(0.05, 0.9);
  const data = batches();
  const losses = data.map(({ x, y }, step) => trainStep(model, optimizer, x, y, undefined, step));
  assert.ok(losses.every(Number.isFinite), `${key}: losses ${losses}`);
  assert.ok(trainableVariables(model).length > 0);
  const names = Object.keys(model.params).sort();
  check(`${key} weights`, digest(names.map((n) => model.params[n].dataSync() as Float32Array)));
  check(`${key} logits`, digest([tf.tidy(() => forward(model.graph, model.params, data[0].x).dataSync() as Float32Array)]));
  optimizer.dispose();
  tf.dispose(data.flatMap(({ x, y }) => [x, y]));
}

test("the paper CNN trains to the same bits (graph trainStep)", async () => {
  await initBackend("wasm", { quiet: true });
  const model = createModel(PAPER_CNN, 5);
  trainGraphModel("paper-cnn graph", model);
  disposeModel(model);
});

for (const name of ["residual-net", "separable-net"] as ZooModelName[]) {
  test(`${name} trains to the same bits, as a model graph (trainStep) and as a tfjs-layers model (layersTrainStep)`, async () => {
    await initBackend("wasm", { quiet: true });
    const layers = zooModel(name, { seed: 3 });
    const saved = await saveLayersModel(layers);
    const graphModel = modelFromLayersModel(saved.json as never, saved.weights);
    trainGraphModel(`${name} graph`, graphModel);
    disposeModel(graphModel);

    const optimizer = new FusedMomentumOptimizer(0.05, 0.9);
    const data = batches();
    for (const { x, y } of data) assert.ok(Number.isFinite(layersTrainStep(layers, optimizer, x, y)));
    check(`${name} layers weights`, digest(layers.weights.map((w) => w.read().dataSync() as Float32Array)));
    check(`${name} layers logits`, digest([tf.tidy(() => (layers.predict(data[0].x) as tf.Tensor).dataSync() as Float32Array)]));
    optimizer.dispose();
    tf.dispose(data.flatMap(({ x, y }) => [x, y]));
    layers.dispose();
  });
}
