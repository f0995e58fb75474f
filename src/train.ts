import * as tf from "@tensorflow/tfjs-core";
import { Split, pixelsPerImage } from "./data";
import { FusedMomentumOptimizer, filledTensor } from "./kernels";
import { Identity, containerProblem, readContainer, writeContainer } from "./container";
import { checkSplitFits, splitTensors } from "./examples";
import { SerializedGraph, deserializeGraph, serializeGraph } from "./graph";
import { Model, ModelLike, ModelSpec, Params, forward, modelFromWeights, trainableVariables } from "./model";
import { inferenceForward } from "./inference/split-predict";
import { Mask } from "./prune/mask";
import { deriveSeed, shuffledIndices } from "./random";

export type LossKind = "crossentropy" | "mse";

/** Mean loss of logits against integer labels: softmax cross-entropy, or squared error of softmax vs one-hot. */
export function lossOf(logits: tf.Tensor2D, labels: tf.Tensor1D, kind: LossKind = "crossentropy"): tf.Scalar {
  return tf.tidy(() => {
    const onehot = tf.oneHot(labels, logits.shape[1]);
    if (kind === "crossentropy") return tf.losses.softmaxCrossEntropy(onehot, logits) as tf.Scalar;
    return tf.mean(tf.sum(tf.square(tf.sub(tf.softmax(logits), onehot)), 1)) as tf.Scalar;
  });
}

/** Thrown when the training loss stops being finite; the runner records the run as failed with this message. */
export class DivergenceError extends Error {}

export interface BatchInfo {
  epoch: number;
  batch: number;
  batches: number;
  loss: number;
}
export interface EpochInfo {
  epoch: number;
  meanLoss: number;
  seconds: number;
  model: Model;
}

/** A loss this many times above max(first minibatch's loss, 1) is divergence, even while still finite. */
export const DIVERGENCE_FACTOR = 100;

export interface TrainOptions {
  epochs: number;
  /** Train on exactly this many samples instead (as many epochs as that takes, the last one partial). */
  samples?: number;
  batchSize?: number;
  lr?: number;
  momentum?: number;
  seed: number;
  /** Held fixed: pruned weights are zeroed after every optimizer step, so momentum cannot revive them. */
  mask?: Mask;
  /** Epoch numbering starts here (1-based); it also picks the shuffling of each epoch. */
  firstEpoch?: number;
  /** Separates the shuffling streams of different phases (pre-training vs retraining). */
  streamLabel?: string;
  onBatch?: (info: BatchInfo) => void;
  onEpoch?: (info: EpochInfo) => void | Promise<void>;
}

export interface TrainResult {
  epochLosses: number[];
  samples: number;
  seconds: number;
}

export interface Batches {
  x: tf.Tensor4D;
  y: tf.Tensor1D;
  count: number;
}

/** Keep pruned weights at exactly zero: w ← w ⊙ mask, for every kernel the mask names. */
export function applyMaskInPlace(model: Model, maskTensors: Record<string, tf.Tensor>): void {
  tf.tidy(() => {
    for (const [name, m] of Object.entries(maskTensors)) model.params[name].assign(tf.mul(model.params[name], m));
  });
}

export function maskToTensors(model: Model, mask: Mask): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [name, values] of Object.entries(mask)) {
    const v = model.params[name];
    if (!v) throw new Error(`mask names "${name}", which is not a parameter of ${model.graph.name}`);
    if (values.length !== v.size) throw new Error(`mask["${name}"] has ${values.length} entries; expected ${v.size}`);
    out[name] = tf.tensor(values, v.shape);
  }
  return out;
}

/**
 * One SGD step on a minibatch in training mode (BN on batch statistics, its moving statistics updated after the
 * step; dropout seeded by `seed`); only trainable parameters are updated. Returns the minibatch loss (before the update).
 */
export function trainStep(model: Model, optimizer: tf.Optimizer, xb: tf.Tensor, yb: tf.Tensor1D, maskTensors?: Record<string, tf.Tensor>, seed = 0): number {
  const statUpdates: Record<string, tf.Tensor> = {};
  const logits = () => forward(model.graph, model.params, xb, { training: true, seed, statUpdates });
  // The fused optimizer masks as it updates (its update may wait for a deferred gradient; a multiply after it would not).
  const masksInUpdate = maskTensors !== undefined && optimizer instanceof FusedMomentumOptimizer;
  if (masksInUpdate) optimizer.holdAtZero(new Map(Object.entries(maskTensors).map(([name, m]) => [model.params[name].name, m])));
  let loss: tf.Scalar;
  try {
    loss = optimizer.minimize(() => lossOf(logits(), yb), true, trainableVariables(model)) as tf.Scalar;
  } finally {
    if (masksInUpdate) optimizer.holdAtZero();
  }
  for (const [name, value] of Object.entries(statUpdates)) model.params[name].assign(value);
  tf.dispose(Object.values(statUpdates));
  const value = loss.dataSync()[0];
  loss.dispose();
  if (maskTensors && !masksInUpdate) applyMaskInPlace(model, maskTensors);
  return value;
}

