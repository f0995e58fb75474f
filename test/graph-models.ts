// Models for the graph tests, built with plain tfjs, and their model.json + weights as tfjs's model.save writes them.
import * as tf from "@tensorflow/tfjs";
import { mulberry32 } from "../src/random";

export interface Saved {
  json: { modelTopology: unknown; weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[]; format?: string };
  weights: Uint8Array;
}

/** model.json (one weights file, "weights.bin") and the weight bytes, through tf.io.withSaveHandler. */
export async function saveLayersModel(model: tf.LayersModel): Promise<Saved> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      saved = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
    }),
  );
  const a = saved as tf.io.ModelArtifacts;
  return {
    json: { format: "layers-model", modelTopology: a.modelTopology, weightsManifest: [{ paths: ["weights.bin"], weights: a.weightSpecs ?? [] }] },
    weights: new Uint8Array(a.weightData as ArrayBuffer),
  };
}

/** Plain tfjs loading a model.json + weights from memory, as a user without tfjs-node does. */
export function loadInTfjs(
  json: { modelTopology: unknown; weightsManifest: { weights: tf.io.WeightsManifestEntry[] }[] },
  weights: Uint8Array,
): Promise<tf.LayersModel> {
  const data = weights.slice().buffer;
  return tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology as tf.io.ModelJSON["modelTopology"],
      weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
      weightData: data,
    }),
  );
}

/** Replace every weight by seeded random values (moving variances positive), so BN and biases matter. */
export function randomizeWeights(model: tf.LayersModel, seed: number): void {
  const rand = mulberry32(seed);
  const values = model.weights.map((w) => {
    const positive = w.originalName.endsWith("moving_variance");
    const data = Float32Array.from({ length: w.shape.reduce((a, b) => (a as number) * (b as number), 1) as number }, () =>
      positive ? 0.5 + rand() : (rand() - 0.5) * 0.8,
    );
    return tf.tensor(data, w.shape as number[]);
  });
  model.setWeights(values);
  tf.dispose(values);
}

/** A depthwise-separable CNN as a Sequential, with nearly every node kind. */
export function sequentialModel(inputShape: [number, number, number] = [12, 12, 3], classes = 10, name = "seq-dw"): tf.Sequential {
  return tf.sequential({
    name,
    layers: [
      tf.layers.conv2d({ name: "stem", inputShape, filters: 6, kernelSize: [3, 2], strides: 2, padding: "same", useBias: false, activation: "relu6" }),
      tf.layers.batchNormalization({ name: "stem_bn", momentum: 0.9, epsilon: 1e-3 }),
      tf.layers.reLU({ name: "stem_relu" }),
      tf.layers.depthwiseConv2d({ name: "dw", kernelSize: 3, padding: "same", depthMultiplier: 2, activation: "relu" }),
      tf.layers.batchNormalization({ name: "dw_bn", center: false }),
      tf.layers.separableConv2d({ name: "sep", filters: 8, kernelSize: 3, padding: "valid", activation: "tanh" }),
      tf.layers.maxPooling2d({ name: "pool", poolSize: 3, strides: 1, padding: "same" }),
      tf.layers.averagePooling2d({ name: "avg", poolSize: 2, strides: 2, padding: "valid" }),
      tf.layers.dropout({ name: "drop", rate: 0.25 }),
      tf.layers.flatten({ name: "flat" }),
      tf.layers.dense({ name: "fc", units: 16, activation: "sigmoid" }),
      tf.layers.reshape({ name: "reshape", targetShape: [4, 4] }),
      tf.layers.flatten({ name: "flat2" }),
      tf.layers.dense({ name: "logits", units: classes }),
      tf.layers.activation({ name: "probs", activation: "softmax" }),
    ],
  });
}

/** A residual block with BN, a depthwise branch and both global pools, as a functional model. */
export function functionalModel(inputShape: [number, number, number] = [10, 10, 3], classes = 5, name = "res-bn", stemStride = 1): tf.LayersModel {
  const x = tf.input({ shape: inputShape, name: "image" });
  const a = tf.layers.conv2d({ name: "c1", filters: 8, kernelSize: 3, strides: stemStride, padding: "same", activation: "relu" }).apply(x) as tf.SymbolicTensor;
  let b = tf.layers.conv2d({ name: "c2", filters: 8, kernelSize: 3, padding: "same", useBias: false }).apply(a) as tf.SymbolicTensor;
  b = tf.layers.batchNormalization({ name: "bn2" }).apply(b) as tf.SymbolicTensor;
  let r = tf.layers.add({ name: "residual" }).apply([a, b]) as tf.SymbolicTensor;
  r = tf.layers.activation({ name: "act", activation: "relu" }).apply(r) as tf.SymbolicTensor;
  let d = tf.layers.depthwiseConv2d({ name: "dw", kernelSize: 3, strides: 2, padding: "same", useBias: false }).apply(r) as tf.SymbolicTensor;
  d = tf.layers.batchNormalization({ name: "dw_bn", scale: false }).apply(d) as tf.SymbolicTensor;
  d = tf.layers.reLU({ name: "dw_relu6", maxValue: 6 }).apply(d) as tf.SymbolicTensor;
  const p = tf.layers.separableConv2d({ name: "pw", filters: 12, kernelSize: 1, depthMultiplier: 1 }).apply(d) as tf.SymbolicTensor;
  const g1 = tf.layers.globalAveragePooling2d({ name: "gap" }).apply(p) as tf.SymbolicTensor;
  const g2 = tf.layers.globalMaxPooling2d({ name: "gmp" }).apply(r) as tf.SymbolicTensor;
  const cat = tf.layers.concatenate({ name: "cat" }).apply([g1, g2]) as tf.SymbolicTensor;
  const drop = tf.layers.dropout({ name: "drop", rate: 0.5 }).apply(cat) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: "head", units: classes, activation: "softmax" }).apply(drop) as tf.SymbolicTensor;
  return tf.model({ name, inputs: x, outputs: out });
}

/** max |a − b| / max |b|: the relative error of a whole output. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  if (a.length !== b.length) return Infinity;
  return diff / Math.max(scale, 1e-30);
}
