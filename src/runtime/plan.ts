import type { ActivationName, NodeKind } from "../graph/types";
import type { CheckedNode } from "./graph";
import type { RuntimeMemory } from "./kernels";

/**
 * How the runtime lays out a model's values and the steps that compute them. A value is one node's output for a
 * chunk of tiles of 8 images, in one of two layouts (the channels are the last axis of its shape, the positions the
 * axes before it, S of them):
 * - "tiles": [tile][channel][position][8 images] (an image [h, w, c] is c planes of h·w positions; a vector [f] is f
 *   channels of one position);
 * - "cols": for vectors only, [feature][8·tiles images] (what a dense layer's sparse kernel reads in long runs).
 */
export type Layout = "tiles" | "cols";

export interface Value {
  id: number;
  shape: number[];
  layout: Layout;
}

export const channelsOf = (v: { shape: number[] }) => v.shape[v.shape.length - 1];
export const positionsOf = (v: { shape: number[] }) => v.shape.slice(0, -1).reduce((a, b) => a * b, 1);
/** Floats of one tile (8 images) of a value, in either layout. */
export const tileFloats = (v: { shape: number[] }) => channelsOf(v) * positionsOf(v) * 8;

/**
 * Where a value's channel c of block b starts, and how long its run is: in "tiles", one block per tile, each channel a
 * run of S·8 floats; in "cols", one block, each channel (feature) a run of 8·tiles floats.
 */
export function blocksOf(v: Value, tiles: number): { blocks: number; blockFloats: number; run: number } {
  const run = v.layout === "tiles" ? positionsOf(v) * 8 : tiles * 8;
  return { blocks: v.layout === "tiles" ? tiles : 1, blockFloats: channelsOf(v) * run, run };
}

/** One step of the program: reads its inputs' buffers, writes its output's (pointers into the runtime's memory). */
export interface Op {
  inputs: number[];
  output: number;
  /** Bytes per tile of the scratch buffers it uses (at most two). */
  scratch: number[];
  run(xs: number[], out: number, tiles: number, scratch: number[]): void;
}

export type KernelPath = "sparse" | "none";

/** What a node planner learns of its node and how it adds steps. */
export interface PlanContext {
  node: CheckedNode;
  /** The node's config, with a batch norm folded in (useBias) and a following ReLU fused (activation). */
  config: Record<string, unknown>;
  inputs: Value[];
  mem: RuntimeMemory;
  /** The node's tensor of this role (a folded batch norm already in it), or undefined where it has none. */
  tensor(role: string): Float32Array | undefined;
  /** The node's only reader, if it has exactly one (for fusing a 2×2 max pool into a convolution). */
  soleReader?: CheckedNode;
  /** The value in the layout asked for (a conversion step where it is in the other). */
  as(value: Value, layout: Layout): Value;
  /** A new value computed by one step. */
  emit(inputs: Value[], shape: number[], layout: Layout, run: Op["run"], scratch?: number[]): Value;
  fail(what: string): never;
}

export interface Planned {
  value: Value;
  path: KernelPath;
  /** Kernel weights and the non-zero ones among them (0 for a node without weights). */
  weights?: number;
  nonzeros?: number;
  /** The node's sole reader was computed inside it (a 2×2 max pool in the sparse convolution's kernel). */
  fusedReader?: boolean;
}

export type KindPlanner = (ctx: PlanContext) => Planned;

/** The activations a sparse kernel applies itself; others run as a pass after it. */
export const reluFlag = (a: ActivationName) => (a === "relu" ? 1 : 0);

/** Kinds a batch norm reading only them folds into: the tensor whose last axis makes the output channels. */
export const FOLDS_INTO: Partial<Record<NodeKind, string>> = {
  conv2d: "kernel",
  dense: "kernel",
  "depthwise-conv2d": "depthwise-kernel",
  "separable-conv2d": "pointwise-kernel",
};

export interface Prepared {
  /** Node name → the node whose value it is (a folded batch norm, a fused ReLU, a dropout, a linear activation). */
  alias: Map<string, string>;
  configs: Map<string, Record<string, unknown>>;
  tensors: Map<string, Map<string, Float32Array>>;
}