/** Train for opts.epochs with minibatch SGD (momentum), seeded shuffling per epoch; throws DivergenceError on NaN. */
let lastYield = 0;
/**
 * Let timers and I/O run (lock renewal, progress, IPC) at most every 100 ms: a training loop that never awaits
 * would starve them for a whole epoch.
 */
export async function yieldNow(): Promise<void> {
  const now = performance.now();
  if (now - lastYield < 100) return;
  lastYield = now;
  await new Promise((resolve) => setImmediate(resolve));
}

/**
 * The minibatch of examples `idx`, copied out in JavaScript: tf.gather over the whole split on wasm costs about
 * 1.3 ms per batch of 64 (about 5% of a training step), the copy a few microseconds. On wasm the images are copied
 * straight onto tfjs's heap (filledTensor): a fresh array for each batch cost a quick preset's run about 7,000 page
 * faults, a tenth of a second on a machine where each one takes 11 µs.
 */
export function minibatch(split: Split, idx: Int32Array): [tf.Tensor4D, tf.Tensor1D] {
  const size = pixelsPerImage(split.shape);
  const images = filledTensor([idx.length, ...split.shape], (values) =>
    idx.forEach((example, j) => values.set(split.images.subarray(example * size, (example + 1) * size), j * size)),
  );
  const labels = Int32Array.from(idx, (example) => split.labels[example]);
  return [images as tf.Tensor4D, tf.tensor1d(labels, "int32")];
}

export async function train(model: Model, split: Split, opts: TrainOptions): Promise<TrainResult> {
  const batchSize = opts.batchSize ?? 64;
  // tf.train.momentum's update, fused into one kernel per variable on wasm.
  const optimizer = new FusedMomentumOptimizer(opts.lr ?? 0.01, opts.momentum ?? 0.9);
  checkSplitFits(model.graph, split, "train");
  const stream = opts.streamLabel ?? "train";
  const maskTensors = opts.mask ? maskToTensors(model, opts.mask) : undefined;
  if (maskTensors) applyMaskInPlace(model, maskTensors);
  const firstEpoch = opts.firstEpoch ?? 1;
  const total = opts.samples ?? opts.epochs * split.count;
  if (!(Number.isInteger(total) && total >= 0)) throw new Error(`train: samples must be an integer ≥ 0, got ${total}`);
  const epochs = Math.ceil(total / split.count);
  const epochLosses: number[] = [];
  const start = performance.now();
  let consumed = 0;
  let limit: number | undefined;
  try {
    for (let epoch = firstEpoch; epoch < firstEpoch + epochs; epoch++) {
      const epochStart = performance.now();
      const order = shuffledIndices(split.count, deriveSeed(opts.seed, `${stream}/shuffle/${epoch}`));
      const inEpoch = Math.min(split.count, total - consumed);
      const batches = Math.ceil(inEpoch / batchSize);
      let sum = 0;
      for (let b = 0; b < batches; b++) {
        const idx = order.subarray(b * batchSize, Math.min(inEpoch, (b + 1) * batchSize));
        const [xb, yb] = minibatch(split, idx);
        const loss = trainStep(model, optimizer, xb, yb, maskTensors, deriveSeed(opts.seed, `${stream}/dropout/${epoch}/${b}`));
        tf.dispose([xb, yb]);
        limit ??= DIVERGENCE_FACTOR * Math.max(loss, 1);
        if (!Number.isFinite(loss) || loss > limit) {
          const why = Number.isFinite(loss) ? `${loss.toPrecision(3)}, more than ${DIVERGENCE_FACTOR}× max(its first minibatch's, 1)` : String(loss);
          throw new DivergenceError(`training loss became ${why} at epoch ${epoch}, batch ${b + 1}/${batches} (lr ${opts.lr ?? 0.01})`);
        }
        consumed += idx.length;
        sum += loss;
        opts.onBatch?.({ epoch, batch: b + 1, batches, loss });
        await yieldNow();
      }
      epochLosses.push(sum / batches);
      await opts.onEpoch?.({ epoch, meanLoss: sum / batches, seconds: (performance.now() - epochStart) / 1000, model });
    }
  } finally {
    optimizer.dispose();
    if (maskTensors) tf.dispose(Object.values(maskTensors));
  }
  return { epochLosses, samples: consumed, seconds: (performance.now() - start) / 1000 };
}

