import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/backend";
import { loadDataset } from "../src/datasets";
import { compileSparseModel } from "../src/inference/sparse-model";
import {
  EXAMPLES_AT,
  MIN_SPLIT_EXAMPLES,
  claimExamples,
  exampleClaim,
  inferenceForward,
  splitPredictions,
  splitWeightsSent,
  whenInferenceWorkersReady,
  workerExamples,
} from "../src/inference/split-predict";
import { modelFromLayersModel } from "../src/graph/load";
import { saveLayersModel } from "./graph-models";
import { finishDeferred } from "../src/kernels/threads";
import {
  continuedWorkCount,
  deferredJobCount,
  enableDeferredFilterGrad,
  FusedMomentumOptimizer,
  isDeferred,
  MOMENTUM_STEP,
  MIN_SPLIT_MACS,
  parseThreads,
  readFloatsInto,
  setKernelThreads,
  splitConvolutions,
  splitWorkersReady,
  threadedProducts,
  whenSplitWorkersReady,
} from "../src/kernels";
import { PAPER_CNN, createModel, disposeModel, forward, getWeights } from "../src/model";
import { notebookConfig } from "../src/notebook";
import { prune } from "../src/prune/method";
import "../src/prune/methods";
import { applyMaskInPlace, maskToTensors, trainStep } from "../src/train";
import { mulberry32 } from "../src/random";
import { layersTrainStep, zooModel, ZooModelName } from "../src/zoo";

// The matrix products split C's rows between threads and never a sum: every weight, mask and logit must come out
// bit for bit the same with 1 thread (tfjs's heap, no pool), 2 and 3 threads (a shared memory, rows claimed in blocks).
const THREADS = [1, 2, 3];
const BATCH = 32;
const data = loadDataset({ name: "mnist-embedded", limitTrain: 4 * BATCH, limitTest: 10 });

function batch(s: number) {
  const x = tf.tensor4d(data.train.images.subarray(s * BATCH * 784, (s + 1) * BATCH * 784), [BATCH, 28, 28, 1]);
  const y = tf.tensor1d(data.train.labels.subarray(s * BATCH, (s + 1) * BATCH), "int32");
  return { x, y };
}

function digest(arrays: Record<string, Float32Array>): string {
  const hash = createHash("sha256");
  for (const name of Object.keys(arrays).sort()) hash.update(name).update(Buffer.from(arrays[name].buffer, arrays[name].byteOffset, arrays[name].byteLength));
  return hash.digest("hex");
}

/** `run` under each thread count: its digests, and how many products ran on the pool. */
async function underEachThreadCount(run: () => Promise<string> | string): Promise<{ digests: string[]; threaded: number[] }> {
  await initBackend("wasm", { quiet: true });
  const digests: string[] = [];
  const threaded: number[] = [];
  for (const n of THREADS) {
    setKernelThreads(n);
    const before = threadedProducts();
    digests.push(await run());
    threaded.push(threadedProducts() - before);
  }
  setKernelThreads(1);
  return { digests, threaded };
}

function assertSameEverywhere(what: string, r: { digests: string[]; threaded: number[] }) {
  assert.equal(r.threaded[0], 0, `${what}: one thread must not use the pool`);
  for (let i = 1; i < THREADS.length; i++) {
    assert.ok(r.threaded[i] > 0, `${what}: ${THREADS[i]} threads ran no product on the pool`);
    assert.equal(r.digests[i], r.digests[0], `${what}: ${THREADS[i]} threads differ from 1`);
  }
}

test("training steps of the paper CNN: the same weights with 1, 2 and 3 threads", async () => {
  // Whether the optimizer's update waits for the product depends on timing (a product already done is joined sooner):
  // the deferred-gradient test below checks that path.
  const deferred = deferredJobCount();
  const result = await underEachThreadCount(() => {
    const model = createModel(PAPER_CNN, 7);
    const optimizer = new FusedMomentumOptimizer(0.01, 0.9);
    for (let s = 0; s < 3; s++) {
      const { x, y } = batch(s);
      trainStep(model, optimizer, x, y);
      tf.dispose([x, y]);
    }
    const weights = getWeights(model);
    optimizer.dispose();
    disposeModel(model);
    return digest(weights);
  });
  assertSameEverywhere("paper CNN", result);
  assert.ok(deferredJobCount() >= deferred + 2 * 3, "the second convolution's filter gradient product was deferred at every step on 2 and 3 threads");
});

