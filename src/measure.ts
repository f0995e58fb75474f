import * as tf from "@tensorflow/tfjs";
import { Split } from "./data";
import { Model, ModelLike, multiplyAdds } from "./model";
import { magnitudeMask } from "./prune/magnitude";
import { Mask, SparsityReport, Weights, applyMask, applyMaskToWeights, sparsityOfWeights } from "./prune/mask";
import { Evaluation, Predictor, evaluate, evaluateLogits, timeInferenceSideBySide } from "./train";

/**
 * Measuring a model, one place for every caller (runs, export, prune, benches, notebooks): its mask applied, its
 * sparsity, its FLOPs, its accuracy and loss through any predictor, and its inference time beside others.
 */
export { applyMask, applyMaskToWeights, sparsityOfWeights, timeInferenceSideBySide };

/**
 * Accuracy and mean cross-entropy over a split, in batches, of a model (through `evaluate`, its input shape checked)
 * or any predictor (a compiled sparse model, a plain tfjs LayersModel), whose output is taken as logits (a softmax
 * head's loss is then not the model's; its accuracy is).
 */
export function evaluatePredictor(predictor: Model | Predictor, split: Split, batchSize = 1000): Evaluation {
  if ("params" in predictor) return evaluate(predictor, split, batchSize);
  const data = { x: tf.tensor(split.images, [split.count, ...split.shape]), y: tf.tensor1d(split.labels, "int32") };
  return evaluateLogits((x) => predictor.predict(x as tf.Tensor4D) as tf.Tensor2D, data, split.count, batchSize);
}

/** Multiply-adds per image of each kernel, dense and on its non-zero weights only (speedup = dense / remaining, the bound). */
export function flopsOf(spec: ModelLike, sparsityPerLayer: Record<string, number>) {
  const perLayer: Record<string, { dense: number; remaining: number }> = {};
  let dense = 0;
  let remaining = 0;
  for (const k of multiplyAdds(spec)) {
    const left = Math.round(k.multiplyAdds * (1 - (sparsityPerLayer[k.kernel] ?? 0)));
    perLayer[k.kernel] = { dense: k.multiplyAdds, remaining: left };
    dense += k.multiplyAdds;
    remaining += left;
  }
  return { dense, remaining, speedup: dense / remaining, perLayer };
}

/** Weights pruned by global magnitude to `sparsity` (exact zeros), their mask, sparsity and FLOPs (benches, the demo). */
export function magnitudePruned(
  spec: ModelLike,
  weights: Weights,
  sparsity: number,
): { pruned: Weights; mask: Mask; sparsity: SparsityReport; flops: ReturnType<typeof flopsOf> } {
  const mask = magnitudeMask(spec, weights, sparsity, "global");
  const pruned = applyMaskToWeights(weights, mask);
  const report = sparsityOfWeights(spec, pruned);
  return { pruned, mask, sparsity: report, flops: flopsOf(spec, report.perLayer) };
}

/** Test accuracy of a layers model loaded by tf.loadLayersModel from memory, as a plain tfjs user would load it. */
export async function layersModelAccuracy(
  json: { modelTopology: object; weightsManifest: { weights: tf.io.WeightsManifestEntry[] }[] },
  weightBytes: Uint8Array,
  split: Split,
): Promise<number> {
  const weightData = weightBytes.buffer.slice(weightBytes.byteOffset, weightBytes.byteOffset + weightBytes.length) as ArrayBuffer;
  const model = await tf.loadLayersModel({
    load: async () => ({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest[0].weights, weightData }),
  });
  try {
    return evaluatePredictor({ predict: (x) => model.predict(x) as tf.Tensor }, split).accuracy;
  } finally {
    model.dispose();
  }
}
