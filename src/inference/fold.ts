import { GraphNode, ModelGraph, NodeSpec, buildGraph, paramName } from "../graph";
import { BN_FOLDS, isBatchNorm } from "./sparse-kinds";

/** A graph ready to compile: cut at its logits (their softmax dropped), masked, each BN folded where it can be. */
export interface PreparedGraph {
  graph: ModelGraph;
  /** Every parameter of `graph`, masked (pruned weights exact zeros) and folded. */
  values: Record<string, Float32Array>;
}

const UNBOUNDED = { maxLayers: Infinity, maxParams: Infinity, maxActivationsPerExample: Infinity, maxInputSize: Infinity };

/** Checks the weights (and mask) against the graph, naming the first that does not fit, before any work. */
function maskedValues(graph: ModelGraph, weights: Record<string, Float32Array>, mask?: Record<string, Float32Array>): Record<string, Float32Array> {
  const values: Record<string, Float32Array> = {};
  for (const p of graph.params) {
    const v = weights[p.name];
    if (!v || v.length !== p.size) throw new Error(`weights["${p.name}"]: expected ${p.size} values, got ${v ? v.length : "none"}`);
    const m = mask?.[p.name];
    if (mask && p.prunable && (!m || m.length !== p.size)) throw new Error(`mask["${p.name}"]: expected ${p.size} values, got ${m ? m.length : "none"}`);
    values[p.name] = m ? v.map((x, i) => (m[i] === 0 ? 0 : x)) : v.slice();
  }
  return values;
}

const specOfNode = ({ name, kind, inputs, config, kerasClass }: GraphNode): NodeSpec =>
  ({ name, kind, inputs, config, ...(kerasClass ? { kerasClass } : {}) }) as NodeSpec;

/**
 * Inference-mode batch norm folded into the conv, dense or depthwise layer before it where the BN is that layer's
 * only reader and the layer has no activation: w' = w·γ/√(var+ε) per output channel, b' = (b−mean)·γ/√(var+ε)+β.
 */
export function prepareGraph(model: ModelGraph, weights: Record<string, Float32Array>, mask?: Record<string, Float32Array>): PreparedGraph {
  const values = maskedValues(model, weights, mask);
  const cut = model.nodes.slice(0, model.nodes.findIndex((n) => n.name === model.logits) + 1);
  const readers = new Map<string, number>();
  for (const n of cut) for (const i of n.inputs) readers.set(i, (readers.get(i) ?? 0) + 1);
  const byName = new Map(cut.map((n) => [n.name, n]));
  const renamed = new Map<string, string>();
  const nodes: NodeSpec[] = [];
  for (const node of cut) {
    const spec = specOfNode(node);
    spec.inputs = spec.inputs.map((i) => renamed.get(i) ?? i);
    const config = spec.config as { activation?: string };
    if (node.name === model.logits && config.activation === "softmax") spec.config = { ...config, activation: "linear" } as never;
    const from = byName.get(node.inputs[0] ?? "");
    const role = from && BN_FOLDS[from.kind];
    if (isBatchNorm(node) && from && role && readers.get(from.name) === 1 && (from.config as { activation: string }).activation === "linear") {
      foldInto(from, role, node, values);
      const producer = nodes.find((n) => n.name === from.name) as NodeSpec;
      producer.config = { ...producer.config, useBias: true } as never;
      renamed.set(node.name, from.name);
      continue;
    }
    nodes.push(spec);
  }
  const graph = buildGraph(model.name, nodes, { limits: UNBOUNDED });
  return { graph, values: Object.fromEntries(graph.params.map((p) => [p.name, values[p.name]])) };
}

function foldInto(
  layer: GraphNode,
  role: NonNullable<(typeof BN_FOLDS)[keyof typeof BN_FOLDS]>,
  bn: GraphNode & { kind: "batch-norm" },
  values: Record<string, Float32Array>,
) {
  const channels = layer.outputShape[layer.outputShape.length - 1];
  const get = (r: Parameters<typeof paramName>[1], fill: number) => values[paramName(bn.name, r)] ?? new Float32Array(channels).fill(fill);
  const [gamma, beta, mean, variance] = [get("gamma", 1), get("beta", 0), get("moving-mean", 0), get("moving-variance", 1)];
  const scale = Array.from(gamma, (g, c) => g / Math.sqrt(variance[c] + bn.config.epsilon));
  const kernel = values[paramName(layer.name, role)];
  for (let i = 0; i < kernel.length; i++) kernel[i] *= scale[i % channels];
  const bias = values[paramName(layer.name, "bias")] ?? new Float32Array(channels);
  values[paramName(layer.name, "bias")] = Float32Array.from(bias, (b, c) => (b - mean[c]) * scale[c] + beta[c]);
}
