import { ModelGraph, asGraph, channelGroups, narrowedGraph } from "../graph";
import type { LayerSpec, ModelLike, ModelSpec } from "../model";
import { checkGroups, keptIndices } from "./groups";
import { Weights } from "./mask";

export interface Surgered {
  graph: ModelGraph;
  weights: Weights;
}

/**
 * Surgery: the physically smaller model a 0/1 group mask describes. Every layer whose config fixes its channel count
 * keeps only its kept channels (filters, units), and every parameter keeps only its entries outside removed groups
 * (kernel columns and the next layers' rows, biases, BN's parameters and statistics, depthwise channels); Concatenates
 * and Flattens narrow with their inputs. Its forward pass equals the masked model's (applyGroupMask). A spec comes back
 * as a graph and as the narrowed spec.
 */
export function surgery(model: ModelSpec, weights: Weights, groups: Float32Array): Surgered & { spec: ModelSpec };
export function surgery(model: ModelGraph, weights: Weights, groups: Float32Array): Surgered;
export function surgery(model: ModelLike, weights: Weights, groups: Float32Array): Surgered & { spec?: ModelSpec };
export function surgery(model: ModelLike, weights: Weights, groups: Float32Array): Surgered & { spec?: ModelSpec } {
  const graph = asGraph(model);
  const { families, params } = channelGroups(graph);
  checkGroups(families, groups);
  const smaller = narrowedGraph(graph, groups, `${graph.name}-surgered`);
  const byParam = new Map(params.map((p) => [p.param, p]));
  const sizes = new Map(smaller.params.map((p) => [p.name, p.size]));
  const out: Weights = {};
  for (const p of graph.params) {
    const w = weights[p.name];
    if (!w || w.length !== p.size) throw new Error(`weights["${p.name}"]: expected ${p.size} values of shape [${p.shape}], got ${w ? w.length : "none"}`);
    const g = byParam.get(p.name);
    out[p.name] = g ? Float32Array.from(keptOffsets(p.shape, keptIndices(g, groups)), (o) => w[o]) : w.slice();
    if (out[p.name].length !== sizes.get(p.name)) {
      throw new Error(`surgery of model "${graph.name}": ${p.name} kept ${out[p.name].length} values, but the narrowed layer has ${sizes.get(p.name)}`);
    }
  }
  if ("nodes" in model) return { graph: smaller, weights: out };
  return { graph: smaller, weights: out, spec: narrowedSpec(model, smaller) };
}

/**
 * The inverse of surgery for measuring: the surgered weights written back into the original shapes, 0 where a
 * group was removed, so sparsity and FLOPs are counted against the original model.
 */
export function unsurgery(model: ModelLike, surgered: Weights, groups: Float32Array): Weights {
  const graph = asGraph(model);
  const { families, params } = channelGroups(graph);
  checkGroups(families, groups);
  const byParam = new Map(params.map((p) => [p.param, p]));
  const out: Weights = {};
  for (const p of graph.params) {
    const g = byParam.get(p.name);
    const offsets = g ? keptOffsets(p.shape, keptIndices(g, groups)) : undefined;
    const small = surgered[p.name];
    const expected = offsets ? offsets.length : p.size;
    if (!small || small.length !== expected)
      throw new Error(`surgered weights["${p.name}"]: expected ${expected} values, got ${small ? small.length : "none"}`);
    if (!offsets) {
      out[p.name] = small.slice();
      continue;
    }
    const w = new Float32Array(p.size);
    offsets.forEach((o, j) => (w[o] = small[j]));
    out[p.name] = w;
  }
  return out;
}

/** The row-major offsets, in the full array of this shape, of the entries at the kept indices (null: all of an axis). */
function keptOffsets(shape: number[], kept: (number[] | null)[]): Int32Array {
  let offsets = [0];
  shape.forEach((size, axis) => {
    const stride = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    const idx = kept[axis] ?? Array.from({ length: size }, (_, k) => k);
    offsets = offsets.flatMap((o) => idx.map((k) => o + k * stride));
  });
  return Int32Array.from(offsets);
}

/** The spec of a narrowed graphFromSpec graph (node i + 1 is layer i): its conv filters and dense units. */
function narrowedSpec(spec: ModelSpec, smaller: ModelGraph): ModelSpec {
  const layers = spec.layers.map((layer, i) => {
    const config = smaller.nodes[i + 1].config as { filters?: number; units?: number };
    return ("filters" in layer ? { ...layer, filters: config.filters } : "units" in layer ? { ...layer, units: config.units } : layer) as LayerSpec;
  });
  return { ...spec, name: smaller.name, layers };
}
