import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { heapBuffer, pointer } from "../kernels/simd";
import { kernelThreads, onThisThreadAlone } from "../kernels/threads";
import { WorkerPool, openSlot, waitForWorkers, workerPool, workersReady } from "../kernels/worker-pool";
import { ModelGraph, asGraph } from "../graph";
import { ModelLike, Params, forward } from "../model";
import type { PreparedGraph } from "./fold";
import { TILE } from "./layouts";
import type { LayerPath } from "./program";

/**
 * Inference with the batch split by examples between this thread and worker threads: a compiled sparse model's
 * predict, and a graph's forward pass in inference mode. Each worker runs tfjs's wasm backend of its own with
 * fwprune's kernels on one thread (split-predict-worker.ts); it compiles a sparse model's program once from the same
 * folded weights and paths, and gets a graph's weights with each batch. Every example's logits are computed alone (the
 * sparse kernels keep examples in separate lanes, the dense kernels compute each output row or pixel alone, batch norm
 * uses its moving statistics), so a part of the batch gives the bits of the whole; test/kernel-threads.test.ts checks
 * it. Only the examples and their logits cross, in a SharedArrayBuffer per worker. Until the workers' backends are up
 * (they start at the first large batch), and for small batches, the batch runs whole on this thread.
 */

/** Examples below which a batch runs whole: a worker's round trip costs about what a few examples take. */
export const MIN_SPLIT_EXAMPLES = 64;

/** What a worker needs to compile a model's program: the folded graph and weights, and each layer's path. */
export interface SplitModel {
  id: number;
  prepared: PreparedGraph;
  paths: [string, LayerPath][];
}

/** Messages to a worker (split-predict-worker.ts answers predictions and forward passes through the control block). */
export type SplitMessage =
  | { kind: "model"; model: SplitModel }
  | { kind: "drop"; id: number }
  | ({ kind: "predict"; id: number } & Part)
  | ({ kind: "forward"; graph: ModelGraph; weights: Record<string, Float32Array> } & Part);

// From the TypeScript sources (the tests run them through tsx), the worker needs tsx's hook to load them.
const WORKER_SOURCE = `
const { workerData, parentPort } = require("node:worker_threads");
if (workerData.tsxPath) require(workerData.tsxPath);
require(workerData.modulePath).serveSplitPredict(workerData, parentPort);
`;

const workers = workerPool(WORKER_SOURCE, () => {
  const modulePath = require.resolve("./split-predict-worker");
  return { modulePath, tsxPath: modulePath.endsWith(".ts") ? require.resolve("tsx/cjs") : undefined };
});

/** The models each pool's workers have compiled. */
const compiledBy = new WeakMap<WorkerPool, Set<number>>();
function modelsOf(p: WorkerPool): Set<number> {
  let models = compiledBy.get(p);
  if (!models) compiledBy.set(p, (models = new Set()));
  return models;
}

/**
 * Start the workers for the current thread count, if any, and wait until their backends are up (at most `timeoutMs`),
 * so that a timing that follows measures split predictions from the first batch.
 */
export const whenInferenceWorkersReady = (timeoutMs?: number) => workers.whenReady(timeoutMs);

let predictionsSplit = 0;
/** How many batches ran split so far (tests check that the split path did run). */
export function splitPredictions(): number {
  return predictionsSplit;
}

/** Forget a disposed model in the workers. */
export function dropSplitModel(id: number): void {
  const p = workers.running();
  if (!p || !modelsOf(p).has(id)) return;
  for (const worker of p.workers) worker.postMessage({ kind: "drop", id } satisfies SplitMessage);
  modelsOf(p).delete(id);
}

/** Where a part of the batch goes and its logits come back: examples at 0 in `data`, logits at `outOffset`. */
interface Part {
  data: SharedArrayBuffer;
  shape: number[];
  outOffset: number;
}

/**
 * A compiled model's logits for examples x [n, ...] with the batch split between the threads, `whole` computing a part on
 * this thread; undefined where it does not pay (one thread, a small batch, workers not yet up, another backend) or a
 * worker failed.
 */
