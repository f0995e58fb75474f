import * as tf from "@tensorflow/tfjs-core";
import { ACTIVATIONS, ActivationName, NodeConfigs, NodeKind, NodeSpec, Padding, ParamRole } from "./types";

/** The shape of one kind's definition: everything fwprune knows about a node kind lives in one such object. */

/** A Keras layer config as model.json holds it (snake_case keys). */
export type KerasConfig = Record<string, unknown>;

/** A parameter as a kind declares it; src/graph/graph.ts names it and adds size, prunable and trainable. */
export interface ParamDecl {
  role: ParamRole;
  shape: number[];
  fanIn?: number;
  fanOut?: number;
  uses?: number;
}

export interface ForwardContext {
  training: boolean;
  /** Seeds dropout while training. */
  seed: number;
  /** While training, BN writes its updated moving statistics here (kept tensors, by parameter name). */
  statUpdates?: Record<string, tf.Tensor>;
  /** Set by forward.ts for the node it runs: no other node reads this node's input (batch norm's fused gradient needs it). */
  inputUnshared?: boolean;
}

export type NodeOf<K extends NodeKind> = Extract<NodeSpec, { kind: K }>;

export interface KindDef<K extends NodeKind> {
  /** Keras classes read as this kind; the first is the class it exports as unless the node names another. */
  kerasClasses: readonly string[];
  inputs: "none" | "one" | "many";
  /** Output shape (without batch) from the input shapes; throws naming `where` on a shape that does not fit. */
  outputShape(config: NodeConfigs[K], inputs: number[][], where: string): number[];
  params(config: NodeConfigs[K], inputs: number[][], output: number[]): ParamDecl[];
  forward(node: NodeOf<K>, inputs: tf.Tensor[], param: (role: ParamRole) => tf.Tensor | undefined, ctx: ForwardContext): tf.Tensor;
  /** The node config from a Keras layer config; throws naming `where` on an option fwprune does not implement. */
  fromKeras(className: string, config: KerasConfig, where: string): NodeConfigs[K];
  /** The Keras config (without name) the node exports with. */
  toKeras(node: NodeOf<K>): KerasConfig;
  /** How channels pass through the node, for structured pruning (src/graph/channels.ts). */
  channels: ChannelRule<K>;
}

/**
 * A node's channels are the last axis of its output. `flow` says how they relate to its inputs' channels:
 * - "new": the node makes its own output channels (conv, dense); it reads its input's channels only through `slices`;
 * - "fixed": its channels, in and out, can never be removed (the input; a softmax, which mixes channels);
 * - "pass": `link(input, from, to)` was called for every input channel `from` of input `input` that is output channel
 *   `to` (the same channel: an activation, a pool, BN, a depthwise conv, an Add, a Concatenate, a Flatten).
 */
export interface ChannelRule<K extends NodeKind> {
  flow(config: NodeConfigs[K], inputs: number[][], output: number[], link: (input: number, from: number, to: number) => void): "new" | "fixed" | "pass";
  /** The parameter slices that belong to a channel (none for kinds without parameters). */
  slices?(config: NodeConfigs[K]): ChannelSlice[];
  /** The config with `kept` output channels, for kinds whose config fixes that count (filters, units, a reshape's target). */
  narrow?(config: NodeConfigs[K], kept: number): NodeConfigs[K];
}

/**
 * Along `axis` of the parameter with role `role`, index k belongs to channel ⌊k / per⌋ of the node's input (its
 * first) or of its output. `produces`: the slice computes the channel (a filter, a bias, BN's scale and shift), rather
 * than reading it (the next layer's kernel rows).
 */
export interface ChannelSlice {
  role: ParamRole;
  axis: number;
  side: "input" | "output";
  per?: number;
  produces: boolean;
}

/** Output channel c is input channel c of every input (an elementwise node). */
export function sameChannels(_config: unknown, inputs: number[][], output: number[], link: (input: number, from: number, to: number) => void): "pass" {
  const channels = output[output.length - 1];
  inputs.forEach((_, i) => {
    for (let c = 0; c < channels; c++) link(i, c, c);
  });
  return "pass";
}

export { ROLE_SUFFIX, paramName } from "./types";

export function product(xs: number[]): number {
  return xs.reduce((a, b) => a * b, 1);
}