test("retraining a pruned paper CNN: the update masking as it goes gives the bits of masking after each step, with 1, 2 and 3 threads", async () => {
  // The fused optimizer multiplies by the mask inside its update (which may wait for a deferred gradient); tfjs's own
  // momentum optimizer (the same float32 operations) is masked after each step by applyMaskInPlace instead.
  const mask = (model: ReturnType<typeof createModel>) => {
    const rand = mulberry32(5);
    const out: Record<string, Float32Array> = {};
    for (const name of ["conv1/kernel", "conv2/kernel", "dense1/kernel", "dense2/kernel"])
      out[name] = Float32Array.from({ length: model.params[name].size }, () => (rand() < 0.5 ? 0 : 1));
    return out;
  };
  const retrain = (optimizer: tf.Optimizer) => {
    const model = createModel(PAPER_CNN, 7);
    const m = mask(model);
    const masks = maskToTensors(model, m);
    applyMaskInPlace(model, masks);
    for (let s = 0; s < 3; s++) {
      const { x, y } = batch(s);
      trainStep(model, optimizer, x, y, masks);
      tf.dispose([x, y]);
    }
    const weights = getWeights(model);
    for (const [name, keep] of Object.entries(m))
      assert.ok(
        keep.every((k, i) => k === 1 || weights[name][i] === 0),
        `${name}: pruned weights stay zero`,
      );
    optimizer.dispose();
    tf.dispose(Object.values(masks));
    disposeModel(model);
    return digest(weights);
  };
  const fused = await underEachThreadCount(() => retrain(new FusedMomentumOptimizer(0.01, 0.9)));
  assertSameEverywhere("masked in the update", fused);
  const after = await underEachThreadCount(() => retrain(tf.train.momentum(0.01, 0.9)));
  assert.deepEqual(fused.digests, after.digests, "masking in the update and after it give the same weights");
});

