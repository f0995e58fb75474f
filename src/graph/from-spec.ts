import type { ModelSpec } from "../model";
import { buildGraph } from "./graph";
import { ModelGraph, NodeSpec } from "./types";

/**
 * The sequential ModelSpec of an experiment config as a graph. Node names are the ones fwprune has always used
 * (conv1, conv2, …, dense1, …; a pool or flatten is named by its layer index, maxpool1, flatten4), so parameter
 * names stay conv1/kernel, conv1/bias, …, dense2/bias and checkpoints, masks and exports keep their meaning.
 */
export function graphFromSpec(spec: ModelSpec): ModelGraph {
  if (!Array.isArray(spec.layers)) throw new Error(`model.layers: expected a list of layers, got ${JSON.stringify(spec.layers)}`);
  const nodes: NodeSpec[] = [{ name: "input", kind: "input", inputs: [], config: { shape: [...spec.inputShape] } }];
  let conv = 0;
  let dense = 0;
  let flat = false;
  spec.layers.forEach((layer, i) => {
    const inputs = [nodes[nodes.length - 1].name];
    const where = `model.layers[${i}] (${layer.type})`;
    if (layer.type === "conv2d" && flat) throw new Error(`${where}: conv2d after flatten is not supported`);
    if (layer.type === "dense" && !flat) throw new Error(`${where}: dense needs a flatten before it`);
    if (layer.type === "flatten") flat = true;
    if (layer.type === "conv2d") {
      const k = layer.kernelSize;
      const s = layer.stride ?? 1;
      const config = {
        filters: layer.filters,
        kernelSize: [k, k] as [number, number],
        strides: [s, s] as [number, number],
        padding: layer.padding ?? "valid",
        useBias: true,
        activation: layer.activation ?? "linear",
      };
      nodes.push({ name: `conv${++conv}`, kind: "conv2d", inputs, config });
    } else if (layer.type === "maxpool") {
      const size: [number, number] = [layer.size, layer.size];
      nodes.push({ name: `maxpool${i}`, kind: "max-pool", inputs, config: { poolSize: size, strides: size, padding: "valid" } });
    } else if (layer.type === "flatten") {
      nodes.push({ name: `flatten${i}`, kind: "flatten", inputs, config: {} });
    } else if (layer.type === "dense") {
      nodes.push({ name: `dense${++dense}`, kind: "dense", inputs, config: { units: layer.units, useBias: true, activation: layer.activation ?? "linear" } });
    } else {
      throw new Error(`model.layers[${i}].type: expected conv2d, maxpool, flatten or dense, got ${JSON.stringify((layer as { type: unknown }).type)}`);
    }
  });
  try {
    return buildGraph(spec.name, nodes, { form: "sequential" });
  } catch (err) {
    // name the spec's layer, as the config names it
    const node = /\(\S+, node (\d+)\)/.exec((err as Error).message);
    if (!node) throw err;
    const i = Number(node[1]) - 1;
    throw new Error(`${i < 0 ? "model.inputShape" : `model.layers[${i}] (${spec.layers[i].type})`}: ${(err as Error).message}`);
  }
}

const fromSpecCache = new WeakMap<ModelSpec, ModelGraph>();

/** A graph as is, or a ModelSpec's graph (built once per spec object). */
export function asGraph(model: ModelGraph | ModelSpec): ModelGraph {
  if ("nodes" in model) return model;
  let graph = fromSpecCache.get(model);
  if (!graph) {
    graph = graphFromSpec(model);
    fromSpecCache.set(model, graph);
  }
  return graph;
}
