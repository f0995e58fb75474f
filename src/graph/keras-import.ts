import { BuildOptions, buildGraph } from "./graph";
import { KerasConfig, ROLE_SUFFIX } from "./kind";
import { KERAS_CLASSES, KINDS } from "./kinds";
import { ModelGraph, NodeSpec } from "./types";

/** Reading a TensorFlow.js layers model (model.json as tfjs's model.save or tensorflowjs_converter writes it) into a graph. */

interface KerasLayer {
  class_name: string;
  name?: string;
  config: KerasConfig;
  inbound_nodes?: unknown[];
}

export interface WeightEntry {
  name: string;
  shape: number[];
  dtype: string;
}

export interface LayersModelManifest {
  modelTopology: unknown;
  weightsManifest?: { paths: string[]; weights: WeightEntry[] }[];
}

function fail(file: string, message: string): never {
  throw new Error(`${file}: ${message}`);
}

/** The layer list of a topology, with each layer's inputs (Sequential: the previous layer; functional: its inbound node). */
function kerasLayers(
  topology: unknown,
  file: string,
): { name: string; form: "sequential" | "functional"; layers: KerasLayer[]; inputs: string[][]; output?: string } {
  const top = (topology as { model_config?: unknown })?.model_config ?? topology;
  const { class_name: cls, config } = (top ?? {}) as { class_name?: string; config?: unknown };
  if (cls === "Sequential") {
    const c = (Array.isArray(config) ? { layers: config } : config) as { name?: string; layers?: KerasLayer[] };
    if (!Array.isArray(c?.layers) || c.layers.length === 0) fail(file, "modelTopology.config.layers: expected a non-empty list of layers");
    return {
      name: c.name ?? "sequential",
      form: "sequential",
      layers: c.layers,
      inputs: c.layers.map((_, i) => (i === 0 ? [] : [layerName(c.layers![i - 1])])),
    };
  }
  if (cls === "Model" || cls === "Functional") {
    const c = config as { name?: string; layers?: KerasLayer[]; input_layers?: unknown[]; output_layers?: unknown[] };
    if (!Array.isArray(c?.layers)) fail(file, "modelTopology.config.layers: expected a list of layers");
    const ends = (v: unknown[] | undefined, what: string) => {
      const list = Array.isArray(v) && typeof v[0] === "string" ? [v] : v;
      if (!Array.isArray(list) || list.length !== 1) fail(file, `modelTopology.config.${what}: expected exactly one, got ${JSON.stringify(v)}`);
      return String((list[0] as unknown[])[0]);
    };
    ends(c.input_layers, "input_layers");
    const output = ends(c.output_layers, "output_layers");
    return { name: c.name ?? "model", form: "functional", layers: c.layers, inputs: c.layers.map((l) => inboundOf(l, file)), output };
  }
  return fail(file, `modelTopology.class_name: expected "Sequential", "Model" or "Functional", got ${JSON.stringify(cls)}`);
}

function layerName(l: KerasLayer): string {
  return String(l.name ?? l.config?.name);
}

/** The layers feeding a functional model's layer; refuses a layer called more than once (shared layers). */
function inboundOf(l: KerasLayer, file: string): string[] {
  const nodes = l.inbound_nodes ?? [];
  if (nodes.length === 0) return [];
  if (nodes.length > 1) fail(file, `layer "${layerName(l)}" (${l.class_name}) is called ${nodes.length} times; shared layers are not supported`);
  const node = nodes[0];
  // tfjs and Keras 2: [[name, nodeIndex, tensorIndex, kwargs], ...]; Keras 3: {args: [tensor or [tensors]], kwargs}.
  if (Array.isArray(node)) return node.map((entry) => String((entry as unknown[])[0]));
  const names: string[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object") {
      const history = (v as { config?: { keras_history?: unknown[] } }).config?.keras_history;
      if (Array.isArray(history)) names.push(String(history[0]));
    }
  };
  walk((node as { args?: unknown }).args);
  return names;
}

/** The supported Keras classes, for error messages. */
export function supportedKerasClasses(): string[] {
  return Object.keys(KERAS_CLASSES).sort();
}

/**
 * The graph of a layers model's topology. Every layer is checked before anything else happens: an unsupported class
 * is refused with its name and the list of supported classes; then shapes and bounds (options.limits) are checked
 * from the topology alone.
 */