test("a deferred filter gradient read, taken by another kernel or disposed before it is done: always the bits computed at once", async () => {
  await initBackend("wasm", { quiet: true });
  setKernelThreads(2);
  const [x, dy] = [tf.randomUniform([32, 13, 13, 32], -1, 1, "float32", 5), tf.randomUniform([32, 11, 11, 64], -1, 1, "float32", 6)];
  const attrs = { strides: 1, pad: "valid", dataFormat: "NHWC", filterShape: [3, 3, 32, 64] };
  const dW = () => tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, attrs) as tf.Tensor;
  try {
    enableDeferredFilterGrad(false);
    const atOnce = dW();
    const expected = atOnce.dataSync().slice();
    assert.ok(!isDeferred(atOnce.dataId));
    atOnce.dispose();
    enableDeferredFilterGrad(true);
    const jobs = deferredJobCount();
    const read = dW();
    assert.ok(isDeferred(read.dataId) && deferredJobCount() === jobs + 1, "the product was deferred");
    assert.deepEqual(read.dataSync(), expected, "read back");
    assert.ok(!isDeferred(read.dataId), "joined once read");
    read.dispose();
    const readInto = dW();
    const into = new Float32Array(readInto.size).fill(NaN);
    assert.ok(isDeferred(readInto.dataId));
    assert.equal(readFloatsInto(readInto, into), into, "read into the array given");
    assert.deepEqual(into, expected, "read into an array");
    assert.ok(!isDeferred(readInto.dataId), "joined once read into an array");
    assert.throws(() => readFloatsInto(readInto, new Float32Array(3)), /float32 tensor of 3 values expected, got float32 of 18432/);
    readInto.dispose();
    const taken = dW();
    const times1 = tf.mul(taken, 1); // x·1 = x exactly
    assert.deepEqual(times1.dataSync(), expected, "taken by Multiply");
    tf.dispose([taken, times1]);
    // Disposed at once: its memory is freed only once the job is done, so memory handed out meanwhile stays untouched.
    dW().dispose();
    const fresh = tf.zeros([3 * 3 * 32 * 64]);
    finishDeferred();
    assert.ok(
      fresh.dataSync().every((v) => v === 0),
      "memory handed out while a disposed deferred job ran stays untouched",
    );
    const next = dW();
    assert.deepEqual(next.dataSync(), expected, "a job after one disposed");
    tf.dispose([fresh, next]);
    // The optimizer's update of a deferred gradient waits for it (variables assigned its outputs, as the optimizer
    // does, which changes their data ids); the gradient, old value and accumulation disposed meanwhile are freed only
    // after it; whatever reads the new value or accumulation joins.
    const update = (g: tf.Tensor, value: tf.Variable, accumulation: tf.Variable, mask?: tf.Tensor) => {
      const inputs = { value, accumulation, gradient: g, ...(mask ? { mask } : {}) };
      const [newValue, newAccumulation] = tf.engine().runKernel(MOMENTUM_STEP, inputs, { learningRate: 0.1, momentum: 0.9 }) as tf.Tensor[];
      value.assign(newValue);
      accumulation.assign(newAccumulation);
      tf.dispose([newValue, newAccumulation]);
    };
    const state = () => [tf.randomUniform([3, 3, 32, 64], -1, 1, "float32", 7).variable(), tf.randomUniform([3, 3, 32, 64], -1, 1, "float32", 8).variable()];
    enableDeferredFilterGrad(false);
    const g0 = dW();
    const [w0, v0] = state();
    update(g0, w0, v0);
    const updatedAtOnce = [w0, v0].map((t) => t.dataSync().slice());
    enableDeferredFilterGrad(true);
    const g1 = dW();
    const [w1, v1] = state();
    const continued = continuedWorkCount();
    update(g1, w1, v1);
    assert.ok(continuedWorkCount() === continued + 1 && isDeferred(w1.dataId) && isDeferred(v1.dataId), "the update waited");
    g1.dispose();
    const scratch = tf.ones([3 * 3 * 32 * 64]);
    assert.deepEqual(w1.dataSync(), updatedAtOnce[0], "new value");
    assert.deepEqual(v1.dataSync(), updatedAtOnce[1], "new accumulation");
    assert.ok(
      scratch.dataSync().every((v) => v === 1),
      "memory allocated while the disposals waited stays untouched",
    );
    // Likewise with a mask (retraining a pruned model): the waiting update multiplies by it, as the one at once does.
    const mask = tf.tidy(() => tf.randomUniform([3, 3, 32, 64], 0, 1, "float32", 9).greater(0.5).cast("float32"));
    enableDeferredFilterGrad(false);
    const g2 = dW();
    const [w2, v2] = state();
    update(g2, w2, v2, mask);
    const maskedAtOnce = w2.dataSync().slice();
    enableDeferredFilterGrad(true);
    const g3 = dW();
    const [w3, v3] = state();
    update(g3, w3, v3, mask);
    assert.ok(continuedWorkCount() === continued + 2 && isDeferred(w3.dataId), "the masked update waited");
    mask.dispose(); // its memory is freed only after the update that reads it
    tf.dispose(g3);
    const overwrite = tf.ones([3 * 3 * 32 * 64]);
    assert.deepEqual(w3.dataSync(), maskedAtOnce, "new masked value");
    assert.ok(maskedAtOnce.some((v) => v === 0) && maskedAtOnce.some((v) => v !== 0), "some weights masked, some kept");
    tf.dispose([g0, w0, v0, w1, v1, scratch, g2, w2, v2, w3, v3, overwrite]);
  } finally {
    enableDeferredFilterGrad(true);
    setKernelThreads(1);
    tf.dispose([x, dy]);
  }
});

