// fwprune's standalone sparse runtime (the package's "fwprune/runtime" entry): an exported model.fwsparse in, logits
// out, on fwprune's wasm kernels. No Node built-ins and no tfjs: the same code runs in a browser, a Web Worker and Node.
import { GRAPH_INPUT, SparseFileHeader, decodeSparseFile, sparseFileBody } from "./format";
import { RuntimeMemory } from "./kernels";
import { Activations, KernelPath, NODE_KINDS, PlannedNode, SingleActivations, singleBytes, tileBytes } from "./nodes";

export { SPARSE_FORMAT, SPARSE_MAGIC } from "./format";
export type { GraphNode, ModelGraph, SparseFileHeader } from "./format";
export type { KernelPath } from "./nodes";

export interface RuntimeLayer {
  /** The graph node's name (conv1, maxpool1, …) and op. */
  name: string;
  op: string;
  /** Which wasm kernel runs it: sparse (CSR over the non-zero weights), dense, or none (a node without weights). */
  path: KernelPath;
  weights: number;
  nonzeros: number;
  /** Set where the node runs inside the previous one's kernel (a 2×2 max pool after a sparse convolution). */
  fusedInto?: string;
}

export interface SparseRuntimeModel {
  name: string;
  /** One image's shape [h, w, c]; images are passed NHWC, image after image. */
  inputShape: number[];
  /** Logits per image. */
  outputSize: number;
  layers: RuntimeLayer[];
  /** Whether batches under 8 run image by image (every node has a single-image path), rather than in one padded tile. */
  singleImage: boolean;
  /** Logits [batch, outputSize] (row-major) for images [batch, h, w, c]. */
  predict(images: Float32Array, batch: number): Float32Array;
}

export interface LoadOptions {
  /** Names the file in error messages (default "model.fwsparse"). */
  source?: string;
}

/** Tiles (of 8 images) computed per pass: the activations of a chunk stay small enough for the caches. */
const CHUNK_TILES = 32;

interface SubtleDigest {
  subtle: { digest(algorithm: string, data: Uint8Array): Promise<ArrayBuffer> };
}

/** Check the file's SHA-256 (Web Crypto), decode it and lay the model out for the wasm kernels. */
export async function loadSparseModel(bytes: Uint8Array | ArrayBuffer, opts: LoadOptions = {}): Promise<SparseRuntimeModel> {
  const source = opts.source ?? "model.fwsparse";
  const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const crypto = (globalThis as unknown as { crypto?: SubtleDigest }).crypto;
  if (!crypto?.subtle) throw new Error("fwprune runtime: Web Crypto (crypto.subtle) is unavailable; browsers have it on https and localhost pages");
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", sparseFileBody(data, source)));
  const { header, tensors } = decodeSparseFile(data, digest, source);
  const mem = await RuntimeMemory.create();
  return planModel(header, tensors, mem, source);
}

