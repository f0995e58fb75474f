import { createHash } from "crypto";
import * as fs from "fs";
import * as zlib from "zlib";
import { asGraph } from "../graph";
import { LayersModelJson, layersModelArtifacts } from "../graph/keras-export";
import { LayerSpec, ModelLike, ModelSpec, paramShapes } from "../model";
import { GRAPH_INPUT, GraphNode as SparseNode, ModelGraph as SparseGraph, decodeSparseFile, encodeSparseFile, sparseFileBody } from "../runtime/format";

export { SPARSE_MAGIC } from "../runtime/format";

/**
 * What `fwprune export` writes: the model in TensorFlow.js's layers format (model.json + one weights file, loadable
 * by plain @tensorflow/tfjs), and a compact sparse file of the same weights with its loader.
 */

export type { LayersModelJson } from "../graph/keras-export";

/**
 * model.json and the weights file's bytes of a model (a graph, or a config's spec: the paper CNN exports as a
 * Sequential of conv1, maxpool1, …, dense2, so weights keep their names), loadable by plain tfjs.
 */
export function layersArtifactsFor(
  model: ModelLike,
  weights: Record<string, Float32Array>,
  weightsFile = "weights.bin",
): { json: LayersModelJson; weights: Uint8Array } {
  return layersModelArtifacts(asGraph(model), weights, weightsFile);
}

/** The spec as the sparse file's model graph: one node per layer, named as layersModelFor names them, in a chain. */
export function sparseGraphOfSpec(spec: ModelSpec): SparseGraph {
  let conv = 0;
  let dense = 0;
  let previous = GRAPH_INPUT;
  const nodes: SparseNode[] = spec.layers.map((layer, i) => {
    const inputs = [previous];
    let node: SparseNode;
    if (layer.type === "conv2d") {
      const name = `conv${++conv}`;
      const attrs = {
        filters: layer.filters,
        kernelSize: layer.kernelSize,
        stride: layer.stride ?? 1,
        padding: layer.padding ?? "valid",
        activation: layer.activation ?? "linear",
      };
      node = { name, op: "conv2d", inputs, attrs, weights: { kernel: `${name}/kernel`, bias: `${name}/bias` } };
    } else if (layer.type === "dense") {
      const name = `dense${++dense}`;
      node = {
        name,
        op: "dense",
        inputs,
        attrs: { units: layer.units, activation: layer.activation ?? "linear" },
        weights: { kernel: `${name}/kernel`, bias: `${name}/bias` },
      };
    } else if (layer.type === "maxpool") {
      node = { name: `maxpool${i}`, op: "maxpool", inputs, attrs: { size: layer.size } };
    } else {
      node = { name: `flatten${i}`, op: "flatten", inputs, attrs: {} };
    }
    previous = node.name;
    return node;
  });
  return { name: spec.name, inputShape: [...spec.inputShape], nodes, output: previous };
}

/** The sequential spec of a model graph that is a chain of the layers model.ts knows; anything else is an error naming the node. */
export function specOfSparseGraph(graph: SparseGraph): ModelSpec {
  let previous = GRAPH_INPUT;
  const layers = graph.nodes.map((node, i): LayerSpec => {
    const where = `model.nodes[${i}] (${JSON.stringify(node?.name)})`;
    if (node.inputs?.length !== 1 || node.inputs[0] !== previous)
      throw new Error(`${where}: inputs ${JSON.stringify(node.inputs)}; a sequential model expects [${JSON.stringify(previous)}]`);
    previous = node.name;
    const a = node.attrs as Record<string, never>;
    if (node.op === "conv2d")
      return { type: "conv2d", filters: a.filters, kernelSize: a.kernelSize, stride: a.stride, padding: a.padding, activation: a.activation };
    if (node.op === "dense") return { type: "dense", units: a.units, activation: a.activation };
    if (node.op === "maxpool") return { type: "maxpool", size: a.size };
    if (node.op === "flatten") return { type: "flatten" };
    throw new Error(`${where}: op ${JSON.stringify(node.op)}; expected conv2d, maxpool, flatten or dense`);
  });
  if (graph.output !== previous) throw new Error(`model.output: ${JSON.stringify(graph.output)}; expected the last node, ${JSON.stringify(previous)}`);
  return { name: graph.name, inputShape: graph.inputShape as [number, number, number], layers };
}

const sha256 = (bytes: Uint8Array) => new Uint8Array(createHash("sha256").update(bytes).digest());

/** The spec and weights as a .fwsparse file (format in src/runtime/format.ts; its SHA-256 covers the whole file). */
export function encodeSparseWeights(spec: ModelSpec, weights: Record<string, Float32Array>): Uint8Array {
  const tensors = paramShapes(spec).map((p) => {
    const v = weights[p.name];
    const size = p.shape.reduce((a, b) => a * b, 1);
    if (!v || v.length !== size) throw new Error(`weights["${p.name}"]: expected ${size} values, got ${v ? v.length : "none"}`);
    return { name: p.name, shape: p.shape, values: v, sparse: p.prunable };
  });
  return encodeSparseFile(sparseGraphOfSpec(spec), tensors, sha256);
}

/** Read a .fwsparse file's bytes back into the spec and every weight; anything malformed is an error naming it. */
export function decodeSparseWeights(bytes: Uint8Array, source = "sparse file"): { spec: ModelSpec; weights: Record<string, Float32Array> } {
  const { header, tensors } = decodeSparseFile(bytes, sha256(sparseFileBody(bytes, source)), source);
  let spec: ModelSpec;
  let expected: ReturnType<typeof paramShapes>;
  try {
    spec = specOfSparseGraph(header.model);
    expected = paramShapes(spec);
  } catch (err) {
    throw new Error(`${source}: ${(err as Error).message}`);
  }
  const weights: Record<string, Float32Array> = {};
  for (const p of expected) {
    const values = tensors.get(p.name);
    const shape = header.tensors.find((t) => t.name === p.name)?.shape;
    if (!values) throw new Error(`${source}: tensor "${p.name}" is missing`);
    if (JSON.stringify(shape) !== JSON.stringify(p.shape)) throw new Error(`${source}: tensor "${p.name}": shape [${shape}]; the model says [${p.shape}]`);
    weights[p.name] = values;
  }
  return { spec, weights };
}

/** The loader: a .fwsparse file from disk → its spec and weights (checked as decodeSparseWeights does). */
export function readSparseModelFile(file: string): { spec: ModelSpec; weights: Record<string, Float32Array> } {
  return decodeSparseWeights(fs.readFileSync(file), file);
}

export interface FileSize {
  file: string;
  bytes: number;
  gzippedBytes: number;
}

/** Raw and gzipped (level 9) size of each file's bytes. */
export function sizeOf(file: string, bytes: Uint8Array): FileSize {
  return { file, bytes: bytes.length, gzippedBytes: zlib.gzipSync(bytes, { level: 9 }).length };
}
