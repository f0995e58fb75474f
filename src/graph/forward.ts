import * as tf from "@tensorflow/tfjs-core";
import type { ModelSpec } from "../model";
import { asGraph } from "./from-spec";
import { ForwardContext, paramName } from "./kind";
import { KINDS } from "./kinds";
import { GraphNode, ModelGraph, NodeSpec } from "./types";

export type Params = Record<string, tf.Tensor>;

export interface ForwardOptions {
  /** Training mode: BN normalizes with batch statistics, dropout drops. Default false (inference). */
  training?: boolean;
  /** Seeds dropout in training mode (default 0); give each step its own. */
  seed?: number;
  /** In training mode, BN writes its updated moving statistics here (kept tensors by parameter name; the caller assigns and disposes them). */
  statUpdates?: Record<string, tf.Tensor>;
  /** "logits" (default): the logits node's output without its softmax, what the loss takes; "output": what tfjs's predict gives. */
  output?: "logits" | "output";
}

/** The logits node with its own softmax activation dropped. */
function withoutSoftmax(node: GraphNode): NodeSpec {
  const config = node.config as { activation?: string };
  return config.activation === "softmax" && node.kind !== "activation"
    ? ({ ...node, config: { ...config, activation: "linear" } } as unknown as NodeSpec)
    : node;
}

/**
 * The forward pass: examples [N, ...input shape] → logits (or the output) [N, ...]. Any Params (variables or plain
 * tensors, named as graph.params names them) will do.
 */
export function forward(model: ModelGraph | ModelSpec, params: Params, x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor2D {
  const graph = asGraph(model);
  const inputShape = graph.nodes[0].outputShape;
  if (x.rank !== inputShape.length + 1 || x.shape.slice(1).some((d, i) => d !== inputShape[i])) {
    throw new Error(`forward: model "${graph.name}" takes examples of shape [${inputShape}], got a batch of shape [${x.shape}]`);
  }
  const target = opts.output === "output" ? graph.output : graph.logits;
  const ctx: ForwardContext = { training: opts.training ?? false, seed: opts.seed ?? 0, statUpdates: opts.statUpdates };
  const consumers = new Map<string, number>();
  for (const n of graph.nodes) for (const i of n.inputs) consumers.set(i, (consumers.get(i) ?? 0) + 1);
  return tf.tidy(() => {
    const values = new Map<string, tf.Tensor>([[graph.input, x]]);
    // While gradients are recorded tfjs does not fuse bias and ReLU into the conv; then a conv + ReLU feeding only a
    // max pool pools first: max commutes with the per-channel bias add and with ReLU (both monotonic), so the values
    // are the same, and the bias add, ReLU and their gradients touch fewer values.
    const recording = tf.engine().state.gradientDepth > 0;
    for (let i = 1; i < graph.nodes.length; i++) {
      const node = graph.nodes[i];
      const param = (role: Parameters<typeof paramName>[1]) => {
        const name = paramName(node.name, role);
        if (!node.params.some((p) => p.name === name)) return undefined;
        const t = params[name];
        if (!t) throw new Error(`forward: params["${name}"] is missing`);
        return t;
      };
      const inputs = node.inputs.map((n) => values.get(n) as tf.Tensor);
      const next = graph.nodes[i + 1];
      if (
        recording &&
        node.kind === "conv2d" &&
        node.config.activation === "relu" &&
        node.name !== target &&
        next?.kind === "max-pool" &&
        next.inputs[0] === node.name &&
        consumers.get(node.name) === 1
      ) {
        const c = node.config;
        const z = tf.conv2d(inputs[0] as tf.Tensor4D, param("kernel") as tf.Tensor4D, c.strides, c.padding);
        const pooled = tf.maxPool(z, next.config.poolSize, next.config.strides, next.config.padding);
        const bias = param("bias");
        values.set(next.name, tf.relu(bias ? tf.add(pooled, bias) : pooled));
        if (next.name === target) break;
        i++;
        continue;
      }
      ctx.inputUnshared = node.inputs.length === 1 && consumers.get(node.inputs[0]) === 1;
      const spec = node.name === target && opts.output !== "output" ? withoutSoftmax(node) : node;
      values.set(node.name, KINDS[node.kind].forward(spec as never, inputs, param, ctx));
      if (node.name === target) break;
    }
    return values.get(target) as tf.Tensor2D;
  });
}
