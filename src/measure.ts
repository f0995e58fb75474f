import * as tf from "@tensorflow/tfjs-core";
import { Split } from "./data";
import { splitTensors } from "./examples";
import { inferenceForward } from "./inference/split-predict";
import { valuesOf } from "./kernels";
import { Model, ModelLike, multiplyAdds } from "./model";
import { magnitudeMask } from "./prune/magnitude";
import { Mask, SparsityReport, Weights, applyMask, applyMaskToWeights, sparsityOfWeights } from "./prune/mask";
import { Evaluation, evaluate, evaluateLogits } from "./train";

/**
 * Measuring a model, one place for every caller (runs, export, prune, benches, notebooks): its mask applied, its
 * sparsity, its FLOPs, its accuracy and loss through any predictor, and its time (`msPerCall`, and
 * `timeInferenceSideBySide` built on it).
 */
export { applyMask, applyMaskToWeights, sparsityOfWeights };

/** Anything that maps images [n, h, w, c] to logits: a compiled sparse model (src/inference/sparse-model.ts), a tfjs LayersModel. */
export interface Predictor {
  predict(images: tf.Tensor4D): tf.Tensor;
}

/**
 * Milliseconds per call of `call(i)` for i = 0 … calls − 1, after `warmup` untimed calls (i = 0 … warmup − 1), on
 * `clockMs` (default: wall time, performance.now). Every timing of fwprune goes through here.
 */
export function msPerCall(call: (i: number) => unknown, calls: number, opts: { warmup?: number; clockMs?: () => number } = {}): number {
  if (!(Number.isInteger(calls) && calls >= 1)) throw new Error(`msPerCall calls: got ${calls}; expected an integer ≥ 1`);
  const clockMs = opts.clockMs ?? (() => performance.now());
  for (let i = 0; i < (opts.warmup ?? 0); i++) call(i);
  const start = clockMs();
  for (let i = 0; i < calls; i++) call(i);
  return (clockMs() - start) / calls;
}

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
  // tfjs-layers is loaded here, not with this module, which the inference threads load too.
  const { loadLayersModel } = await import("@tensorflow/tfjs-layers");
  const model = await loadLayersModel({
    load: async () => ({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest[0].weights, weightData }),
  });
  try {
    return evaluatePredictor({ predict: (x) => model.predict(x) as tf.Tensor }, split).accuracy;
  } finally {
    model.dispose();
  }
}

export interface InferenceTiming {
  medianSeconds: number;
  seconds: number[];
  samplesPerSec: number;
}

export interface TimingOptions {
  repeats?: number;
  batchSize?: number;
  /** Time the first `samples` images of the split only (default: all of it). */
  samples?: number;
}

/** Median wall time of predicting the split in batches, after one warm-up batch (the protocol's inference time). */
export function timeInference(model: Model, split: Split, opts: TimingOptions = {}): InferenceTiming {
  return timeInferenceSideBySide([model], split, opts)[0];
}

/**
 * Time several models (or predictors) on the same split, interleaved: each repeat times every model once, in a
 * rotating order, so a slow spell on the machine hits them alike and their ratio stays meaningful.
 */
export function timeInferenceSideBySide(models: (Model | Predictor)[], split: Split, opts: TimingOptions = {}): InferenceTiming[] {
  const repeats = opts.repeats ?? 5;
  const batchSize = opts.batchSize ?? 1000;
  const count = Math.min(split.count, opts.samples ?? split.count);
  const shapeFrom = models.find((m): m is Model => "params" in m);
  const data = shapeFrom
    ? splitTensors(shapeFrom.graph, split, "timing")
    : { x: tf.tensor(split.images, [split.count, ...split.shape]), y: tf.tensor1d(split.labels, "int32") };
  const batches: tf.Tensor4D[] = [];
  for (let s = 0; s < count; s += batchSize) batches.push(tf.slice(data.x, s, Math.min(batchSize, count - s)) as tf.Tensor4D);
  const predict = (model: Model | Predictor, xb: tf.Tensor4D) =>
    valuesOf(() => ("params" in model ? inferenceForward(model.graph, model.params, xb) : model.predict(xb)));
  try {
    for (const model of models) predict(model, batches[0]);
    const seconds: number[][] = models.map(() => []);
    for (let r = 0; r < repeats; r++) {
      for (let j = 0; j < models.length; j++) {
        const i = (j + r) % models.length;
        seconds[i].push((msPerCall((b) => predict(models[i], batches[b]), batches.length) * batches.length) / 1000);
      }
    }
    return seconds.map((s) => {
      const medianSeconds = median(s);
      return { medianSeconds, seconds: s, samplesPerSec: count / medianSeconds };
    });
  } finally {
    tf.dispose([data.x, data.y, ...batches]);
  }
}

/** x rounded to `digits` decimals (reports and bench lines). */
export function roundTo(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}
