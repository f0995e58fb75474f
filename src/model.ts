import * as tf from "@tensorflow/tfjs-core";
import { ModelGraph, Params, ParamInfo, asGraph, forward, kernelFlops, paramCount } from "./graph";
import { deriveSeed, mulberry32 } from "./random";

export { Params, forward };

export type Activation = "relu" | "linear";
export type LayerSpec =
  | { type: "conv2d"; filters: number; kernelSize: number; stride?: number; padding?: "valid" | "same"; activation?: Activation }
  | { type: "maxpool"; size: number }
  | { type: "flatten" }
  | { type: "dense"; units: number; activation?: Activation };

/**
 * How weights start. "glorot-uniform": kernels U(±√(6/(fan_in + fan_out))), biases 0 (the Keras default, which the
 * paper's Keras-style code implies; our protocol's choice). "pytorch-default": kernels and biases U(±1/√fan_in)
 * (PyTorch's Conv2d/Linear default). FW's achieved sparsity depends on it: the layers' relative scale moves the
 * magnitude start mask and the spread of θ ⊙ ∇L.
 */
export type InitScheme = "glorot-uniform" | "pytorch-default";
export const INIT_SCHEMES: readonly InitScheme[] = ["glorot-uniform", "pytorch-default"];

/** A feed-forward CNN: input [H, W, C] → layers → logits over numClasses (softmax lives in the loss). */
export interface ModelSpec {
  name: string;
  inputShape: [number, number, number];
  layers: LayerSpec[];
  /** Default "glorot-uniform". */
  init?: InitScheme;
}

/** The paper CNN as our protocol fixes it (notebooks/PROTOCOL.md): 225,034 parameters. The last Dense(10) yields logits; softmax is in the loss. */
export const PAPER_CNN: ModelSpec = {
  name: "paper-cnn",
  inputShape: [28, 28, 1],
  layers: [
    { type: "conv2d", filters: 32, kernelSize: 3, activation: "relu" },
    { type: "maxpool", size: 2 },
    { type: "conv2d", filters: 64, kernelSize: 3, activation: "relu" },
    { type: "maxpool", size: 2 },
    { type: "flatten" },
    { type: "dense", units: 128, activation: "relu" },
    { type: "dense", units: 10 },
  ],
  init: "glorot-uniform",
};

/**
 * A model: its graph and its parameters by name (graph.params order): trainable variables, and BN's moving
 * statistics as non-trainable variables.
 */
export interface Model {
  graph: ModelGraph;
  params: Record<string, tf.Variable>;
  /** The sequential spec the model was built from, where it was (configs' models); see specOf. */
  spec?: ModelSpec;
}

/** A model, a graph or a spec: whatever describes the layers. */
export type ModelLike = ModelGraph | ModelSpec;

export interface ParamShape {
  name: string;
  shape: number[];
  /** Conv, depthwise, pointwise and dense kernels are prunable; biases and BN's parameters are not. */
  prunable: boolean;
  fanIn: number;
  fanOut: number;
  /** Multiply-adds per weight per input image: a conv kernel's output positions, 1 for a dense kernel or a bias. */
  uses: number;
}

/** The name and shape of every parameter, in order; throws on a spec that does not fit. */
export function paramShapes(model: ModelLike): ParamShape[] {
  return asGraph(model).params.map((p) => ({
    name: p.name,
    shape: p.shape,
    prunable: p.prunable,
    fanIn: p.fanIn,
    fanOut: p.fanOut,
    uses: p.prunable ? p.uses : 1,
  }));
}

export function prunableNames(model: ModelLike): string[] {
  return asGraph(model)
    .params.filter((p) => p.prunable)
    .map((p) => p.name);
}

/** Multiply-adds per input image of each prunable kernel (conv: output positions × kernel volume; dense: in × out). */
export function multiplyAdds(model: ModelLike): { kernel: string; weights: number; multiplyAdds: number }[] {
  return kernelFlops(asGraph(model));
}