for (const name of ["residual-net", "separable-net"] as ZooModelName[]) {
  test(`a training step of ${name}: the same weights with 1, 2 and 3 threads`, async () => {
    await initBackend("wasm", { quiet: true });
    const model = zooModel(name, { seed: 3 });
    // Only the first layer's initialiser is seeded: every thread count starts from these same weights.
    const initial = model.getWeights().map((w) => w.clone());
    const result = await underEachThreadCount(() => {
      model.setWeights(initial);
      const optimizer = new FusedMomentumOptimizer(0.01, 0.9);
      const { x, y } = batch(0);
      layersTrainStep(model, optimizer, x, y);
      tf.dispose([x, y]);
      const weights = Object.fromEntries(model.weights.map((w) => [w.originalName, w.read().dataSync() as Float32Array]));
      optimizer.dispose();
      return digest(weights);
    });
    model.dispose();
    tf.dispose(initial);
    assertSameEverywhere(name, result);
  });
}

test("an FW-momentum pruning run: the same mask and per-iteration losses and gaps with 1, 2 and 3 threads", async () => {
  const result = await underEachThreadCount(async () => {
    const model = createModel(PAPER_CNN, 5);
    const outcome = await prune(model, "fw-momentum", { iterations: 4, batchSize: BATCH }, { train: data.train, seed: 2, target: 0.9 });
    disposeModel(model);
    const history = (outcome.history ?? []) as { loss: number; gap: number }[];
    const losses = Float32Array.from(history.map((h) => h.loss));
    assert.equal(losses.length, 4);
    // The gaps are doubles: their bits, two floats each.
    const gaps = new Float32Array(Float64Array.from(history.map((h) => h.gap)).buffer);
    return digest({ ...outcome.mask, "history/loss": losses, "history/gap": gaps });
  });
  assertSameEverywhere("fw-momentum", result);
});

/** A paper CNN's initial weights (seeded), its kernels' entries under 0.05 in size set to zero. */
function sparsePaperCnn(seed: number): Record<string, Float32Array> {
  const model = createModel(PAPER_CNN, seed);
  const weights = getWeights(model);
  disposeModel(model);
  for (const [name, w] of Object.entries(weights)) if (name.endsWith("/kernel")) w.forEach((v, i) => Math.abs(v) < 0.05 && (w[i] = 0));
  return weights;
}

test("a sparse model's forward (sparse and dense paths) split by examples between threads: the same logits with 1, 2 and 3 threads", async () => {
  await initBackend("wasm", { quiet: true });
  const weights = sparsePaperCnn(9);
  // 125 examples, not whole tiles of 8: claimed 16 at a time on 2 threads (the last claim 13), 8 at a time on 3.
  const n = 4 * BATCH - 3;
  assert.ok(n >= MIN_SPLIT_EXAMPLES, "large enough to be split");
  const x = tf.tensor4d(data.train.images.subarray(0, n * 784), [n, 28, 28, 1]);
  const byWorkers = workerExamples();
  for (const paths of ["sparse", "dense"] as const) {
    const digests: string[] = [];
    for (const threads of THREADS) {
      setKernelThreads(threads);
      await whenInferenceWorkersReady(60_000);
      const sparse = compileSparseModel(PAPER_CNN, weights, { paths, calibrationBatch: 8, calibrationRepeats: 1 });
      const before = splitPredictions();
      const logits = sparse.predict(x);
      assert.equal(splitPredictions() - before, threads > 1 ? 1 : 0, `${paths} path, ${threads} threads: split ${threads > 1 ? "once" : "never"}`);
      digests.push(digest({ logits: logits.dataSync() as Float32Array }));
      assert.deepEqual(logits.shape, [n, 10]);
      logits.dispose();
      sparse.dispose();
    }
    assert.deepEqual(digests, Array(THREADS.length).fill(digests[0]), `${paths} path`);
  }
  assert.ok(workerExamples() > byWorkers, "the worker threads computed some of the examples");
  setKernelThreads(1);
  x.dispose();
});

