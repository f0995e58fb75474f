// fwprune's standalone sparse runtime (the package's "fwprune/runtime" entry): an exported model.fwsparse in, the
// model's outputs out, on fwprune's wasm kernels. No Node built-ins and no tfjs: the same code runs in a browser, a
// Web Worker and Node.
import type { NodeKind } from "../graph/types";
import { SparseFileHeader, decodeSparseFile, sparseFileBody } from "./format";
import { CheckedNode, checkGraph } from "./graph";
import { RuntimeMemory } from "./kernels";
import { PLAIN_PLANNERS, convertLayout } from "./nodes-plain";
import { WEIGHTED_PLANNERS } from "./nodes-weighted";
import { KernelPath, KindPlanner, Layout, Op, PlanContext, Value, assignBuffers, channelsOf, positionsOf, prepareNodes, tileFloats } from "./plan";
import { planSingle } from "./single";

export { CONTAINER_MAGIC } from "./container-frame";
export { SPARSE_FORMAT, SPARSE_KIND } from "./format";
export type { SparseFileHeader, SparseModelGraph } from "./format";
export type { KernelPath } from "./plan";

export interface RuntimeLayer {
  /** The graph node's name (conv1, bn1, add1, …) and kind. */
  name: string;
  kind: NodeKind;
  /** Which wasm kernel runs it: sparse (CSR over the non-zero weights), or none (a node without kernel weights). */
  path: KernelPath;
  weights: number;
  nonzeros: number;
  /** Set where the node is computed inside another one (a batch norm folded, a ReLU or a 2×2 max pool fused, a dropout). */
  fusedInto?: string;
}

export interface SparseRuntimeModel {
  name: string;
  /** One example's shape (an image [h, w, c]); examples are passed flat, row-major (NHWC), one after another. */
  inputShape: number[];
  /** One example's output shape, and its size (the values per example predict returns). */
  outputShape: number[];
  outputSize: number;
  layers: RuntimeLayer[];
  /** Whether one example past a batch's last full tile of 8 (a batch of 1, 9, …) runs alone, on planes of one float per position: models that are a chain of unpadded stride-1 convolutions, square max pools, a flatten and dense layers, with ReLU or no activation. */
  singleExample: boolean;
  /** The model's outputs [batch, outputSize] (row-major), what tfjs's predict gives, for examples [batch, ...inputShape]. */
  predict(examples: Float32Array, batch: number): Float32Array;
}

export interface LoadOptions {
  /** Names the file in error messages (default "model.fwsparse"). */
  source?: string;
}

/** Values of one chunk stay under this size (so that its activations stay near the caches), up to 32 tiles a chunk. */
const CHUNK_BYTES = 32 << 20;
const MAX_CHUNK_TILES = 32;
/** Examples past the last full tile run alone when there are at most this many (measured: one alone ran in 0.6 of a tile's time). */
const SINGLE_MAX = 1;

interface SubtleDigest {
  subtle: { digest(algorithm: string, data: Uint8Array): Promise<ArrayBuffer> };
}

/** Check the file's SHA-256 (Web Crypto), decode and check it, and lay the model out for the wasm kernels. */
export async function loadSparseModel(bytes: Uint8Array | ArrayBuffer, opts: LoadOptions = {}): Promise<SparseRuntimeModel> {
  const source = opts.source ?? "model.fwsparse";
  const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const crypto = (globalThis as unknown as { crypto?: SubtleDigest }).crypto;
  if (!crypto?.subtle) throw new Error("fwprune runtime: Web Crypto (crypto.subtle) is unavailable; browsers have it on https and localhost pages");
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", sparseFileBody(data, source)));
  const { header, tensors } = decodeSparseFile(data, digest, source);
  let nodes: CheckedNode[];
  try {
    nodes = checkGraph(header.model, (name) => header.tensors.find((t) => t.name === name)?.shape, [...tensors.keys()]);
  } catch (err) {
    throw new Error(`${source}: ${(err as Error).message}`);
  }
  const mem = await RuntimeMemory.create();
  return planModel(header, nodes, tensors, mem, source);
}

const PLANNERS: Partial<Record<NodeKind, KindPlanner>> = { ...WEIGHTED_PLANNERS, ...PLAIN_PLANNERS };

