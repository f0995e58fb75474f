import * as tf from "@tensorflow/tfjs-core";
import { ModelGraph, asGraph } from "../graph";
import { registerSparseKernels, sparseKernelsAvailable } from "../kernels/sparse";
import { onThisThreadAlone } from "../kernels/threads";
import type { ModelSpec } from "../model";
import { median, roundTo } from "../measure";
import { PreparedGraph, prepareGraph } from "./fold";
import { SparseWeights, csrTensors } from "./layouts";
import { CompiledGraph, LayerPath, Step, calibrationInputs, calibrationNoise, execute, program } from "./program";
import { SPARSE_KERNELS } from "./sparse-kinds";
import { SplitModel, dropSplitModel, splitPredict, splitsBatchesOf } from "./split-predict";

/**
 * A pruned model compiled for inference: each layer with a sparse kernel (src/inference/sparse-kinds.ts: a valid
 * stride-1 conv, with the 2×2 max pool after it fused in; a dense layer) runs either through tfjs's dense ops (the
 * graph's own forward) or through sparse.wat's sparse product over its non-zero weights, whichever the calibration
 * measured faster, the layout conversions between the two included. Every other node runs its kind's forward; a
 * batch norm after a conv, depthwise or dense layer is folded into it.
 */
export { LayerPath } from "./program";
export { TILE } from "./layouts";

export interface CompileOptions {
  /** Applied to the weights first (pruned weights are exact zeros either way). */
  mask?: Record<string, Float32Array>;
  /** "auto" (default): each layer's path from measured speed; or every layer one way; or per layer name ("conv2"). */
  paths?: "auto" | LayerPath | Record<string, LayerPath>;
  /**
   * Examples per calibration pass (default 256); timings do not depend on the values, so the examples are noise. Timed
   * as a batch of that size runs: from MIN_SPLIT_EXAMPLES on, split between the threads, each part on its thread alone.
   */
  calibrationBatch?: number;
  /** Timed passes per step in calibration (the median counts; default 5). */
  calibrationRepeats?: number;
}

export interface LayerReport {
  /** The node's name: conv1, conv2, dense1, … for a config's model. */
  layer: string;
  path: LayerPath;
  weights: number;
  nonzeros: number;
  /**
   * Calibration (when the layer had a choice): milliseconds per calibration batch of the whole model with this layer
   * on the dense and on the sparse path, every other layer as chosen.
   */
  denseMs?: number;
  sparseMs?: number;
}

export interface StepTiming {
  step: string;
  layer: string;
  ms: number;
}

export interface SparseModel {
  /** The graph as compiled: cut at the logits, batch norms folded. */
  graph: ModelGraph;
  /** The config's spec, for a model compiled from one. */
  spec?: ModelSpec;
  layers: LayerReport[];
  /** Logits [n, classes] for examples [n, ...input shape], as the graph's forward computes them (a large batch split between the kernel threads: split-predict.ts). */
  predict(x: tf.Tensor): tf.Tensor2D;
  /** The same, step by step, with the milliseconds of each step (conversions, layers, pools) for a profile. */
  profile(x: tf.Tensor): StepTiming[];
  dispose(): void;
}

/** Layers with a prunable kernel, and the layer each other node's time counts toward: the last layer before it (or the first after). */
function owners(graph: ModelGraph): { layers: ModelGraph["nodes"]; owner: Map<string, string> } {
  const layers = graph.nodes.filter((n) => n.params.some((p) => p.prunable));
  const owner = new Map<string, string>();
  let last = layers[0]?.name ?? graph.nodes[graph.nodes.length - 1].name;
  for (const n of graph.nodes) {
    if (layers.includes(n)) last = n.name;
    owner.set(n.name, last);
  }
  return { layers, owner };
}

