import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { datasetFor } from "../src/datasets";
import { ensureBackend } from "../src/experiment/run";
import { layersArtifactsFor } from "../src/inference/export";
import { compileSparseModel } from "../src/inference/sparse-model";
import { evaluatePredictor, flopsOf, layersModelAccuracy, magnitudePruned } from "../src/measure";
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
