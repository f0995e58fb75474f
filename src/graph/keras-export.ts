import { KerasConfig } from "./kind";
import { KINDS } from "./kinds";
import { GraphNode, ModelGraph } from "./types";

/** Writing a graph and its weights back as a TensorFlow.js layers model: the same layers, names and classes. */

export interface WeightsManifestEntry {
  name: string;
  shape: number[];
  dtype: "float32";
}

/** model.json as tf.loadLayersModel reads it (the layers-model format of tf.io's http and file handlers). */
export interface LayersModelJson {
  format: "layers-model";
  generatedBy: string;
  convertedBy: null;
  modelTopology: object;
  weightsManifest: { paths: string[]; weights: WeightsManifestEntry[] }[];
}

/** The version of tfjs-layers written into exported topologies. */
const LAYERS_VERSION = "tfjs-layers 4.22.0";

function kerasLayer(node: GraphNode): { class_name: string; config: KerasConfig } {
  const def = KINDS[node.kind];
  const config = def.toKeras(node as never);
  return { class_name: node.kerasClass ?? def.kerasClasses[0], config: { name: node.name, trainable: true, dtype: "float32", ...config } };
}

/** The Keras topology of a graph: a Sequential for a sequential graph, else a functional Model. */
export function layersTopology(graph: ModelGraph): object {
  const [input, ...rest] = graph.nodes;
  if (graph.form === "sequential") {
    // An implicit input (tfjs's usual Sequential) becomes batch_input_shape on the first layer.
    const layers = (input.kerasClass === "InputLayer" ? graph.nodes : rest).map(kerasLayer);
    if (input.kerasClass !== "InputLayer") Object.assign(layers[0].config, { batch_input_shape: [null, ...input.outputShape] });
    return { class_name: "Sequential", config: { name: graph.name, layers }, keras_version: LAYERS_VERSION, backend: "tensor_flow.js" };
  }
  const layers = graph.nodes.map((n) => ({
    name: n.name,
    ...kerasLayer(n),
    inbound_nodes: n.inputs.length ? [n.inputs.map((i) => [i, 0, 0, {}])] : [],
  }));
  return {
    class_name: "Model",
    config: { name: graph.name, layers, input_layers: [[graph.input, 0, 0]], output_layers: [[graph.output, 0, 0]] },
    keras_version: LAYERS_VERSION,
    backend: "tensor_flow.js",
  };
}

/**
 * model.json and the weights file's bytes for a graph and its weights (every parameter, BN's moving statistics
 * included, in graph order). Throws naming a weight that is missing or of the wrong size.
 */
export function layersModelArtifacts(
  graph: ModelGraph,
  weights: Record<string, Float32Array>,
  weightsFile = "weights.bin",
): { json: LayersModelJson; weights: Uint8Array } {
  const total = graph.params.reduce((n, p) => n + p.size, 0);
  const data = new Float32Array(total);
  let offset = 0;
  for (const p of graph.params) {
    const v = weights[p.name];
    if (!v || v.length !== p.size) throw new Error(`weights["${p.name}"]: expected shape [${p.shape}] (${p.size} values), got ${v ? v.length : "no"} values`);
    data.set(v, offset);
    offset += p.size;
  }
  const json: LayersModelJson = {
    format: "layers-model",
    generatedBy: `fwprune (${LAYERS_VERSION} format)`,
    convertedBy: null,
    modelTopology: layersTopology(graph),
    weightsManifest: [{ paths: [weightsFile], weights: graph.params.map((p) => ({ name: p.name, shape: p.shape, dtype: "float32" as const })) }],
  };
  return { json, weights: new Uint8Array(data.buffer) };
}