test("a model's forward pass in inference mode (evaluation, inference timing) split by examples between threads: the same logits with 1, 2 and 3 threads", async () => {
  await initBackend("wasm", { quiet: true });
  const n = 4 * BATCH - 3; // not whole tiles of 8
  const x = tf.tensor4d(data.train.images.subarray(0, n * 784), [n, 28, 28, 1]);
  const layers = zooModel("residual-net", { seed: 3 });
  const saved = await saveLayersModel(layers);
  layers.dispose();
  // The paper CNN, and residual-net for batch norm on its moving statistics, a residual add and global pooling.
  const byWorkers = workerExamples();
  for (const model of [createModel(PAPER_CNN, 9), modelFromLayersModel(saved.json as never, saved.weights)]) {
    const digests: string[] = [];
    for (const threads of THREADS) {
      setKernelThreads(threads);
      await whenInferenceWorkersReady(60_000);
      const before = splitPredictions();
      const logits = inferenceForward(model.graph, model.params, x);
      assert.equal(splitPredictions() - before, threads > 1 ? 1 : 0, `${model.graph.name}, ${threads} threads: split ${threads > 1 ? "once" : "never"}`);
      digests.push(digest({ logits: logits.dataSync() as Float32Array }));
      logits.dispose();
    }
    const whole = tf.tidy(() => forward(model.graph, model.params, x).dataSync() as Float32Array);
    assert.deepEqual(digests, Array(THREADS.length).fill(digest({ logits: whole })), model.graph.name);
    disposeModel(model);
  }
  assert.ok(workerExamples() > byWorkers, "the worker threads computed some of the examples");
  setKernelThreads(1);
  x.dispose();
});

test("a split batch's claims: whole tiles of examples, a chunk while much is left, then shrinking to a tile, every example once", () => {
  const n = 1000;
  const classes = 10;
  const data = new SharedArrayBuffer(EXAMPLES_AT + n * classes * 4);
  const part = { data, shape: [n, 28, 28, 1], outOffset: EXAMPLES_AT, chunk: 128, threads: 2 };
  const claims: [number, number][] = [];
  claimExamples(part, (first, count) => {
    claims.push([first, count]);
    return new Float32Array(count * classes).fill(first);
  });
  assert.deepEqual(
    claims.map(([, count]) => count),
    [128, 128, 128, 128, 128, 96, 72, 48, 40, 32, 24, 16, 8, 8, 8, 8],
  );
  let next = 0;
  for (const [first, count] of claims) {
    assert.equal(first, next, "claims in order, none skipped or taken twice");
    next += count;
  }
  assert.equal(next, n);
  assert.ok(claims.every(([, count]) => count % 8 === 0) || n % 8 !== 0);
  assert.deepEqual(new Float32Array(data, EXAMPLES_AT + 999 * classes * 4, classes), new Float32Array(classes).fill(992), "logits in place");
  assert.equal(exampleClaim(0, n, 128, 2), 128);
  assert.equal(exampleClaim(996, n, 128, 2), 8, "at least a tile");
});

test("a split forward pass sends the weights to the workers once, and again only once a weight changed: the logits always the whole forward's", async () => {
  await initBackend("wasm", { quiet: true });
  const n = 2 * MIN_SPLIT_EXAMPLES;
  const x = tf.tensor4d(data.train.images.subarray(0, n * 784), [n, 28, 28, 1]);
  const model = createModel(PAPER_CNN, 11);
  setKernelThreads(2);
  await whenInferenceWorkersReady(60_000);
  const logitsNow = () => {
    const before = splitPredictions();
    const logits = inferenceForward(model.graph, model.params, x);
    assert.equal(splitPredictions() - before, 1, "split");
    const whole = tf.tidy(() => forward(model.graph, model.params, x));
    assert.equal(digest({ split: logits.dataSync() as Float32Array }), digest({ split: whole.dataSync() as Float32Array }));
    tf.dispose([logits, whole]);
  };
  const sent = splitWeightsSent();
  logitsNow();
  logitsNow();
  assert.equal(splitWeightsSent() - sent, 1, "the same weights: sent with the first batch only");
  const kernel = Object.keys(model.params).find((name) => name.endsWith("kernel")) as string;
  (model.params[kernel] as tf.Variable).assign(tf.mul(model.params[kernel], 0.5));
  logitsNow();
  assert.equal(splitWeightsSent() - sent, 2, "a weight assigned: sent again, and the workers compute with it");
  logitsNow();
  assert.equal(splitWeightsSent() - sent, 2);
  setKernelThreads(1);
  disposeModel(model);
  x.dispose();
});