/** The tensors of a folded graph: every parameter, and CSR copies of the kernels that can run sparse. */
export function compileGraph(prepared: PreparedGraph): CompiledGraph {
  const { graph, values } = prepared;
  const params: Record<string, tf.Tensor> = {};
  const sparse = new Map<string, SparseWeights>();
  try {
    for (const p of graph.params) params[p.name] = tf.tensor(values[p.name], p.shape);
    for (const node of graph.nodes) {
      const kernel = SPARSE_KERNELS[node.kind];
      const input = graph.nodes.find((n) => n.name === node.inputs[0])?.outputShape ?? [];
      if (!kernel || kernel.unsupported(node, input) !== undefined) continue;
      const kernelParam = node.params.find((p) => p.prunable);
      const bias = params[`${node.name}/bias`] ?? tf.zeros([node.outputShape[node.outputShape.length - 1]]);
      if (!params[`${node.name}/bias`]) params[`${node.name}/bias(zeros)`] = bias;
      const activation = (node.config as { activation?: string }).activation;
      sparse.set(node.name, {
        csr: csrTensors(kernel.csr(node, values[kernelParam?.name as string], input)),
        bias: bias as tf.Tensor1D,
        relu: activation === "relu",
      });
    }
  } catch (err) {
    tf.dispose([...Object.values(params), ...[...sparse.values()].flatMap((s) => Object.values(s.csr))]);
    throw err;
  }
  return { graph, params, sparse, owner: owners(graph).owner };
}

/** Every tensor a compiled graph holds (to dispose of it). */
export function compiledTensors(c: CompiledGraph): tf.Tensor[] {
  return [...Object.values(c.params), ...[...c.sparse.values()].flatMap((s) => Object.values(s.csr))];
}

let nextModelId = 0;

/** Compiles a model graph (or a config's spec) with its weights: see SparseModel. */
export function compileSparseModel(model: ModelGraph | ModelSpec, weights: Record<string, Float32Array>, opts: CompileOptions = {}): SparseModel {
  const calibrationBatch = opts.calibrationBatch ?? 256;
  const repeats = opts.calibrationRepeats ?? 5;
  if (!Number.isInteger(calibrationBatch) || calibrationBatch < 1 || calibrationBatch > 60000) {
    throw new Error(`calibrationBatch: expected an integer in 1..60000, got ${calibrationBatch}`);
  }
  const requested = opts.paths ?? "auto";
  const available = sparseKernelsAvailable();
  if (requested !== "auto" && requested !== "dense" && !available) {
    throw new Error(`sparse paths need the wasm backend with WebAssembly SIMD; the backend is ${tf.getBackend()}`);
  }
  const graph = asGraph(model);
  const prepared = prepareGraph(graph, weights, opts.mask);
  const fixed = fixedPaths(prepared.graph, requested, available);
  if (available) registerSparseKernels();
  const compiled = compileGraph(prepared);
  const tensors = compiledTensors(compiled);
  try {
    const calibrate = () => choosePaths(compiled, fixed, calibrationBatch, repeats);
    const chosen = splitsBatchesOf(calibrationBatch) ? onThisThreadAlone(calibrate) : calibrate();
    const steps = program(compiled, chosen.paths);
    const { layers } = owners(compiled.graph);
    const split: SplitModel = { id: nextModelId++, prepared, paths: [...chosen.paths] };
    const whole = (x: tf.Tensor) => execute(steps, compiled.graph, x);
    return {
      graph: compiled.graph,
      ...("layers" in model ? { spec: model } : {}),
      layers: layers.map((node) => {
        const kernels = node.params.filter((p) => p.prunable).map((p) => prepared.values[p.name]);
        return {
          layer: node.name,
          path: chosen.paths.get(node.name) ?? "dense",
          weights: kernels.reduce((n, k) => n + k.length, 0),
          nonzeros: kernels.reduce((n, k) => n + k.reduce((z, w) => z + (w !== 0 ? 1 : 0), 0), 0),
          ...chosen.perLayer.get(node.name),
        };
      }),
      predict: (x) => tf.tidy(() => splitPredict(split, x, whole) ?? whole(x)),
      profile(x) {
        const out: StepTiming[] = [];
        tf.tidy(() => void execute(steps, compiled.graph, x, (step, ms) => out.push({ step: step.label, layer: step.layer, ms })));
        return out;
      },
      dispose: () => {
        dropSplitModel(split.id);
        tf.dispose(tensors);
      },
    };
  } catch (err) {
    tf.dispose(tensors);
    throw err;
  }
}