export interface Evaluation {
  accuracy: number;
  loss: number;
}

/** Accuracy and mean cross-entropy over a whole split, in batches. */
export function evaluate(model: Model, split: Split, batchSize = 1000): Evaluation {
  return evaluateParams(model.graph, model.params, split, batchSize);
}

/** Accuracy and mean cross-entropy (on the logits) over a whole split, in batches, in inference mode. */
export function evaluateParams(spec: ModelLike, params: Params, split: Split, batchSize = 1000): Evaluation {
  return evaluateLogits((x) => inferenceForward(spec, params, x), splitTensors(spec, split, "evaluate"), split.count, batchSize);
}

/** Accuracy and mean cross-entropy of any function to logits over a split's tensors (disposed here), in batches. */
export function evaluateLogits(logitsOf: (x: tf.Tensor) => tf.Tensor2D, data: { x: tf.Tensor; y: tf.Tensor1D }, count: number, batchSize = 1000): Evaluation {
  let correct = 0;
  let lossSum = 0;
  try {
    for (let start = 0; start < count; start += batchSize) {
      const size = Math.min(batchSize, count - start);
      const [c, l] = tf.tidy(() => {
        const xb = tf.slice(data.x, start, size);
        const yb = tf.slice(data.y, [start], [size]);
        const logits = logitsOf(xb);
        const hits = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), yb), "float32"));
        return [hits.dataSync()[0], lossOf(logits, yb).dataSync()[0] * size];
      });
      correct += c;
      lossSum += l;
    }
  } finally {
    tf.dispose([data.x, data.y]);
  }
  return { accuracy: correct / count, loss: lossSum / count };
}

/**
 * A checkpoint is a container file (src/container.ts) of kind "checkpoint": the model's weights as tf.io encodes
 * them, its spec and `meta` in the header, and its identity (in a sweep's cache: the pre-training key and epoch),
 * every byte under one SHA-256. Written atomically.
 */
export async function saveCheckpoint(file: string, model: Model, identity: Identity = {}, meta: Record<string, unknown> = {}): Promise<void> {
  await writeContainer(file, "checkpoint", identity, model.params, { ...layersInfo(model), meta });
}

/** What a container's header keeps of a model's layers: a config model's spec; a model from elsewhere (an imported model.json), its graph. */
export function layersInfo(model: Model): { spec: ModelSpec } | { graph: SerializedGraph } {
  return model.spec ? { spec: model.spec } : { graph: serializeGraph(model.graph) };
}

/** The layers a container's header describes (see layersInfo). */
export function layersOfInfo(info: Record<string, unknown>): ModelLike {
  const { spec, graph } = info as { spec?: ModelSpec; graph?: SerializedGraph };
  return spec ?? deserializeGraph(graph as SerializedGraph);
}

export interface Checkpoint {
  model: Model;
  meta: Record<string, unknown>;
  identity: Identity;
}

const checkpointExpected = (identity?: Identity) => ({ kind: "checkpoint", identity });

/** Why a checkpoint file cannot be trusted (missing, truncated, corrupt, another's), or undefined when it is intact. */
export function checkpointProblem(file: string, identity?: Identity): string | undefined {
  try {
    readContainer(file, checkpointExpected(identity));
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Why a checkpoint's bytes (read from `file`) cannot be trusted, or undefined when they are intact. */
export function checkpointBytesProblem(buf: Uint8Array, file: string, identity?: Identity): string | undefined {
  return containerProblem(buf, file, checkpointExpected(identity));
}

/** A checkpoint, verified; with `identity`, it must say it is that one (e.g. {pretrainKey, epoch}). Throws naming the file. */
export function loadCheckpoint(file: string, identity?: Identity): Checkpoint {
  const { header, arrays } = readContainer(file, checkpointExpected(identity));
  const meta = header.info.meta as Record<string, unknown>;
  return { model: modelFromWeights(layersOfInfo(header.info), arrays as Record<string, Float32Array>), meta, identity: header.identity };
}