test("calibration times a batch as it runs: one that is split by examples on this thread alone, a smaller one on the kernel threads", async () => {
  await initBackend("wasm", { quiet: true });
  const weights = sparsePaperCnn(4);
  setKernelThreads(2);
  const calibrate = (calibrationBatch: number) => {
    const [products, convolutions] = [threadedProducts(), splitConvolutions()];
    compileSparseModel(PAPER_CNN, weights, { calibrationBatch, calibrationRepeats: 1 }).dispose();
    return { products: threadedProducts() - products, convolutions: splitConvolutions() - convolutions };
  };
  assert.deepEqual(calibrate(MIN_SPLIT_EXAMPLES), { products: 0, convolutions: 0 }, "a split batch's parts run alone: timed alone");
  assert.ok(calibrate(MIN_SPLIT_EXAMPLES - 1).products > 0, "a batch that runs whole uses the kernel threads: timed with them");
  setKernelThreads(1);
});

test("inference's convolution (tfjs's FusedConv2D) split by images between threads: the same outputs with 1, 2 and 3 threads", async () => {
  await initBackend("wasm", { quiet: true });
  const [batch, filterShape] = [301, [3, 3, 32, 64] as [number, number, number, number]]; // 3 threads: parts of 100, 100, 101
  assert.ok(batch * 11 * 11 * 3 * 3 * 32 * 64 >= MIN_SPLIT_MACS, "large enough to be split");
  const x = tf.randomNormal([batch, 13, 13, 32], 0, 1, "float32", 1) as tf.Tensor4D;
  const filter = tf.randomNormal(filterShape, 0, 1, "float32", 2) as tf.Tensor4D;
  const bias = tf.randomNormal([64], 0, 1, "float32", 3);
  const outputs: string[] = [];
  for (const n of THREADS) {
    setKernelThreads(n);
    await whenSplitWorkersReady(60_000);
    assert.ok(n === 1 || splitWorkersReady(), `${n} threads: the workers' backends did not start within a minute`);
    const before = splitConvolutions();
    const y = tf.fused.conv2d({ x, filter, bias, activation: "relu", strides: 1, pad: "valid" });
    outputs.push(digest({ y: y.dataSync() as Float32Array }));
    y.dispose();
    assert.equal(splitConvolutions() - before, n > 1 ? 1 : 0, `${n} threads: split ${n > 1 ? "once" : "never"}`);
  }
  setKernelThreads(1);
  tf.dispose([x, filter, bias]);
  assert.deepEqual(outputs, Array(THREADS.length).fill(outputs[0]));
});

test("tfjs's heap made shared gives the bits of tfjs's own heap (training steps of the paper CNN, one thread each)", async () => {
  // Two processes: one starts the wasm backend as fwprune does (a shared heap), one as plain tfjs does. Records and the
  // run cache computed before the heap was shared stay valid only if every bit agrees.
  const dist = path.join(__dirname, "..", "dist");
  const script = (shared: boolean) => `
    const tf = require("@tensorflow/tfjs");
    require("@tensorflow/tfjs-backend-wasm");
    const { createHash } = require("node:crypto");
    const lib = require(${JSON.stringify(dist)});
    const kernels = require(${JSON.stringify(path.join(dist, "kernels"))});
    lib.setKernelThreads(1);
    // fwprune's kernels registered after plain tfjs started: too late to share its heap.
    const start = ${shared} ? lib.initBackend("wasm", { quiet: true }) : tf.setBackend("wasm").then(() => kernels.registerWasmKernels());
    start.then(() => {
      const data = lib.loadDataset({ name: "mnist-embedded", limitTrain: 3 * 64, limitTest: 10 });
      const model = lib.createModel(lib.PAPER_CNN, 7);
      const optimizer = new kernels.FusedMomentumOptimizer(0.01, 0.9);
      for (let s = 0; s < 3; s++) {
        const x = tf.tensor4d(data.train.images.subarray(s * 64 * 784, (s + 1) * 64 * 784), [64, 28, 28, 1]);
        const y = tf.tensor1d(data.train.labels.subarray(s * 64, (s + 1) * 64), "int32");
        lib.trainStep(model, optimizer, x, y);
        tf.dispose([x, y]);
      }
      const weights = lib.getWeights(model);
      const hash = createHash("sha256");
      for (const name of Object.keys(weights).sort()) hash.update(name).update(Buffer.from(weights[name].buffer, weights[name].byteOffset, weights[name].byteLength));
      console.log(JSON.stringify({ shared: kernels.sharedHeapOf(tf.backend()) !== undefined, digest: hash.digest("hex") }));
    });`;
  const run = async (shared: boolean) => {
    const child = spawn(process.execPath, ["-e", script(shared)], { stdio: ["ignore", "pipe", "inherit"], cwd: path.join(__dirname, "..") });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    assert.equal(code, 0, out);
    return JSON.parse(out.trim()) as { shared: boolean; digest: string };
  };
  const [fwprune, plain] = await Promise.all([run(true), run(false)]);
  assert.equal(fwprune.shared, true, "fwprune's start must share tfjs's heap");
  assert.equal(plain.shared, false, "plain tfjs's start must keep its own heap");
  assert.equal(fwprune.digest, plain.digest);
});

