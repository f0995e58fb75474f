import * as tf from "@tensorflow/tfjs-core";
import { GraphNode, NodeKind, ParamRole } from "../graph";
import type { NodeOf } from "../graph/kind";
import { Csr, csrFromDense } from "./csr";
import { Layout, SparseWeights, convPoolSparse, convSparse, denseSparse, maxPoolTiles, tilesToCols } from "./layouts";

/**
 * What the sparse compiler knows about node kinds beyond the graph's own table (src/graph/kinds.ts): the one place
 * it is keyed by kind. Every node without an entry here runs its kind's own forward on tfjs's layout.
 */

/** Kinds a batch norm reading only them folds into: the parameter whose last axis makes the output channels. */
export const BN_FOLDS: Partial<Record<NodeKind, ParamRole>> = {
  conv2d: "kernel",
  dense: "kernel",
  "depthwise-conv2d": "depthwise-kernel",
  "separable-conv2d": "pointwise-kernel",
};

export interface SparseKernel {
  /** The layout it reads and writes. */
  layout: Exclude<Layout, "std">;
  /** Why the node cannot take the sparse path (undefined where it can). */
  unsupported(node: GraphNode, input: number[]): string | undefined;
  /** Its kernel [..., inputs, outputs] as CSR over outputs, each weight at the element it reads of an input example in `layout`. */
  csr(node: GraphNode, kernel: Float32Array, input: number[]): Csr;
  run(weights: SparseWeights, node: GraphNode, input: number[], x: tf.Tensor): tf.Tensor;
  /** The same with the 2×2 stride-2 max pool after it computed in the kernel (only the pooled values written). */
  runPooled?(weights: SparseWeights, node: GraphNode, input: number[], x: tf.Tensor): tf.Tensor;
}

const reluOrLinear = (a: string) => a === "relu" || a === "linear";

export const SPARSE_KERNELS: Partial<Record<NodeKind, SparseKernel>> = {
  conv2d: {
    layout: "tiles",
    unsupported: (node, input) => {
      const c = (node as NodeOf<"conv2d">).config;
      const ok =
        c.padding === "valid" &&
        c.strides[0] === 1 &&
        c.strides[1] === 1 &&
        c.kernelSize[0] === c.kernelSize[1] &&
        reluOrLinear(c.activation) &&
        input.length === 3;
      return ok ? undefined : "the sparse kernel runs valid stride-1 convolutions with a square kernel and a relu or linear activation only";
    },
    csr: (node, kernel, [h, w, c]) => {
      const k = (node as NodeOf<"conv2d">).config.kernelSize[0];
      // row = (dy·k + dx)·c + ci of the [k, k, c, co] kernel → element (ci·h + dy)·w + dx of an input tile plane
      return csrFromDense(kernel, k * k * c, node.outputShape[2], (row) => {
        const ci = row % c;
        const dx = Math.floor(row / c) % k;
        const dy = Math.floor(row / (c * k));
        return (ci * h + dy) * w + dx;
      });
    },
    run: (weights, node, input, x) => convSparse(weights, input, node.outputShape, x),
    runPooled: (weights, node, input, x) => convPoolSparse(weights, input, (node as NodeOf<"conv2d">).config.kernelSize[0], node.outputShape[2], x),
  },
  dense: {
    layout: "cols",
    unsupported: (node, input) =>
      input.length === 1 && reluOrLinear((node as NodeOf<"dense">).config.activation)
        ? undefined
        : "the sparse kernel runs dense layers on flat features with a relu or linear activation only",
    csr: (node, kernel, [inputs]) => csrFromDense(kernel, inputs, node.outputShape[0], (row) => row),
    run: (weights, node, _input, x) => denseSparse(weights, node.outputShape[0], x),
  },
};

/** Nodes that can also run on a sparse layout: from `from` to `to`, where `accepts` the node. */
export interface LayoutStep {
  from: Exclude<Layout, "std">;
  to: Exclude<Layout, "std">;
  accepts(node: GraphNode): boolean;
  run(x: tf.Tensor): tf.Tensor;
  /** A sparse conv read only by this node may compute it itself (runPooled). */
  fusesIntoConv?: boolean;
}

const pool2x2 = (node: GraphNode) => {
  const c = (node as NodeOf<"max-pool">).config;
  return c.poolSize.every((s) => s === 2) && c.strides.every((s) => s === 2) && c.padding === "valid";
};

export const LAYOUT_STEPS: Partial<Record<NodeKind, LayoutStep>> = {
  "max-pool": { from: "tiles", to: "tiles", accepts: pool2x2, run: maxPoolTiles, fusesIntoConv: true },
  flatten: { from: "tiles", to: "cols", accepts: () => true, run: tilesToCols },
};

/** Kinds computed value by value (their forward works on any layout, all inputs in the same one), where `accepts`. */
export const ELEMENTWISE: Partial<Record<NodeKind, (node: GraphNode) => boolean>> = {
  activation: (node) => (node as NodeOf<"activation">).config.activation !== "softmax",
  dropout: () => true,
  add: () => true,
};

/** A batch norm, which folds into the node before it (BN_FOLDS) in inference. */
export const isBatchNorm = (node: GraphNode): node is GraphNode & NodeOf<"batch-norm"> => node.kind === "batch-norm";