export function splitPredict(model: SplitModel, x: tf.Tensor, whole: (x: tf.Tensor) => tf.Tensor2D): tf.Tensor2D | undefined {
  return splitBatch(model.prepared.graph, x, whole, (p) => {
    if (!modelsOf(p).has(model.id)) {
      for (const worker of p.workers) worker.postMessage({ kind: "model", model } satisfies SplitMessage);
      modelsOf(p).add(model.id);
    }
    return (part) => ({ kind: "predict", id: model.id, ...part });
  });
}

/**
 * A graph's forward pass in inference mode, forward(graph, params, x), with the batch split between the threads (the
 * weights sent along with each batch: they may change between calls); undefined where it does not pay.
 */
export function splitForward(graph: ModelGraph, params: Params, x: tf.Tensor, whole: (x: tf.Tensor) => tf.Tensor2D): tf.Tensor2D | undefined {
  return splitBatch(graph, x, whole, () => {
    const weights = Object.fromEntries(graph.params.map((p) => [p.name, params[p.name].dataSync() as Float32Array]));
    return (part) => ({ kind: "forward", graph, weights, ...part });
  });
}

/** forward(model, params, x) in inference mode (the logits), its batch split between the threads where that pays. */
export function inferenceForward(model: ModelLike, params: Params, x: tf.Tensor): tf.Tensor2D {
  const whole = (part: tf.Tensor) => forward(model, params, part);
  return splitForward(asGraph(model), params, x, whole) ?? whole(x);
}

function splitBatch(
  graph: ModelGraph,
  x: tf.Tensor,
  whole: (x: tf.Tensor) => tf.Tensor2D,
  prepare: (p: WorkerPool) => (part: Part) => SplitMessage,
): tf.Tensor2D | undefined {
  const n = x.shape[0];
  if (kernelThreads() <= 1 || n < MIN_SPLIT_EXAMPLES || x.dtype !== "float32" || tf.getBackend() !== "wasm") return undefined;
  const p = workers.current();
  if (!p || !workersReady(p)) return undefined;
  const logitsNode = graph.nodes.find((node) => node.name === graph.logits);
  if (!logitsNode) return undefined;
  const classes = logitsNode.outputShape.reduce((a, b) => a * b, 1);
  const threads = p.workers.length + 1;
  // Whole tiles of examples per worker (the sparse kernels' unit); this thread takes what is left.
  const per = Math.ceil(n / threads / TILE) * TILE;
  const cuts = Array.from({ length: threads }, (_, i) => Math.min(n, i * per));
  const perExample = x.size / n;
  const request = prepare(p);
  const backend = tf.backend() as BackendWasm;
  predictionsSplit++;
  const outOffsets = p.workers.map((worker, i) => {
    const count = cuts[i + 1] - cuts[i];
    openSlot(p, i, count === 0);
    if (count === 0) return 0;
    const outOffset = count * perExample * 4;
    const needed = outOffset + count * classes * 4;
    if (p.data[i].byteLength < needed) p.data[i] = new SharedArrayBuffer(needed);
    // Straight from tfjs's heap: a copy out of a shared heap (dataSync) costs more than a plain one.
    const examples = new Float32Array(heapBuffer(backend), pointer(backend, x) + cuts[i] * perExample * 4, count * perExample);
    new Float32Array(p.data[i], 0, count * perExample).set(examples);
    worker.postMessage(request({ data: p.data[i], shape: [count, ...x.shape.slice(1)], outOffset }));
    return outOffset;
  });
  const mine = cuts[threads - 1];
  const part = mine < n ? onThisThreadAlone(() => tf.tidy(() => whole(tf.slice(x, mine, n - mine)))) : undefined;
  const partValues = part?.dataSync() as Float32Array | undefined;
  part?.dispose();
  if (waitForWorkers(p)) {
    workers.stop();
    return undefined;
  }
  const logits = new Float32Array(n * classes);
  p.workers.forEach((_, i) => {
    const count = cuts[i + 1] - cuts[i];
    if (count > 0) logits.set(new Float32Array(p.data[i], outOffsets[i], count * classes), cuts[i] * classes);
  });
  if (partValues) logits.set(partValues, mine * classes);
  return tf.tensor2d(logits, [n, classes]);
}
