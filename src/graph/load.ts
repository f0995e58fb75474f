import * as fs from "fs";
import * as path from "path";
import { Model, modelFromWeights } from "../model";
import { BuildOptions } from "./graph";
import { LayersModelManifest, graphFromLayersTopology, locateWeights, weightsFromManifest } from "./keras-import";
import { ModelGraph } from "./types";

/**
 * A TensorFlow.js layers model (Sequential or functional, one input, one output) from its parsed model.json and its
 * weight bytes (the manifest's files concatenated in order): the topology is checked (supported layers, shapes,
 * bounds) before the weights are touched.
 */
export function modelFromLayersModel(json: LayersModelManifest, weightData: Uint8Array, file = "model.json", options: BuildOptions = {}): Model {
  const graph = graphFromLayersTopology(json?.modelTopology, file, options);
  return modelFromWeights(graph, weightsFromManifest(graph, json, weightData, file));
}

/** A model.json's graph alone (no weights read). */
export function loadGraph(file: string, options: BuildOptions = {}): ModelGraph {
  return graphFromLayersTopology(readManifest(file).modelTopology, file, options);
}

function readManifest(file: string): LayersModelManifest {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(`${file}: cannot read the model (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    return JSON.parse(text) as LayersModelManifest;
  } catch {
    throw new Error(`${file}: not JSON (expected a TensorFlow.js layers model.json)`);
  }
}

/**
 * Load a TensorFlow.js layers model from a model.json file and its weight files (paths relative to the model's
 * folder, which they may not leave; each file's size must be what the manifest declares).
 */
export function loadModel(file: string, options: BuildOptions = {}): Model {
  const json = readManifest(file);
  const graph = graphFromLayersTopology(json.modelTopology, file, options);
  locateWeights(graph, json, file);
  const dir = path.dirname(path.resolve(file));
  const groups = json.weightsManifest ?? [];
  const chunks: Buffer[] = [];
  for (const group of groups) {
    const declared = (group.weights ?? []).reduce((n, w) => n + 4 * w.shape.reduce((a, b) => a * b, 1), 0);
    const files = (group.paths ?? []).map((p) => {
      const full = path.resolve(dir, p);
      if (typeof p !== "string" || path.isAbsolute(p) || /^[a-z]+:/i.test(p) || !full.startsWith(dir + path.sep)) {
        throw new Error(`${file}: weight path ${JSON.stringify(p)} leaves the model's folder ${dir}`);
      }
      let size: number;
      try {
        size = fs.statSync(full).size;
      } catch (err) {
        throw new Error(`${file}: cannot read weight file ${p} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
      return { full, p, size };
    });
    const found = files.reduce((n, f) => n + f.size, 0);
    if (found !== declared) throw new Error(`${file}: the manifest declares ${declared} bytes in ${files.map((f) => f.p).join(", ")}; the files hold ${found}`);
  }
  for (const group of groups) for (const p of group.paths) chunks.push(fs.readFileSync(path.resolve(dir, p)));
  return modelFromWeights(graph, weightsFromManifest(graph, json, new Uint8Array(Buffer.concat(chunks)), file));
}