/** The paths the options fix, checked against the graph before any work: every layer's where the choice is not "auto". */
function fixedPaths(graph: ModelGraph, requested: NonNullable<CompileOptions["paths"]>, available: boolean): Map<string, LayerPath> {
  const { layers } = owners(graph);
  const why = (name: string) => {
    const node = layers.find((n) => n.name === name) as ModelGraph["nodes"][number];
    const kernel = SPARSE_KERNELS[node.kind];
    const input = graph.nodes.find((n) => n.name === node.inputs[0])?.outputShape ?? [];
    return kernel ? kernel.unsupported(node, input) : `no sparse kernel runs ${node.kind} nodes`;
  };
  const fixed = new Map<string, LayerPath>();
  if (typeof requested === "object") {
    for (const [name, path] of Object.entries(requested)) {
      if (!layers.some((n) => n.name === name)) throw new Error(`paths["${name}"]: no such layer; expected one of ${layers.map((n) => n.name).join(", ")}`);
      if (path !== "dense" && path !== "sparse") throw new Error(`paths["${name}"]: expected "dense" or "sparse", got ${JSON.stringify(path)}`);
      const reason = path === "sparse" ? why(name) : undefined;
      if (reason) throw new Error(`paths["${name}"]: ${reason}`);
      fixed.set(name, path);
    }
  } else if (requested === "dense" || !available) {
    for (const n of layers) fixed.set(n.name, "dense");
  } else if (requested === "sparse") {
    for (const n of layers) fixed.set(n.name, why(n.name) ? "dense" : "sparse");
  } else if (requested !== "auto") {
    throw new Error(`paths: expected "auto", "dense", "sparse" or an object of layer → path, got ${JSON.stringify(requested)}`);
  }
  for (const n of layers) if (why(n.name)) fixed.set(n.name, "dense");
  return fixed;
}

/** Exhaustive over up to this many free layers (2^n programs, their steps timed once each); coordinate-wise beyond. */
const EXHAUSTIVE_LAYERS = 8;

function choosePaths(c: CompiledGraph, fixed: Map<string, LayerPath>, batch: number, repeats: number) {
  const free = owners(c.graph)
    .layers.map((n) => n.name)
    .filter((name) => !fixed.has(name));
  const perLayer = new Map<string, { denseMs?: number; sparseMs?: number }>();
  let best = new Map([...fixed, ...free.map((name) => [name, "dense"] as const)]);
  if (free.length === 0) return { paths: best, perLayer };
  const memo = new Map<string, number>();
  const noise = calibrationNoise();
  const cost = (paths: Map<string, LayerPath>) => timeSteps(program(c, paths), batch, repeats, memo, noise);
  let bestMs = cost(best);
  const consider = (paths: Map<string, LayerPath>) => {
    const ms = cost(paths);
    if (ms < bestMs) [best, bestMs] = [paths, ms];
  };
  if (free.length <= EXHAUSTIVE_LAYERS) {
    for (let bits = 1; bits < 2 ** free.length; bits++)
      consider(new Map([...best, ...free.map((name, i) => [name, (bits >> i) & 1 ? "sparse" : "dense"] as const)]));
  } else {
    for (const name of free) consider(new Map([...best, [name, best.get(name) === "sparse" ? "dense" : "sparse"]]));
  }
  // What the choice weighed: the whole model's calibration time with each layer on either path, the rest as chosen.
  for (const name of free) {
    const ms = (path: LayerPath) => roundTo(cost(new Map([...best, [name, path]])), 2);
    perLayer.set(name, { denseMs: ms("dense"), sparseMs: ms("sparse") });
  }
  return { paths: best, perLayer };
}

function timeSteps(steps: Step[], n: number, repeats: number, memo: Map<string, number>, noise: (length: number) => Float32Array): number {
  let total = 0;
  for (const step of steps) {
    let ms = memo.get(step.key);
    if (ms === undefined) {
      const xs = calibrationInputs(step, n, noise);
      const once = () => {
        const t0 = performance.now();
        const y = step.run(xs, n);
        const dt = performance.now() - t0;
        if (!xs.includes(y)) tf.dispose(y);
        return dt;
      };
      tf.tidy(() => void once());
      const times: number[] = [];
      for (let r = 0; r < repeats; r++) times.push(tf.tidy(once));
      tf.dispose(xs);
      ms = median(times);
      memo.set(step.key, ms);
    }
    total += ms;
  }
  return total;
}
