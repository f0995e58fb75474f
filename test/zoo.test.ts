import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/backend";
import { FusedMomentumOptimizer } from "../src/kernels";
import { mulberry32 } from "../src/random";
import { layersTrainStep, residualNet, separableNet, zooModel, zooParamCounts } from "../src/zoo";

// The zoo's reference architectures build, predict logits of the right shape, and train on wasm (with fwprune's
// kernels: depthwise gradients, batch norm's) exactly as on the cpu backend.
const BUILDERS = { residualNet, separableNet };

test("zoo models build with the documented parameter counts and predict [batch, classes] for any input shape", async () => {
  await initBackend("cpu", { quiet: true });
  assert.deepEqual(zooParamCounts(residualNet()), { trainable: 77754, total: 78426 });
  assert.deepEqual(zooParamCounts(separableNet()), { trainable: 67338, total: 69258 });
  for (const [name, build] of Object.entries(BUILDERS)) {
    for (const [inputShape, classes] of [
      [[28, 28, 1], 10],
      [[17, 22, 3], 7],
    ] as [[number, number, number], number][]) {
      const model = build({ inputShape, classes, seed: 3 });
      const logits = tf.tidy(() => model.predict(tf.ones([5, ...inputShape])) as tf.Tensor);
      assert.deepEqual(logits.shape, [5, classes], `${name} ${inputShape}`);
      assert.ok(Array.from(logits.dataSync()).every(Number.isFinite));
      logits.dispose();
      model.dispose();
    }
  }
  // Same seed, same weights; another seed, other weights.
  const weights = (seed: number) =>
    separableNet({ seed })
      .getWeights()
      .map((w) => Array.from(w.dataSync()));
  assert.deepEqual(weights(4), weights(4));
  assert.notDeepEqual(weights(4), weights(5));
});

test("zoo builders refuse bad options, naming the option and the value", () => {
  assert.throws(
    () => residualNet({ inputShape: [28, 28] as unknown as [number, number, number] }),
    /residualNet: inputShape \[28,28\]; expected \[height, width, channels\]/,
  );
  assert.throws(() => separableNet({ inputShape: [3, 28, 1] }), /separableNet: inputShape \[3,28,1\]; expected height and width of at least 4/);
  assert.throws(() => separableNet({ classes: 1 }), /separableNet: classes 1; expected an integer ≥ 2/);
  assert.throws(() => residualNet({ seed: -1 }), /residualNet: seed -1/);
  assert.throws(() => zooModel("vgg" as "residual-net"), /zoo model "vgg": unknown; expected one of residual-net, separable-net/);
});

const CLI = path.join(__dirname, "..", "dist", "cli.js");
test(
  "fwprune bench --zoo refuses an unknown model, and flags of other benches, before any work",
  { skip: !fs.existsSync(CLI) && "dist/cli.js not built" },
  () => {
    const run = (...args: string[]) => spawnSync(process.execPath, [CLI, "bench", ...args], { encoding: "utf8", env: { ...process.env, FWPRUNE_QUIET: "1" } });
    const unknown = run("--zoo", "vgg");
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /--zoo: got "vgg"; expected one of residual-net, separable-net/);
    const mixed = run("--zoo", "--sparse");
    assert.equal(mixed.status, 1);
    assert.match(mixed.stderr, /--zoo belongs to the training\/inference bench, not to --sparse/);
  },
);

async function trainOn(backend: "cpu" | "wasm", name: "residual-net" | "separable-net") {
  await initBackend(backend, { quiet: true });
  const rand = mulberry32(9);
  const model = zooModel(name, { seed: 2, inputShape: [12, 12, 1] });
  const optimizer = backend === "wasm" ? new FusedMomentumOptimizer(0.05, 0.9) : tf.train.momentum(0.05, 0.9);
  const losses: number[] = [];
  for (let step = 0; step < 3; step++) {
    const x = tf.tensor4d(
      new Float32Array(8 * 12 * 12).map(() => rand()),
      [8, 12, 12, 1],
    );
    const y = tf.tensor1d(
      Array.from({ length: 8 }, () => Math.floor(rand() * 10)),
      "int32",
    );
    losses.push(layersTrainStep(model, optimizer, x, y));
    tf.dispose([x, y]);
  }
  const weights = model.weights.map((w) => ({ name: w.name, values: w.read().dataSync() as Float32Array }));
  optimizer.dispose();
  model.dispose();
  return { losses, weights };
}

for (const name of ["residual-net", "separable-net"] as const) {
  test(`${name}: a few training steps on wasm give cpu's losses, weights and batch-norm statistics`, async () => {
    const cpu = await trainOn("cpu", name);
    const wasm = await trainOn("wasm", name);
    assert.ok(wasm.losses.every(Number.isFinite), `losses ${wasm.losses}`);
    assert.notEqual(cpu.losses[2], cpu.losses[0], "the steps moved the loss");
    for (let s = 0; s < cpu.losses.length; s++) {
      const rel = Math.abs(wasm.losses[s] - cpu.losses[s]) / Math.abs(cpu.losses[s]);
      assert.ok(rel < 1e-4, `step ${s + 1}: wasm ${wasm.losses[s]} vs cpu ${cpu.losses[s]}`);
    }
    assert.equal(wasm.weights.length, cpu.weights.length);
    for (let i = 0; i < cpu.weights.length; i++) {
      const { name: weight, values } = cpu.weights[i];
      let diff = 0;
      let scale = 0;
      for (let j = 0; j < values.length; j++) {
        scale = Math.max(scale, Math.abs(values[j]));
        diff = Math.max(diff, Math.abs(values[j] - wasm.weights[i].values[j]));
      }
      assert.ok(diff <= 1e-4 * Math.max(scale, 1e-3), `${weight}: max |Δ| ${diff} vs max |w| ${scale}`);
    }
  });
}