function planModel(header: SparseFileHeader, nodes: CheckedNode[], tensors: Map<string, Float32Array>, mem: RuntimeMemory, source: string): SparseRuntimeModel {
  const prepared = prepareNodes(nodes, tensors);
  const { alias, configs, tensors: nodeTensors } = prepared;
  const resolve = (name: string) => alias.get(name) ?? name;
  const readers = new Map<string, CheckedNode[]>();
  for (const n of nodes.filter((n) => !alias.has(n.spec.name))) for (const i of n.spec.inputs) readers.set(resolve(i), [...(readers.get(resolve(i)) ?? []), n]);

  const ops: Op[] = [];
  let nextId = 0;
  const byId = new Map<number, Value>();
  const newValue = (shape: number[], layout: Layout): Value => {
    const value = { id: nextId++, shape, layout };
    byId.set(value.id, value);
    return value;
  };
  const emit = (inputs: Value[], shape: number[], layout: Layout, run: Op["run"], scratch: number[] = []) => {
    const value = newValue(shape, layout);
    ops.push({ inputs: inputs.map((v) => v.id), output: value.id, run, scratch });
    return value;
  };
  // a value in the other layout is converted once, however many nodes read it so
  const converted = new Map<string, Value>();
  const as = (v: Value, layout: Layout): Value => {
    if (v.layout === layout) return v;
    const key = `${v.id}:${layout}`;
    if (!converted.has(key))
      converted.set(
        key,
        emit([v], v.shape, layout, (xs, out, tiles) => convertLayout(mem, v, xs[0], out, tiles, layout)),
      );
    return converted.get(key) as Value;
  };

  const input = newValue(nodes[0].shape, "tiles");
  const values = new Map<string, Value>([[nodes[0].spec.name, input]]);
  const fusedInto = new Map<string, string>();
  const layers: RuntimeLayer[] = [];
  for (const node of nodes.slice(1)) {
    const name = node.spec.name;
    const layer = { name, kind: node.spec.kind, path: "none" as KernelPath, weights: 0, nonzeros: 0 };
    const into = fusedInto.get(name) ?? (alias.has(name) ? resolve(name) : undefined);
    if (into !== undefined) {
      layers.push({ ...layer, fusedInto: into });
      continue;
    }
    const ctx: PlanContext = {
      node,
      config: configs.get(name) as Record<string, unknown>,
      inputs: node.spec.inputs.map((i) => values.get(resolve(i)) as Value),
      mem,
      tensor: (role) => nodeTensors.get(name)?.get(role),
      soleReader: readers.get(name)?.length === 1 ? readers.get(name)![0] : undefined,
      as,
      emit,
      fail: (what) => {
        throw new Error(`${source}: model node "${name}" (${node.spec.kind}): ${what}`);
      },
    };
    const planner = PLANNERS[node.spec.kind];
    if (!planner) ctx.fail(`the runtime has no kernel for ${node.spec.kind}`);
    const planned = planner!(ctx);
    values.set(name, planned.value);
    if (planned.fusedReader) {
      const reader = ctx.soleReader as CheckedNode;
      fusedInto.set(reader.spec.name, name);
      values.set(reader.spec.name, planned.value);
    }
    layers.push({ ...layer, path: planned.path, weights: planned.weights ?? 0, nonzeros: planned.nonzeros ?? 0 });
  }
  const last = nodes[nodes.length - 1];
  const output = values.get(resolve(last.spec.name)) as Value;
  const outputSize = tileFloats(output) / 8;
  const inputShape = nodes[0].shape;
  const inputSize = tileFloats(input) / 8;

  // Buffers: as many as the program keeps alive at once, each the size of the largest value of a chunk.
  const { bufferOf, buffers } = assignBuffers(ops, input.id, output.id);
  const largest = Math.max(...[...byId.values()].map(tileFloats)) * 4;
  const chunkTiles = Math.max(1, Math.min(MAX_CHUNK_TILES, Math.floor(CHUNK_BYTES / largest)));
  const pointers = Array.from({ length: buffers }, () => mem.alloc(largest * chunkTiles));
  const scratch = [0, 1].map((i) => mem.alloc(Math.max(0, ...ops.map((op) => op.scratch[i] ?? 0)) * chunkTiles));
  const steps = ops.map((op) => ({
    run: op.run,
    xs: op.inputs.map((v) => pointers[bufferOf.get(v) as number]),
    out: pointers[bufferOf.get(op.output) as number],
  }));
  const outAt = pointers[bufferOf.get(output.id) as number];
  // one example past the last full tile runs alone where the model allows it (a tile of it would be 7/8 padding)
  const single = planSingle(nodes, prepared, mem);

  return {
    name: header.model.name,
    inputShape: [...inputShape],
    outputShape: [...output.shape],
    outputSize,
    layers,
    singleExample: single !== undefined,
    predict(examples: Float32Array, batch: number): Float32Array {
      if (!Number.isInteger(batch) || batch < 0) throw new Error(`predict: batch ${batch}; expected a non-negative integer`);
      if (!(examples instanceof Float32Array) || examples.length !== batch * inputSize) {
        throw new Error(
          `predict: expected a Float32Array of ${batch} × ${inputShape.join("×")} = ${batch * inputSize} values, got ${examples?.length ?? "none"}`,
        );
      }
      const result = new Float32Array(batch * outputSize);
      const [cin, sin] = [channelsOf(input), positionsOf(input)];
      const [cout, sout] = [channelsOf(output), positionsOf(output)];
      const tiled = single && batch % 8 <= SINGLE_MAX ? batch - (batch % 8) : batch;
      for (let n = tiled; n < batch; n++) single!.predictOne(examples, n, result, n * outputSize);
      for (let first = 0; first < tiled; first += chunkTiles * 8) {
        const count = Math.min(chunkTiles * 8, tiled - first);
        const tiles = Math.ceil(count / 8);
        // examples (row-major, channels last) → tiles [t][c][position][8]; the lanes past the batch are zeros
        const x = mem.floats(pointers[0], tiles * inputSize * 8);
        x.fill(0);
        for (let n = 0; n < count; n++) {
          const base = Math.floor(n / 8) * inputSize * 8 + (n % 8);
          const example = (first + n) * inputSize;
          for (let s = 0; s < sin; s++) for (let c = 0; c < cin; c++) x[base + (c * sin + s) * 8] = examples[example + s * cin + c];
        }
        for (const step of steps) step.run(step.xs, step.out, tiles, scratch);
        const y = mem.floats(outAt, tiles * outputSize * 8);
        for (let n = 0; n < count; n++) {
          const row = (first + n) * outputSize;
          if (output.layout === "cols") {
            for (let o = 0; o < outputSize; o++) result[row + o] = y[o * tiles * 8 + n];
          } else {
            const base = Math.floor(n / 8) * outputSize * 8 + (n % 8);
            for (let s = 0; s < sout; s++) for (let c = 0; c < cout; c++) result[row + s * cout + c] = y[base + (c * sout + s) * 8];
          }
        }
      }
      return result;
    },
  };
}