/** One spatial output size of a conv or pool (TensorFlow's rule). */
export function convOutSize(size: number, kernel: number, stride: number, padding: Padding): number {
  return padding === "valid" ? Math.floor((size - kernel) / stride) + 1 : Math.ceil(size / stride);
}

export function spatialOut(input: number[], kernel: [number, number], strides: [number, number], padding: Padding, where: string): [number, number] {
  if (input.length !== 3) throw new Error(`${where}: expects an image input [height, width, channels], got [${input}]`);
  const h = convOutSize(input[0], kernel[0], strides[0], padding);
  const w = convOutSize(input[1], kernel[1], strides[1], padding);
  if (h < 1 || w < 1) throw new Error(`${where}: output size became ${h}×${w} from input ${input[0]}×${input[1]}; expected ≥ 1`);
  return [h, w];
}

export function activate(x: tf.Tensor, activation: ActivationName): tf.Tensor {
  switch (activation) {
    case "linear":
      return x;
    case "relu":
      return tf.relu(x);
    case "relu6":
      return tf.relu6(x);
    case "sigmoid":
      return tf.sigmoid(x);
    case "tanh":
      return tf.tanh(x);
    case "softmax":
      return tf.softmax(x);
  }
}

/** The part of an activation tfjs's fused conv/matMul ops apply themselves, and the part left to apply after. */
export function splitActivation(a: ActivationName): { fused: "linear" | "relu" | "relu6" | "sigmoid"; after: ActivationName } {
  return a === "softmax" || a === "tanh" ? { fused: "linear", after: a } : { fused: a, after: "linear" };
}

// ---- reading Keras configs ----

export function kerasPair(config: KerasConfig, key: string, where: string, fallback?: [number, number]): [number, number] {
  const v = config[key] ?? fallback;
  const pair = typeof v === "number" ? [v, v] : v;
  if (!Array.isArray(pair) || pair.length !== 2 || !pair.every((n) => Number.isInteger(n) && n >= 1)) {
    throw new Error(`${where}: ${key} must be a positive integer or a pair of them, got ${JSON.stringify(v)}`);
  }
  return [pair[0], pair[1]];
}

export function kerasPositiveInt(config: KerasConfig, key: string, where: string, fallback?: number): number {
  const v = config[key] ?? fallback;
  if (!(typeof v === "number" && Number.isInteger(v) && v >= 1)) throw new Error(`${where}: ${key} must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

export function kerasNumber(config: KerasConfig, key: string, where: string, fallback: number, ok: (n: number) => boolean, expected: string): number {
  const v = config[key] ?? fallback;
  if (!(typeof v === "number" && ok(v))) throw new Error(`${where}: ${key} must be ${expected}, got ${JSON.stringify(v)}`);
  return v;
}

export function kerasBool(config: KerasConfig, key: string, where: string, fallback: boolean): boolean {
  const v = config[key] ?? fallback;
  if (typeof v !== "boolean") throw new Error(`${where}: ${key} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

export function kerasPadding(config: KerasConfig, where: string): Padding {
  const v = config.padding ?? "valid";
  if (v !== "valid" && v !== "same") throw new Error(`${where}: padding must be "valid" or "same", got ${JSON.stringify(v)}`);
  return v;
}

export function kerasActivation(config: KerasConfig, where: string, key = "activation"): ActivationName {
  const v = config[key] ?? "linear";
  if (!ACTIVATIONS.includes(v as ActivationName))
    throw new Error(`${where}: ${key} ${JSON.stringify(v)} is not supported; expected one of ${ACTIVATIONS.join(", ")}`);
  return v as ActivationName;
}

/** Refuse what fwprune does not implement: channels_first data, dilation ≠ 1. */
export function kerasImageLayout(config: KerasConfig, where: string, dilation = false): void {
  const format = config.data_format ?? "channels_last";
  if (format !== "channels_last") throw new Error(`${where}: data_format ${JSON.stringify(format)} is not supported; expected "channels_last"`);
  if (dilation) {
    const d = kerasPair(config, "dilation_rate", where, [1, 1]);
    if (d[0] !== 1 || d[1] !== 1) throw new Error(`${where}: dilation_rate [${d}] is not supported; expected [1, 1]`);
  }
}
