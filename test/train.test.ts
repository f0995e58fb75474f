import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { initBackend } from "../src/backend";
import { loadDataset } from "../src/datasets";
import * as tf from "@tensorflow/tfjs";
import { PAPER_CNN, countParams, createModel, getWeights, modelFromWeights, paramShapes, prunableNames, disposeModel } from "../src/model";
import { DivergenceError, checkpointProblem, evaluate, loadCheckpoint, minibatch, saveCheckpoint, train } from "../src/train";
import { timeInference } from "../src/measure";

const data = loadDataset({ name: "mnist-embedded" });
const tiny = loadDataset({ name: "mnist-embedded", limitTrain: 256, limitTest: 200 });

test("the paper CNN has 225,034 parameters and four prunable kernels", () => {
  assert.equal(countParams(PAPER_CNN), 225034);
  assert.deepEqual(prunableNames(PAPER_CNN), ["conv1/kernel", "conv2/kernel", "dense1/kernel", "dense2/kernel"]);
  assert.deepEqual(paramShapes(PAPER_CNN).find((p) => p.name === "dense1/kernel")?.shape, [1600, 128]);
});

test("a spec that does not fit is rejected with the layer named", () => {
  assert.throws(() => paramShapes({ name: "bad", inputShape: [4, 4, 1], layers: [{ type: "conv2d", filters: 2, kernelSize: 5 }] }), /layers\[0\]/);
  assert.throws(() => paramShapes({ name: "bad", inputShape: [4, 4, 1], layers: [{ type: "dense", units: 2 }] }), /flatten/);
});

test("same seed, same backend: identical initial and trained weights", async () => {
  await initBackend("wasm", { quiet: true });
  const run = async (seed: number) => {
    const m = createModel(PAPER_CNN, seed);
    await train(m, tiny.train, { epochs: 1, seed });
    const w = getWeights(m);
    disposeModel(m);
    return w;
  };
  const a = await run(1);
  const b = await run(1);
  const c = await run(2);
  for (const name of Object.keys(a)) assert.deepEqual(a[name], b[name], name);
  assert.notDeepEqual(a["conv1/kernel"], c["conv1/kernel"]);
});

test("creating and disposing models leaves no tensors behind", async () => {
  await initBackend("wasm", { quiet: true });
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) {
    const m = createModel(PAPER_CNN, i);
    const copy = modelFromWeights(PAPER_CNN, getWeights(m));
    disposeModel(m);
    disposeModel(copy);
  }
  assert.equal(tf.memory().numTensors, before);
});

test("a minibatch holds the examples asked for, in order, alike on wasm (written on its heap) and cpu, and leaks nothing", async () => {
  const digits = loadDataset({ name: "mnist-embedded", limitTrain: 50, limitTest: 10 });
  const idx = Int32Array.from([7, 0, 49, 7, 23]);
  const expected = idx.reduce<number[]>((out, i) => [...out, ...digits.train.images.subarray(i * 784, (i + 1) * 784)], []);
  for (const backend of ["wasm", "cpu"] as const) {
    await initBackend(backend, { quiet: true });
    const before = tf.memory().numTensors;
    const [x, y] = tf.tidy(() => {
      const kept = minibatch(digits.train, idx);
      minibatch(digits.train, idx.subarray(1, 3)); // made and dropped inside the tidy
      return kept;
    });
    assert.deepEqual(x.shape, [5, 28, 28, 1], backend);
    assert.deepEqual([...x.dataSync()], expected, `${backend}: the images`);
    assert.deepEqual(
      [...y.dataSync()],
      [...idx].map((i) => digits.train.labels[i]),
      `${backend}: the labels`,
    );
    assert.equal(tf.memory().numTensors, before + 2, `${backend}: the tidy freed the dropped batch`);
    tf.dispose([x, y]);
    assert.equal(tf.memory().numTensors, before, `${backend}: nothing left`);
  }
  await initBackend("wasm", { quiet: true });
});

test("checkpoints round-trip exactly and reject truncated or corrupted files", async () => {
  await initBackend("wasm", { quiet: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-ckpt-"));
  const m = createModel(PAPER_CNN, 3);
  const file = path.join(dir, "e1.ckpt");
  await saveCheckpoint(file, m, { epoch: 1 }, { note: "x" });
  const back = loadCheckpoint(file, { epoch: 1 });
  assert.deepEqual(back.meta, { note: "x" });
  assert.deepEqual(back.identity, { epoch: 1 });
  assert.deepEqual(getWeights(back.model), getWeights(m));
  assert.equal(checkpointProblem(file), undefined);
  assert.deepEqual(fs.readdirSync(dir), ["e1.ckpt"], "no temp files left behind");
  const bytes = fs.readFileSync(file);
  // One weight flipped, length unchanged: only the checksum can tell.
  const flipped = Buffer.from(bytes);
  flipped[flipped.length - 100] ^= 0x40;
  fs.writeFileSync(file, flipped);
  assert.throws(() => loadCheckpoint(file), new RegExp(`${file}: does not match its SHA-256`));
  assert.match(checkpointProblem(file) ?? "", /SHA-256/);
  fs.writeFileSync(file, bytes.subarray(0, bytes.length - 10));
  assert.throws(() => loadCheckpoint(file), new RegExp(`${file}.*truncated`));
  fs.writeFileSync(file, bytes);
  assert.throws(() => loadCheckpoint(file, { epoch: 2 }), /says it is the checkpoint of epoch 1; expected 2/);
  fs.writeFileSync(file, "not a checkpoint");
  assert.throws(() => loadCheckpoint(file), /not an fwprune checkpoint/);
  assert.match(checkpointProblem(path.join(dir, "absent.ckpt")) ?? "", /absent\.ckpt: cannot read checkpoint \(ENOENT\)/);
});

test("one epoch on the 8,000 embedded digits reaches test accuracy ≥ 0.75", async () => {
  await initBackend("wasm", { quiet: true });
  const m = createModel(PAPER_CNN, 0);
  const result = await train(m, data.train, { epochs: 1, seed: 0 });
  const { accuracy, loss } = evaluate(m, data.test);
  assert.equal(result.samples, 8000);
  assert.ok(accuracy >= 0.75, `accuracy ${accuracy}`);
  assert.ok(loss < result.epochLosses[0] * 1.5 && Number.isFinite(loss), `loss ${loss}`);
  const timing = timeInference(m, data.test, { repeats: 3 });
  assert.equal(timing.seconds.length, 3);
  assert.ok(timing.medianSeconds > 0);
});

test("divergence is caught from the loss itself: non-finite, or past 100× its first minibatch's while still finite", async () => {
  await initBackend("wasm", { quiet: true });
  const data = loadDataset({ name: "mnist-embedded", limitTrain: 320, limitTest: 100 });
  const model = createModel(PAPER_CNN, 0);
  // lr 1000: the loss jumps to about 1e8 at the second minibatch, finite, and would go on to give garbage.
  await assert.rejects(train(model, data.train, { epochs: 1, lr: 1000, seed: 0 }), (err: Error) => {
    assert.ok(err instanceof DivergenceError);
    assert.match(err.message, /training loss became [\d.]+e\+\d+, more than 100× max\(its first minibatch's, 1\) at epoch 1, batch 2\/5 \(lr 1000\)/);
    return true;
  });
  disposeModel(model);
});