test("thread counts: a clear error for anything but a positive whole number", () => {
  assert.equal(parseThreads("--threads", "3"), 3);
  for (const bad of ["0", "-1", "1.5", "", "two"]) assert.throws(() => parseThreads("--threads", bad), /--threads: got .*; expected a positive whole number/);
  assert.throws(() => setKernelThreads(0), /expected a positive whole number/);
  assert.equal(notebookConfig({ FWPRUNE_THREADS: "2" }).threads, 2);
  assert.equal(notebookConfig({}).threads, undefined);
  assert.throws(() => notebookConfig({ FWPRUNE_THREADS: "0" }), /FWPRUNE_THREADS: got "0"; expected a positive whole number/);
});

test("a CLI run with 2 threads exits by itself and leaves no process behind", async () => {
  const cli = path.join(__dirname, "..", "dist", "cli.js");
  const child = spawn(process.execPath, [cli, "bench", "--threads", "2", "--samples", "2000", "--json"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  assert.equal(code, 0, out);
  assert.equal(JSON.parse(out.trim()).threads, 2);
  // worker_threads live inside the process: once it has exited, nothing of it is left (no child, no zombie).
  assert.throws(() => process.kill(child.pid!, 0), /ESRCH/);
});

test("Ctrl-C stops a process training on 2 threads at once", async () => {
  // Training steps that yield to the event loop between steps, as fwprune run and prune do (bench times a synchronous
  // loop: there, as before threads, Ctrl-C takes effect when the timed loop ends).
  const dist = path.join(__dirname, "..", "dist");
  const script = `
    const tf = require("@tensorflow/tfjs");
    const lib = require(${JSON.stringify(dist)});
    const { FusedMomentumOptimizer } = require(${JSON.stringify(path.join(dist, "kernels"))});
    lib.setKernelThreads(2);
    lib.initBackend("wasm", { quiet: true }).then(async () => {
      const model = lib.createModel(lib.PAPER_CNN, 1);
      const optimizer = new FusedMomentumOptimizer(0.01, 0.9);
      const x = tf.randomUniform([64, 28, 28, 1]);
      const y = tf.zeros([64], "int32");
      for (let step = 0; ; step++) {
        lib.trainStep(model, optimizer, x, y);
        if (step === 2) process.stdout.write("training\\n");
        await new Promise((resolve) => setImmediate(resolve));
      }
    });`;
  const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"], cwd: path.join(__dirname, "..") });
  const exited = new Promise<{ code: number | null; signal: string | null; at: number }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal, at: performance.now() })),
  );
  await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
  const sent = performance.now();
  child.kill("SIGINT");
  const { code, signal, at } = await exited;
  assert.ok(signal === "SIGINT" || code !== 0, `exit code ${code}, signal ${signal}`);
  assert.ok(at - sent < 3000, `took ${(at - sent).toFixed(0)} ms to stop`);
  assert.throws(() => process.kill(child.pid!, 0), /ESRCH/);
});
