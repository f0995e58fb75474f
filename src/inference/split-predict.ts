import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { valuesOf } from "../kernels/deferred";
import { heapBuffer, pointer } from "../kernels/simd";
import { kernelThreads, onThisThreadAlone } from "../kernels/threads";
import { WorkerPool, openSlot, waitForWorkers, workerPool, workersReady } from "../kernels/worker-pool";
import { ModelGraph, asGraph } from "../graph";
import { ModelLike, Params, forward } from "../model";
import type { PreparedGraph } from "./fold";
import { TILE } from "./layouts";
import type { LayerPath } from "./program";

/**
 * Inference with the batch split by examples between this thread and worker threads: a compiled sparse model's predict,
 * and a graph's forward pass in inference mode. Each worker runs tfjs's wasm backend of its own with fwprune's kernels
 * on one thread (split-predict-worker.ts); it compiles a sparse model's program once from the same folded weights and
 * paths, and a graph's weights with its first batch (again only once they changed). Every example's logits are computed
 * alone (the sparse kernels keep examples in separate lanes, the dense kernels compute each output row or pixel alone,
 * batch norm uses its moving statistics), so a part of the batch gives the bits of the whole;
 * test/kernel-threads.test.ts checks it. Only the examples and their logits cross, in one SharedArrayBuffer, from which
 * every thread claims whole tiles of examples until none is left. Until the workers' backends are up (they start at the
 * first large batch, or with a run: startInferenceWorkers), and for small batches, the batch runs whole on this thread.
 */

/** Examples below which a batch runs whole: a worker's round trip costs about what a few examples take. */
export const MIN_SPLIT_EXAMPLES = 64;

/**
 * Whether a batch of n examples runs split between the threads (once the workers are up), each part on its thread
 * alone; else it runs whole on this thread, its kernels threaded.
 */
export const splitsBatchesOf = (n: number) => kernelThreads() > 1 && n >= MIN_SPLIT_EXAMPLES && tf.getBackend() === "wasm";

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
  | ({ kind: "forward"; id: number; graph?: ModelGraph; weights?: Record<string, Float32Array> } & Part)
  | { kind: "drop-weights"; id: number };

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

/** What each pool's workers hold, made on first use: a new pool (after a failure) holds nothing. */
function perPool<T>(make: () => T): (p: WorkerPool) => T {
  const by = new WeakMap<WorkerPool, T>();
  return (p) => {
    let held = by.get(p);
    if (held === undefined) by.set(p, (held = make()));
    return held;
  };
}

/** The models each pool's workers have compiled. */
const modelsOf = perPool(() => new Set<number>());

/**
 * Start the workers for the current thread count, if any, and wait until their backends are up (at most `timeoutMs`),
 * so that a timing that follows measures split predictions from the first batch.
 */
export const whenInferenceWorkersReady = (timeoutMs?: number) => workers.whenReady(timeoutMs);

/**
 * Start the workers now (where inference would split: wasm, more than one thread) without waiting: their backends
 * come up in the background, on a core this thread leaves idle while it reads data, instead of at the first large
 * batch, beside the kernel threads.
 */
export function startInferenceWorkers(): void {
  if (tf.getBackend() === "wasm") workers.current();
}

let predictionsSplit = 0;
/** How many batches ran split so far (tests check that the split path did run). */
export function splitPredictions(): number {
  return predictionsSplit;
}

let examplesByWorkers = 0;
/** How many examples of split batches the worker threads computed so far (tests check that they took part). */
export function workerExamples(): number {
  return examplesByWorkers;
}

/** Forget a disposed model in the workers. */
export function dropSplitModel(id: number): void {
  const p = workers.running();
  if (!p || !modelsOf(p).has(id)) return;
  for (const worker of p.workers) worker.postMessage({ kind: "drop", id } satisfies SplitMessage);
  modelsOf(p).delete(id);
}

/**
 * A batch shared by the threads: `data` holds the next example to claim (an Int32 at 0), the examples from
 * EXAMPLES_AT and the logits from `outOffset`. Each thread claims examples (whole tiles), `chunk` at a time while much
 * is left and fewer towards the end (exampleClaim), until none is left, a worker after its own first chunk: a thread on
 * a slower or busier core takes fewer.
 */
export interface Part {
  data: SharedArrayBuffer;
  shape: number[];
  outOffset: number;
  chunk: number;
  /** The threads that claim (this one and the workers). */
  threads: number;
  /** A worker's own first chunk, from this example on (claimed for it in advance), before it claims others. */
  own?: number;
}

/** Where a shared batch's examples start in its buffer (after the claim counter, 16 bytes for alignment). */
export const EXAMPLES_AT = 16;

/** Claims per thread of a batch, at most: the finer, the better balanced, but each claim is a forward pass of its own. */
const CLAIMS_PER_THREAD = 4;

/**
 * Examples a claim from example `first` of n takes: `chunk` while much is left, then a share of what is left (half of it
 * split between the threads), in whole tiles of examples. With claims of a fixed quarter of a thread's share, this
 * thread waited about half a claim for the worker's last one: 8 ms a batch of 1,000 of the paper CNN's dense forward.
 */
export function exampleClaim(first: number, n: number, chunk: number, threads: number): number {
  return Math.min(chunk, Math.max(TILE, Math.ceil((n - first) / (2 * threads) / TILE) * TILE));
}