/**
 * Inference-mode simplifications, as fwprune's compiler makes them (src/inference/fold.ts): a batch norm that alone
 * reads a conv, depthwise, separable or dense layer without an activation is folded into it (w·γ/√(var+ε),
 * (b−mean)·γ/√(var+ε)+β); an activation layer alone reading such a layer without an activation becomes that layer's
 * activation (ReLU in its sparse kernel, the others a pass over its output), and so does one alone reading an add;
 * a dropout is the identity.
 */
export function prepareNodes(nodes: CheckedNode[], values: Map<string, Float32Array>): Prepared {
  const alias = new Map<string, string>();
  const configs = new Map<string, Record<string, unknown>>();
  const tensors = new Map<string, Map<string, Float32Array>>();
  const readers = new Map<string, number>();
  for (const n of nodes) for (const i of n.spec.inputs) readers.set(i, (readers.get(i) ?? 0) + 1);
  const byName = new Map(nodes.map((n) => [n.spec.name, n]));
  const resolve = (name: string) => alias.get(name) ?? name;
  const absorb = (node: string, into: string) => {
    alias.set(node, into);
    readers.set(into, (readers.get(into) ?? 0) - 1 + (readers.get(node) ?? 0));
  };
  for (const n of nodes) {
    configs.set(n.spec.name, { ...(n.spec.config as Record<string, unknown>) });
    tensors.set(n.spec.name, new Map(n.params.map((p) => [p.role, values.get(p.name) as Float32Array])));
    const from = n.spec.inputs.length === 1 ? resolve(n.spec.inputs[0]) : undefined;
    const producer = from === undefined ? undefined : byName.get(from);
    const role = producer && FOLDS_INTO[producer.spec.kind];
    const linearSoleProducer = role !== undefined && readers.get(from!) === 1 && configs.get(from!)!.activation === "linear";
    const kind = n.spec.kind;
    const activation = (n.spec.config as { activation?: string }).activation;
    if (kind === "dropout" || (kind === "activation" && activation === "linear")) {
      absorb(n.spec.name, from!);
    } else if (kind === "batch-norm" && linearSoleProducer) {
      foldBatchNorm(tensors.get(from!)!, role!, channelsOf(producer!), tensors.get(n.spec.name)!, (n.spec.config as { epsilon: number }).epsilon);
      configs.get(from!)!.useBias = true;
      absorb(n.spec.name, from!);
    } else if (
      kind === "activation" &&
      (linearSoleProducer || (producer?.spec.kind === "add" && readers.get(from!) === 1 && !configs.get(from!)!.activation))
    ) {
      configs.get(from!)!.activation = activation;
      absorb(n.spec.name, from!);
    }
  }
  return { alias, configs, tensors };
}

function foldBatchNorm(layer: Map<string, Float32Array>, role: string, channels: number, bn: Map<string, Float32Array>, epsilon: number) {
  const get = (r: string, fill: number) => bn.get(r) ?? new Float32Array(channels).fill(fill);
  const [gamma, beta, mean, variance] = [get("gamma", 1), get("beta", 0), get("moving-mean", 0), get("moving-variance", 1)];
  const scale = Array.from(gamma, (g, c) => g / Math.sqrt(variance[c] + epsilon));
  layer.set(
    role,
    (layer.get(role) as Float32Array).map((w, i) => w * scale[i % channels]),
  );
  const bias = layer.get("bias") ?? new Float32Array(channels);
  layer.set(
    "bias",
    Float32Array.from(bias, (b, c) => (b - mean[c]) * scale[c] + beta[c]),
  );
}

/**
 * Buffers for a program: each value gets one from a pool when it is computed, and gives it back after its last
 * reader, so a chain uses two or three buffers and a residual block one or two more. Returns the buffer number of
 * every value.
 */
export function assignBuffers(ops: Op[], input: number, output: number): { bufferOf: Map<number, number>; buffers: number } {
  const lastUse = new Map<number, number>();
  ops.forEach((op, i) => op.inputs.forEach((v) => lastUse.set(v, i)));
  lastUse.set(output, ops.length);
  const bufferOf = new Map<number, number>([[input, 0]]);
  const free: number[] = [];
  let buffers = 1;
  ops.forEach((op, i) => {
    bufferOf.set(op.output, free.pop() ?? buffers++);
    for (const v of new Set(op.inputs)) if (lastUse.get(v) === i) free.push(bufferOf.get(v) as number);
  });
  return { bufferOf, buffers };
}