export function countParams(model: ModelLike): number {
  return paramCount(asGraph(model));
}

/** The sequential spec of a model built from one; structured methods and the sparse compiler still need it. */
export function specOf(model: Model): ModelSpec {
  if (!model.spec) {
    throw new Error(
      `model "${model.graph.name}" was not built from a sequential ModelSpec; this step works on config models (the paper CNN family) only for now`,
    );
  }
  return model.spec;
}

function modelOf(model: ModelLike, params: Record<string, tf.Variable>): Model {
  return "nodes" in model ? { graph: model, params } : { graph: asGraph(model), params, spec: model };
}

function initialValue(p: ParamInfo, kernelFanIn: number, init: InitScheme, seed: number): Float32Array {
  const values = new Float32Array(p.size);
  if (p.role === "gamma" || p.role === "moving-variance") return values.fill(1);
  if (p.role === "beta" || p.role === "moving-mean") return values;
  const limit = init === "pytorch-default" ? 1 / Math.sqrt(kernelFanIn) : p.prunable ? Math.sqrt(6 / (p.fanIn + p.fanOut)) : 0;
  if (limit > 0) {
    const rand = mulberry32(deriveSeed(seed, `init/${p.name}`));
    for (let i = 0; i < p.size; i++) values[i] = (2 * rand() - 1) * limit;
  }
  return values;
}

/**
 * Seeded initial weights: kernels by the init scheme (a spec's own, else `init`, default Glorot-uniform), biases 0
 * (pytorch-default: U(±1/√fan_in) of their layer's kernel), BN's γ and moving variance 1, β and moving mean 0. Same
 * seed, same weights.
 */
export function createModel(model: ModelLike, seed: number, init?: InitScheme): Model {
  const scheme = init ?? ("nodes" in model ? undefined : model.init) ?? "glorot-uniform";
  if (!INIT_SCHEMES.includes(scheme)) throw new Error(`model.init: expected one of ${INIT_SCHEMES.join(", ")}, got ${JSON.stringify(scheme)}`);
  const graph = asGraph(model);
  const params: Record<string, tf.Variable> = {};
  let kernelFanIn = 1;
  for (const p of graph.params) {
    if (p.prunable) kernelFanIn = p.fanIn;
    params[p.name] = newVariable(p, initialValue(p, kernelFanIn, scheme, seed));
  }
  return modelOf(model, params);
}

let nextId = 0;
/** A variable holding these values (tf.variable copies its initial tensor, which tidy then frees); BN's moving statistics are not trainable. */
function newVariable(p: ParamInfo, values: Float32Array): tf.Variable {
  return tf.tidy(() => tf.variable(tf.tensor(values, p.shape), p.trainable, `${p.name}-${nextId++}`));
}

/** Build a model from plain weight arrays (a checkpoint, a pruned copy). */
export function modelFromWeights(model: ModelLike, weights: Record<string, Float32Array>): Model {
  const graph = asGraph(model);
  for (const p of graph.params) {
    const values = weights[p.name];
    if (!values || values.length !== p.size) {
      throw new Error(`weights["${p.name}"]: expected ${p.size} values of shape [${p.shape}], got ${values ? values.length : "none"}`);
    }
  }
  const params: Record<string, tf.Variable> = {};
  for (const p of graph.params) params[p.name] = newVariable(p, weights[p.name]);
  return modelOf(model, params);
}

export function getWeights(model: Model): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const [name, v] of Object.entries(model.params)) out[name] = v.dataSync() as Float32Array;
  return out;
}

export function cloneModel(model: Model): Model {
  return modelFromWeights(model.spec ?? model.graph, getWeights(model));
}

export function disposeModel(model: Model): void {
  for (const v of Object.values(model.params)) v.dispose();
}

/** The variables an optimizer updates: every parameter but BN's moving statistics. */
export function trainableVariables(model: Model): tf.Variable[] {
  return model.graph.params.filter((p) => p.trainable).map((p) => model.params[p.name]);
}
