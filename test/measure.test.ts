import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { datasetFor } from "../src/datasets";
import { ensureBackend } from "../src/experiment/run";
import { layersArtifactsFor } from "../src/inference/export";
import { compileSparseModel } from "../src/inference/sparse-model";
import { valuesOf } from "../src/kernels";
import { evaluatePredictor, flopsOf, layersModelAccuracy, magnitudePruned, msPerCall, timeInferenceSideBySide } from "../src/measure";
import { PAPER_CNN, createModel, disposeModel, getWeights, modelFromWeights, multiplyAdds } from "../src/model";
import { evaluate } from "../src/train";

test("one measure for any predictor: the model, its sparse compilation and plain tfjs agree; magnitudePruned's zeros, sparsity and FLOPs by hand", async () => {
  await ensureBackend();
  const test = datasetFor({ name: "mnist-embedded", limitTrain: 100, limitTest: 250 }).test;
  const dense = createModel(PAPER_CNN, 3);
  const { pruned, mask, sparsity, flops } = magnitudePruned(PAPER_CNN, getWeights(dense), 0.8);
  disposeModel(dense);
  // By hand: exactly the masked weights are zero; 80% of the prunable weights; FLOPs per kernel from its own zeros.
  let zeros = 0;
  let total = 0;
  for (const [name, m] of Object.entries(mask)) {
    m.forEach((keep, i) => assert.equal(keep === 0, pruned[name][i] === 0, `${name}[${i}]`));
    zeros += m.filter((x) => x === 0).length;
    total += m.length;
  }
  assert.equal(sparsity.zeros, zeros);
  assert.equal(zeros, Math.round(0.8 * total));
  for (const k of multiplyAdds(PAPER_CNN)) {
    const kernelZeros = mask[k.kernel].filter((x) => x === 0).length;
    assert.equal(flops.perLayer[k.kernel].remaining, Math.round(k.multiplyAdds * (1 - kernelZeros / mask[k.kernel].length)));
  }
  assert.deepEqual(flopsOf(PAPER_CNN, sparsity.perLayer), flops);

  const model = modelFromWeights(PAPER_CNN, pruned);
  const sparse = compileSparseModel(PAPER_CNN, pruned, { calibrationBatch: 8, calibrationRepeats: 1 });
  try {
    const reference = evaluate(model, test, 100);
    assert.deepEqual(evaluatePredictor(model, test, 100), reference, "a model goes through evaluate");
    const throughSparse = evaluatePredictor(sparse, test, 100);
    assert.equal(throughSparse.accuracy, reference.accuracy);
    assert.ok(Math.abs(throughSparse.loss - reference.loss) < 1e-4, `${throughSparse.loss} vs ${reference.loss}`);
    const { json, weights } = layersArtifactsFor(PAPER_CNN, pruned);
    assert.equal(await layersModelAccuracy(json, weights, test), reference.accuracy);
    // The predictor is really used: one that always says class 0 scores the share of zeros.
    const zerosShare = test.labels.filter((l) => l === 0).length / test.count;
    assert.equal(evaluatePredictor({ predict: (x) => tf.oneHot(tf.zeros([x.shape[0]], "int32"), 10).toFloat() }, test).accuracy, zerosShare);
  } finally {
    disposeModel(model);
    sparse.dispose();
  }
});

test("msPerCall: warm-up calls untimed, then the clock's time over the timed calls divided by their count", () => {
  // A clock that call i advances by 1 + i ms, so the expected time is known exactly.
  let now = 0;
  const order: number[] = [];
  const call = (i: number) => {
    order.push(i);
    now += 1 + i;
  };
  const ms = msPerCall(call, 4, { warmup: 2, clockMs: () => now });
  assert.deepEqual(order, [0, 1, 0, 1, 2, 3], "warm-up calls 0..1, then timed calls 0..3");
  assert.equal(ms, (1 + 2 + 3 + 4) / 4);
  assert.throws(() => msPerCall(call, 0), /msPerCall calls: got 0; expected an integer ≥ 1/);
});

test("valuesOf: the values of the tensor made inside tf.tidy, read after it, with no tensor left behind", async () => {
  await ensureBackend();
  const x = tf.tensor1d([1, 2, 3]);
  const before = tf.memory().numTensors;
  assert.deepEqual([...valuesOf(() => tf.mul(tf.add(x, 1), 2))], [4, 6, 8]);
  assert.equal(tf.memory().numTensors, before, "the intermediate and the result disposed");
  x.dispose();
});

test("timeInferenceSideBySide: one timing per model, over every batch of the samples asked for", async () => {
  await ensureBackend();
  const test = datasetFor({ name: "mnist-embedded", limitTrain: 100, limitTest: 250 }).test;
  const model = createModel(PAPER_CNN, 1);
  const batchSizes: number[] = [];
  const predictor = { predict: (x: tf.Tensor4D) => (batchSizes.push(x.shape[0]), tf.zeros([x.shape[0], 10])) };
  try {
    const timings = timeInferenceSideBySide([model, predictor], test, { repeats: 2, batchSize: 100, samples: 230 });
    assert.equal(timings.length, 2);
    for (const t of timings) {
      assert.equal(t.seconds.length, 2);
      assert.equal(t.medianSeconds, (t.seconds[0] + t.seconds[1]) / 2);
      assert.equal(t.samplesPerSec, 230 / t.medianSeconds);
    }
    assert.deepEqual(batchSizes, [100, 100, 100, 30, 100, 100, 30], "a warm-up batch, then 230 images in batches of 100, twice");
  } finally {
    disposeModel(model);
  }
});
