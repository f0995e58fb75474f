import { createHash } from "crypto";
import * as fs from "fs";
import * as zlib from "zlib";
import { ModelGraph, asGraph, deserializeGraph, serializeGraph } from "../graph";
import { LayersModelJson, layersModelArtifacts } from "../graph/keras-export";
import type { ModelLike } from "../model";
import { decodeSparseFile, encodeSparseFile, sparseFileBody } from "../runtime/format";
import { checkGraph } from "../runtime/graph";

export { SPARSE_FORMAT, SPARSE_KIND } from "../runtime/format";

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

const sha256 = (bytes: Uint8Array) => new Uint8Array(createHash("sha256").update(bytes).digest());

/** A model (a graph, or a config's spec) and its weights as a .fwsparse file (format in src/runtime/format.ts). */
export function encodeSparseWeights(model: ModelLike, weights: Record<string, Float32Array>): Uint8Array {
  const graph = asGraph(model);
  const tensors = graph.params.map((p) => {
    const v = weights[p.name];
    if (!v || v.length !== p.size) throw new Error(`weights["${p.name}"]: expected ${p.size} values, got ${v ? v.length : "none"}`);
    return { name: p.name, shape: p.shape, values: v, sparse: p.prunable };
  });
  return encodeSparseFile(serializeGraph(graph), tensors, sha256);
}

/**
 * Read a .fwsparse file's bytes back into its model graph and every weight. The digest is checked first, then every
 * field of the header as the runtime checks it (src/runtime/graph.ts); anything malformed is an error naming it.
 */
export function decodeSparseWeights(bytes: Uint8Array, source = "sparse file"): { graph: ModelGraph; weights: Record<string, Float32Array> } {
  const { header, tensors } = decodeSparseFile(bytes, sha256(sparseFileBody(bytes, source)), source);
  let graph: ModelGraph;
  try {
    checkGraph(header.model, (name) => header.tensors.find((t) => t.name === name)?.shape, [...tensors.keys()]);
    graph = deserializeGraph(header.model);
  } catch (err) {
    throw new Error(`${source}: ${(err as Error).message}`);
  }
  return { graph, weights: Object.fromEntries(graph.params.map((p) => [p.name, tensors.get(p.name) as Float32Array])) };
}

/** The loader: a .fwsparse file from disk → its model graph and weights (checked as decodeSparseWeights does). */
export function readSparseModelFile(file: string): { graph: ModelGraph; weights: Record<string, Float32Array> } {
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