export function graphFromLayersTopology(topology: unknown, file = "model.json", options: BuildOptions = {}): ModelGraph {
  const { name, form, layers, inputs, output } = kerasLayers(topology, file);
  for (const l of layers) {
    if (!KERAS_CLASSES[l.class_name]) {
      fail(
        file,
        `layer "${layerName(l)}" has class ${JSON.stringify(l.class_name)}, which fwprune does not support; supported: ${supportedKerasClasses().join(", ")}`,
      );
    }
  }
  const nodes: NodeSpec[] = [];
  const first = layers[0];
  if (form === "sequential" && first.class_name !== "InputLayer") {
    const where = `${file}: layer "${layerName(first)}" (${first.class_name})`;
    const shape = KINDS.input.fromKeras("InputLayer", first.config, where);
    nodes.push({ name: `${layerName(first)}_input`, kind: "input", inputs: [], config: shape });
    inputs[0] = [nodes[0].name];
  }
  layers.forEach((l, i) => {
    const kind = KERAS_CLASSES[l.class_name];
    const where = `${file}: layer "${layerName(l)}" (${l.class_name})`;
    const config = KINDS[kind].fromKeras(l.class_name, l.config ?? {}, where);
    const kerasClass = kind === "input" ? "InputLayer" : KINDS[kind].kerasClasses.length > 1 ? l.class_name : undefined;
    nodes.push({ name: layerName(l), kind, inputs: inputs[i], config, ...(kerasClass ? { kerasClass } : {}) } as NodeSpec);
  });
  const ordered = topologicalOrder(nodes, file);
  if (output !== undefined && ordered[ordered.length - 1].name !== output) {
    fail(file, `the output layer "${output}" is not the last layer once sorted (layer "${ordered[ordered.length - 1].name}" feeds nothing)`);
  }
  try {
    return buildGraph(name, ordered, { ...options, form });
  } catch (err) {
    return fail(file, (err as Error).message);
  }
}

/** Nodes in an order where each comes after its inputs (stable: the file's order where it already is). */
function topologicalOrder(nodes: NodeSpec[], file: string): NodeSpec[] {
  const out: NodeSpec[] = [];
  const placed = new Set<string>();
  const known = new Set(nodes.map((n) => n.name));
  let pending = nodes;
  while (pending.length) {
    const ready = pending.filter((n) => n.inputs.every((i) => placed.has(i)));
    if (ready.length === 0) {
      const n = pending[0];
      const missing = n.inputs.filter((i) => !known.has(i));
      fail(
        file,
        missing.length
          ? `layer "${n.name}" takes input from "${missing[0]}", which is not a layer of the model`
          : `layers ${pending.map((p) => `"${p.name}"`).join(", ")} form a cycle`,
      );
    }
    for (const n of ready) {
      out.push(n);
      placed.add(n.name);
    }
    pending = pending.filter((n) => !placed.has(n.name));
  }
  return out;
}

/** Where each parameter's values lie in the weight bytes (the manifest's files concatenated in order). */
export interface WeightLayout {
  entries: { name: string; offset: number; size: number }[];
  bytes: number;
}

/**
 * Match a manifest's weights to the graph's parameters by name, shape and dtype, and lay them out; checks
 * everything the manifest declares before any weight byte is read.
 */
export function locateWeights(graph: ModelGraph, manifest: LayersModelManifest, file = "model.json"): WeightLayout {
  const groups = manifest.weightsManifest ?? [];
  if (!Array.isArray(groups)) fail(file, "weightsManifest: expected a list of {paths, weights}");
  const list = groups.flatMap((g) => g.weights ?? []);
  const wanted = new Map(graph.params.map((p) => [p.name, p]));
  const suffixes = new Set(Object.values(ROLE_SUFFIX));
  const entries: WeightLayout["entries"] = [];
  let offset = 0;
  for (const e of list) {
    if (e.dtype !== "float32") fail(file, `weight "${e.name}" has dtype ${JSON.stringify(e.dtype)}; only float32 is supported`);
    if ((e as { quantization?: unknown }).quantization) fail(file, `weight "${e.name}" is quantized; only float32 weights are supported`);
    // tfjs writes <layer>/<suffix>; a converter may prefix a scope (model/<layer>/<suffix>).
    const parts = String(e.name).split("/");
    const name = parts.length >= 2 && suffixes.has(parts[parts.length - 1]) ? parts.slice(-2).join("/") : e.name;
    const p = wanted.get(name);
    if (!p) fail(file, `weight "${e.name}" belongs to no parameter of the model (expected ${graph.params.map((q) => q.name).join(", ")})`);
    if (!Array.isArray(e.shape) || p.shape.length !== e.shape.length || p.shape.some((d, i) => d !== e.shape[i])) {
      fail(file, `weight "${e.name}" has shape ${JSON.stringify(e.shape)}; the layer needs [${p.shape}]`);
    }
    if (entries.some((l) => l.name === name)) fail(file, `weight "${e.name}" is listed twice`);
    entries.push({ name, offset, size: p.size });
    offset += 4 * p.size;
  }
  const missing = graph.params.filter((p) => !entries.some((l) => l.name === p.name));
  if (missing.length) fail(file, `the weights manifest lacks ${missing.map((p) => p.name).join(", ")}`);
  return { entries, bytes: offset };
}

/** The weights by fwprune's parameter names, from the manifest and the weight bytes (checked first: see locateWeights). */
export function weightsFromManifest(graph: ModelGraph, manifest: LayersModelManifest, data: Uint8Array, file = "model.json"): Record<string, Float32Array> {
  const layout = locateWeights(graph, manifest, file);
  if (data.byteLength !== layout.bytes) fail(file, `the weights manifest declares ${layout.bytes} bytes; the weight data holds ${data.byteLength}`);
  const out: Record<string, Float32Array> = {};
  for (const l of layout.entries) {
    // a copy, 4-byte aligned whatever the offset of `data` (a Buffer's slice would be a view)
    out[l.name] = new Float32Array(new Uint8Array(data.buffer, data.byteOffset + l.offset, 4 * l.size).slice().buffer);
  }
  return out;
}