function planModel(header: SparseFileHeader, tensors: Map<string, Float32Array>, mem: RuntimeMemory, source: string): SparseRuntimeModel {
  const { model } = header;
  const shape = model.inputShape;
  if (!(Array.isArray(shape) && shape.length === 3 && shape.every((d) => Number.isInteger(d) && d >= 1))) {
    throw new Error(`${source}: model.inputShape ${JSON.stringify(shape)}; expected [h, w, c] of positive integers`);
  }
  const input = { layout: "tiles" as const, h: shape[0], w: shape[1], c: shape[2] };
  let current: Activations = input;
  const singleStart: SingleActivations = { layout: "planes", c: shape[2], h: shape[0], w: shape[1], wp: shape[1] };
  let single: SingleActivations | undefined = singleStart;
  let previous = GRAPH_INPUT;
  const planned: PlannedNode[] = [];
  const layers: RuntimeLayer[] = [];
  for (let i = 0; i < model.nodes.length; i++) {
    const node = model.nodes[i];
    const fail = (what: string): never => {
      throw new Error(`${source}: model.nodes[${i}] (${JSON.stringify(node?.name)}, ${node?.op}): ${what}`);
    };
    const kind = NODE_KINDS[node?.op];
    if (!kind) fail(`op ${JSON.stringify(node?.op)} is not one the runtime runs (${Object.keys(NODE_KINDS).join(", ")})`);
    if (node.inputs?.length !== 1 || node.inputs[0] !== previous)
      fail(`inputs ${JSON.stringify(node.inputs)}; the runtime runs chains of nodes, so expected [${JSON.stringify(previous)}]`);
    const tensor = (role: string, expected: number[]) => {
      const name = node.weights?.[role];
      const values = name === undefined ? undefined : tensors.get(name);
      if (!values) return fail(`weights.${role}: ${JSON.stringify(name)} is not a tensor of the file`);
      const stored = header.tensors.find((t) => t.name === name)?.shape;
      if (JSON.stringify(stored) !== JSON.stringify(expected)) fail(`tensor "${name}": shape [${stored}]; expected [${expected}]`);
      return values;
    };
    const step = kind({ node, input: current, next: model.nodes[i + 1], singleInput: single, mem, tensor, fail });
    single = step.single?.output;
    planned.push(step);
    layers.push({ name: node.name, op: node.op, path: step.path, weights: step.weights, nonzeros: step.nonzeros });
    current = step.output;
    previous = node.name;
    if (step.fusesNext) {
      const fused = model.nodes[++i];
      layers.push({ name: fused.name, op: fused.op, path: "none", weights: 0, nonzeros: 0, fusedInto: node.name });
      previous = fused.name;
    }
  }
  if (model.output !== previous)
    throw new Error(`${source}: model.output ${JSON.stringify(model.output)}; expected the last node, ${JSON.stringify(previous)}`);
  if (current.layout !== "cols") throw new Error(`${source}: the model's output is an image ${current.h}×${current.w}×${current.c}; expected flat logits`);
  const outputSize = current.features;
  const [h, w, c] = shape;
  const imageSize = h * w * c;

  // Two buffers the nodes of a chunk write in turn, each as large as the largest activations.
  const largest = Math.max(tileBytes(input), ...planned.map((p) => tileBytes(p.output)));
  const buffers = [mem.alloc(largest * CHUNK_TILES), mem.alloc(largest * CHUNK_TILES)];
  // Batches under 8 go image by image where every node has a single-image path (a tile would be mostly padding).
  const singleSteps = single?.layout === "vec" ? planned.map((p) => p.single!) : undefined;
  const singleLargest = Math.max(singleBytes(singleStart), ...(singleSteps ?? []).map((p) => Math.max(singleBytes(p.output), p.scratchBytes ?? 0))) + 64;
  const singleBuffers = singleSteps ? [mem.alloc(singleLargest), mem.alloc(singleLargest), mem.alloc(singleLargest)] : [];

  function predictOne(image: Float32Array, logits: Float32Array) {
    const x = mem.floats(singleBuffers[0], imageSize);
    for (let p = 0; p < h * w; p++) for (let ch = 0; ch < c; ch++) x[ch * h * w + p] = image[p * c + ch];
    let [at, to] = [singleBuffers[0], singleBuffers[1]];
    for (const step of singleSteps!) {
      step.run(at, to, singleBuffers[2]);
      [at, to] = [to, at];
    }
    const out = mem.floats(at, outputSize * 4);
    for (let o = 0; o < outputSize; o++) logits[o] = out[o * 4];
  }

  return {
    name: model.name,
    inputShape: [...shape],
    outputSize,
    layers,
    singleImage: singleSteps !== undefined,
    predict(images: Float32Array, batch: number): Float32Array {
      if (!Number.isInteger(batch) || batch < 0) throw new Error(`predict: batch ${batch}; expected a non-negative integer`);
      if (!(images instanceof Float32Array) || images.length !== batch * imageSize) {
        throw new Error(`predict: expected a Float32Array of ${batch} × ${h}×${w}×${c} = ${batch * imageSize} values, got ${images?.length ?? "none"}`);
      }
      const logits = new Float32Array(batch * outputSize);
      if (singleSteps && batch < 8) {
        for (let n = 0; n < batch; n++) predictOne(images.subarray(n * imageSize, (n + 1) * imageSize), logits.subarray(n * outputSize, (n + 1) * outputSize));
        return logits;
      }
      for (let first = 0; first < batch; first += CHUNK_TILES * 8) {
        const count = Math.min(CHUNK_TILES * 8, batch - first);
        const tiles = Math.ceil(count / 8);
        // NHWC images → tiles [t][c][y][x][8]; the images past the batch are zeros.
        const x = mem.floats(buffers[0], tiles * imageSize * 8);
        x.fill(0);
        for (let n = 0; n < count; n++) {
          const base = Math.floor(n / 8) * imageSize * 8 + (n % 8);
          const image = (first + n) * imageSize;
          for (let p = 0; p < h * w; p++) for (let ch = 0; ch < c; ch++) x[base + (ch * h * w + p) * 8] = images[image + p * c + ch];
        }
        let at = 0;
        for (const step of planned) {
          step.run(buffers[at], buffers[1 - at], tiles);
          at = 1 - at;
        }
        // columns [outputs][8·tiles] → rows
        const cols = mem.floats(buffers[at], outputSize * tiles * 8);
        for (let n = 0; n < count; n++) for (let o = 0; o < outputSize; o++) logits[(first + n) * outputSize + o] = cols[o * tiles * 8 + n];
      }
      return logits;
    },
  };
}
