import { checkLimit, graphLimits } from "./bounds";
import { ParamDecl, paramName, product } from "./kind";
import { kindOf } from "./kinds";
import { GraphLimits, GraphNode, ModelGraph, NodeSpec, ParamInfo, SerializedGraph } from "./types";

export interface BuildOptions {
  /** Raise or lower the bounds (src/graph/bounds.ts) for this graph. */
  limits?: Partial<GraphLimits>;
  /** How the graph exports as a Keras model; default "sequential" for a chain, else "functional". */
  form?: "sequential" | "functional";
}

const PRUNABLE_ROLES = new Set(["kernel", "depthwise-kernel", "pointwise-kernel"]);

/**
 * The graph of these nodes (topological order, the first the input, the last the output): infers every node's
 * output shape and parameters, and checks the bounds from shapes alone, before anything is allocated. Throws naming
 * the node on a node that does not fit.
 */
export function buildGraph(name: string, specs: NodeSpec[], options: BuildOptions = {}): ModelGraph {
  const limits = graphLimits(options.limits);
  checkLimit(limits, "maxLayers", specs.length, `model "${name}": the layer count`);
  if (specs.length < 2) throw new Error(`model "${name}": expected an input node and at least one layer, got ${specs.length} node(s)`);
  const byName = new Map<string, GraphNode>();
  const nodes: GraphNode[] = [];
  const params: ParamInfo[] = [];
  let paramCount = 0;
  let activations = 0;
  specs.forEach((spec, i) => {
    const where = `layer "${spec.name}" (${spec.kind}, node ${i})`;
    if (typeof spec.name !== "string" || spec.name === "" || spec.name.includes("/"))
      throw new Error(`node ${i}: name must be a non-empty string without "/", got ${JSON.stringify(spec.name)}`);
    if (byName.has(spec.name)) throw new Error(`${where}: the name is used twice`);
    const def = kindOf(spec.kind);
    if ((i === 0) !== (spec.kind === "input")) throw new Error(`${where}: the first node, and only it, must be the input`);
    const arity = def.inputs === "none" ? spec.inputs.length === 0 : def.inputs === "one" ? spec.inputs.length === 1 : spec.inputs.length >= 2;
    if (!arity)
      throw new Error(
        `${where}: expected ${def.inputs === "none" ? "no inputs" : def.inputs === "one" ? "one input" : "two or more inputs"}, got [${spec.inputs.join(", ")}]`,
      );
    const inputShapes = spec.inputs.map((input) => {
      const from = byName.get(input);
      if (!from) throw new Error(`${where}: input "${input}" is not an earlier node (nodes must be in topological order)`);
      return from.outputShape;
    });
    const outputShape = def.outputShape(spec.config as never, inputShapes, where);
    if (spec.kind === "input") {
      if (!outputShape.every((d: number) => Number.isInteger(d) && d >= 1)) throw new Error(`${where}: shape must be positive integers, got [${outputShape}]`);
      checkLimit(limits, "maxInputSize", product(outputShape), `${where}: the input size per example [${outputShape}]`);
    }
    const own: ParamInfo[] = def.params(spec.config as never, inputShapes, outputShape).map((d: ParamDecl) => ({
      name: paramName(spec.name, d.role),
      node: spec.name,
      role: d.role,
      shape: d.shape,
      size: product(d.shape),
      prunable: PRUNABLE_ROLES.has(d.role),
      trainable: d.role !== "moving-mean" && d.role !== "moving-variance",
      fanIn: d.fanIn ?? 0,
      fanOut: d.fanOut ?? 0,
      uses: d.uses ?? 0,
    }));
    const nodeParams = own.reduce((n, p) => n + p.size, 0);
    paramCount += nodeParams;
    checkLimit(limits, "maxParams", paramCount, `${where}: the parameter count up to this layer (this layer ${nodeParams.toLocaleString("en-US")})`);
    activations += product(outputShape);
    checkLimit(limits, "maxActivationsPerExample", activations, `${where}: the activation values per example up to this layer`);
    const node = { ...spec, outputShape, params: own } as GraphNode;
    byName.set(spec.name, node);
    nodes.push(node);
    params.push(...own);
  });
  const output = nodes[nodes.length - 1];
  const consumed = new Set(nodes.flatMap((n) => n.inputs));
  const dangling = nodes.filter((n) => n !== output && !consumed.has(n.name));
  if (dangling.length)
    throw new Error(`model "${name}": layers ${dangling.map((n) => `"${n.name}"`).join(", ")} feed nothing; expected one output ("${output.name}")`);
  const chain = nodes.every((n, i) => i === 0 || (n.inputs.length === 1 && n.inputs[0] === nodes[i - 1].name));
  const form = options.form ?? (chain ? "sequential" : "functional");
  if (form === "sequential" && !chain) throw new Error(`model "${name}": a sequential model must be a chain of single-input layers`);
  const softmaxLayer = output.kind === "activation" && output.config.activation === "softmax";
  return { name, form, nodes, input: nodes[0].name, output: output.name, logits: softmaxLayer ? output.inputs[0] : output.name, params };
}

export function nodeNamed(graph: ModelGraph, name: string): GraphNode {
  const node = graph.nodes.find((n) => n.name === name);
  if (!node) throw new Error(`model "${graph.name}" has no layer "${name}"`);
  return node;
}

export function inputShape(graph: ModelGraph): number[] {
  return graph.nodes[0].outputShape;
}

/** The class count: the last axis of the logits node's output. */
export function classCount(graph: ModelGraph): number {
  const shape = nodeNamed(graph, graph.logits).outputShape;
  return shape[shape.length - 1];
}

export function prunableParams(graph: ModelGraph): ParamInfo[] {
  return graph.params.filter((p) => p.prunable);
}

export function trainableParams(graph: ModelGraph): ParamInfo[] {
  return graph.params.filter((p) => p.trainable);
}

export function paramCount(graph: ModelGraph): number {
  return graph.params.reduce((n, p) => n + p.size, 0);
}

export interface KernelFlops {
  kernel: string;
  weights: number;
  multiplyAdds: number;
}

/** Multiply-adds per example of each prunable kernel (weights × uses: a conv's output positions, 1 for dense on a vector). */
export function kernelFlops(graph: ModelGraph): KernelFlops[] {
  return prunableParams(graph).map((p) => ({ kernel: p.name, weights: p.size, multiplyAdds: p.size * p.uses }));
}

/** Multiply-adds per example of all prunable kernels together. */
export function totalFlops(graph: ModelGraph): number {
  return kernelFlops(graph).reduce((n, k) => n + k.multiplyAdds, 0);
}

export function serializeGraph(graph: ModelGraph): SerializedGraph {
  const nodes = graph.nodes.map((n) => {
    const { outputShape: _shape, params: _params, ...spec } = n;
    return spec as NodeSpec;
  });
  return { name: graph.name, form: graph.form, nodes };
}

export function deserializeGraph(json: SerializedGraph, options: BuildOptions = {}): ModelGraph {
  if (!json || typeof json.name !== "string" || !Array.isArray(json.nodes))
    throw new Error(`a serialized graph needs a name and a list of nodes, got ${JSON.stringify(json)?.slice(0, 200)}`);
  return buildGraph(json.name, json.nodes, { form: json.form, ...options });
}