/**
 * Claim examples of a shared batch until none is left, computing each claim's logits with `logitsOf(first, count)`
 * (count × classes values) and writing them in place (this thread and split-predict-worker.ts run it alike).
 */
export function claimExamples(part: Part, logitsOf: (first: number, count: number) => Float32Array): void {
  const counters = new Int32Array(part.data, 0, 2); // the next example to claim; examples computed by workers
  const n = part.shape[0];
  const claim = (): [number, number] => {
    for (;;) {
      const first = Atomics.load(counters, 0);
      if (first >= n) return [first, 0];
      const size = exampleClaim(first, n, part.chunk, part.threads);
      if (Atomics.compareExchange(counters, 0, first, first + size) === first) return [first, size];
    }
  };
  for (let [first, size] = part.own !== undefined ? [part.own, part.chunk] : claim(); first < n; [first, size] = claim()) {
    const count = Math.min(size, n - first);
    if (part.own !== undefined) Atomics.add(counters, 1, count);
    const logits = logitsOf(first, count);
    const classes = logits.length / count;
    new Float32Array(part.data, part.outOffset + first * classes * 4, logits.length).set(logits);
  }
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
 * The weights each pool's workers hold for forward passes, latest last: the graph and the data ids of the tensors they
 * were read from. A tensor's data never changes (a variable's data id does when it is assigned), so the same graph
 * with the same data ids has the same weights.
 */
interface HeldWeights {
  id: number;
  graph: ModelGraph;
  dataIds: object[];
}
const weightsOf = perPool((): HeldWeights[] => []);
/** Weight sets a worker holds at most (a run times two dense models side by side). */
const HELD_WEIGHTS = 3;
let nextWeightsId = 0;
let weightsSent = 0;
/** How many times a forward pass's weights were sent to the workers (tests check that they are sent once). */
export const splitWeightsSent = (): number => weightsSent;

/**
 * A graph's forward pass in inference mode, forward(graph, params, x), with the batch split between the threads;
 * undefined where it does not pay. The weights go to the workers with the first batch of a graph and params' data,
 * and again only once their data changed: sending them with every batch (a copy, a structured clone, the worker's
 * tensors) kept this thread waiting for the worker 4–5 ms a batch of 1,000 of the paper CNN.
 */
export function splitForward(graph: ModelGraph, params: Params, x: tf.Tensor, whole: (x: tf.Tensor) => tf.Tensor2D): tf.Tensor2D | undefined {
  return splitBatch(graph, x, whole, (p) => {
    const dataIds = graph.params.map((q) => params[q.name].dataId);
    const held = weightsOf(p);
    const known = held.find((h) => h.graph === graph && h.dataIds.every((d, i) => d === dataIds[i]));
    if (known) return (part) => ({ kind: "forward", id: known.id, ...part });
    const entry = { id: nextWeightsId++, graph, dataIds };
    held.push(entry);
    for (const old of held.splice(0, Math.max(0, held.length - HELD_WEIGHTS))) {
      for (const worker of p.workers) worker.postMessage({ kind: "drop-weights", id: old.id } satisfies SplitMessage);
    }
    const weights = Object.fromEntries(graph.params.map((q) => [q.name, params[q.name].dataSync() as Float32Array]));
    weightsSent++;
    return (part) => ({ kind: "forward", id: entry.id, graph, weights, ...part });
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
  if (!splitsBatchesOf(n) || x.dtype !== "float32") return undefined;
  const p = workers.current();
  if (!p || !workersReady(p)) return undefined;
  const logitsNode = graph.nodes.find((node) => node.name === graph.logits);
  if (!logitsNode) return undefined;
  const classes = logitsNode.outputShape.reduce((a, b) => a * b, 1);
  const threads = p.workers.length + 1;
  // Whole tiles of examples per claim (the sparse kernels' unit).
  const chunk = Math.ceil(n / (threads * CLAIMS_PER_THREAD) / TILE) * TILE;
  const perExample = x.size / n;
  const request = prepare(p);
  const backend = tf.backend() as BackendWasm;
  predictionsSplit++;
  const outOffset = EXAMPLES_AT + n * perExample * 4;
  const needed = outOffset + n * classes * 4;
  if (p.data[0].byteLength < needed) p.data[0] = new SharedArrayBuffer(needed);
  const part: Part = { data: p.data[0], shape: x.shape, outOffset, chunk, threads };
  // Straight from tfjs's heap: a copy out of a shared heap (dataSync) costs more than a plain one.
  new Float32Array(part.data, EXAMPLES_AT, n * perExample).set(new Float32Array(heapBuffer(backend), pointer(backend, x), n * perExample));
  // Each worker's first chunk is its own, so that its round trip overlaps this thread's first claims.
  const counters = new Int32Array(part.data, 0, 2);
  counters.set([Math.min(n, p.workers.length * chunk), 0]);
  p.workers.forEach((worker, i) => {
    openSlot(p, i);
    worker.postMessage(request({ ...part, own: i * chunk }));
  });
  onThisThreadAlone(() =>
    claimExamples(part, (first, count) => {
      return valuesOf(() => whole(tf.slice(x, first, count)));
    }),
  );
  if (waitForWorkers(p)) {
    workers.stop();
    return undefined;
  }
  examplesByWorkers += counters[1];
  return tf.tensor2d(new Float32Array(part.data, outOffset, n * classes).slice(), [n, classes]);
}
