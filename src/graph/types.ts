/** The model graph's types: a small DAG of typed nodes in topological order (see src/graph/kinds.ts for each kind). */

export type ActivationName = "relu" | "relu6" | "linear" | "softmax" | "sigmoid" | "tanh";
export const ACTIVATIONS: readonly ActivationName[] = ["relu", "relu6", "linear", "softmax", "sigmoid", "tanh"];
export type Padding = "valid" | "same";

/** Each node kind's own configuration (Keras's layer config, in our names; pairs are [height, width]). */
export interface NodeConfigs {
  input: { shape: number[] };
  conv2d: { filters: number; kernelSize: [number, number]; strides: [number, number]; padding: Padding; useBias: boolean; activation: ActivationName };
  "depthwise-conv2d": {
    kernelSize: [number, number];
    strides: [number, number];
    padding: Padding;
    depthMultiplier: number;
    useBias: boolean;
    activation: ActivationName;
  };
  "separable-conv2d": {
    filters: number;
    kernelSize: [number, number];
    strides: [number, number];
    padding: Padding;
    depthMultiplier: number;
    useBias: boolean;
    activation: ActivationName;
  };
  /** Normalizes the last axis: Keras's axis, -1 or the last axis's index counting the batch axis. */
  "batch-norm": { axis: number; momentum: number; epsilon: number; center: boolean; scale: boolean };
  dense: { units: number; useBias: boolean; activation: ActivationName };
  activation: { activation: ActivationName };
  "max-pool": { poolSize: [number, number]; strides: [number, number]; padding: Padding };
  "avg-pool": { poolSize: [number, number]; strides: [number, number]; padding: Padding };
  "global-avg-pool": Record<string, never>;
  "global-max-pool": Record<string, never>;
  flatten: Record<string, never>;
  /** The output shape without the batch axis; one entry may be -1 (inferred). */
  reshape: { targetShape: number[] };
  dropout: { rate: number };
  add: Record<string, never>;
  /** Concatenates along the last axis. */
  concatenate: Record<string, never>;
}
export type NodeKind = keyof NodeConfigs;

/** A node as written: what a model is, before shapes and parameters are inferred. */
export type NodeSpec = {
  [K in NodeKind]: {
    name: string;
    kind: K;
    /** The names of the nodes feeding this one, in order (none for the input). */
    inputs: string[];
    config: NodeConfigs[K];
    /** The Keras class this node came from or exports as, where a kind has several (Activation vs ReLU). */
    kerasClass?: string;
  };
}[NodeKind];

export type ParamRole = "kernel" | "depthwise-kernel" | "pointwise-kernel" | "bias" | "gamma" | "beta" | "moving-mean" | "moving-variance";

/** tfjs's weight-name suffix of each role: `<layer>/<suffix>`. */
export const ROLE_SUFFIX: Record<ParamRole, string> = {
  kernel: "kernel",
  "depthwise-kernel": "depthwise_kernel",
  "pointwise-kernel": "pointwise_kernel",
  bias: "bias",
  gamma: "gamma",
  beta: "beta",
  "moving-mean": "moving_mean",
  "moving-variance": "moving_variance",
};

export function paramName(node: string, role: ParamRole): string {
  return `${node}/${ROLE_SUFFIX[role]}`;
}

/** One parameter tensor of a node. Its name is `<node>/<suffix>` with tfjs's suffix (kernel, depthwise_kernel, ...). */
export interface ParamInfo {
  name: string;
  node: string;
  role: ParamRole;
  shape: number[];
  size: number;
  /** Conv, depthwise, pointwise and dense kernels. */
  prunable: boolean;
  /** Everything but BN's moving statistics. */
  trainable: boolean;
  /** Glorot's fans (Keras's rule: receptive field × input or output channels); 0 for non-kernels. */
  fanIn: number;
  fanOut: number;
  /** Multiply-adds per weight per example (a conv kernel's output positions; 1 for a dense kernel); 0 for non-kernels. */
  uses: number;
}

/** A node with its inferred output shape (without the batch axis) and its parameters. */
export type GraphNode = NodeSpec & { outputShape: number[]; params: ParamInfo[] };

export interface ModelGraph {
  name: string;
  /** Topological order: every node's inputs come before it; the first node is the input. */
  nodes: GraphNode[];
  /** How it exports to Keras: a Sequential (only for a chain) or a functional Model. */
  form: "sequential" | "functional";
  input: string;
  output: string;
  /**
   * The node whose output, without its own softmax activation, the loss is taken on: the output node, or the input
   * of a final softmax activation layer.
   */
  logits: string;
  /** Every parameter, in node order (the order of checkpoints and weight files). */
  params: ParamInfo[];
}

/** A graph as plain JSON: its nodes as written (no inferred shapes), enough to build it again. */
export interface SerializedGraph {
  name: string;
  form: "sequential" | "functional";
  nodes: NodeSpec[];
}

/** Bounds a graph must fit, checked before anything is allocated (see src/graph/bounds.ts). */
export interface GraphLimits {
  maxLayers: number;
  maxParams: number;
  /** Values of all node outputs of one example together. */
  maxActivationsPerExample: number;
  /** Values of one input example. */
  maxInputSize: number;
}
