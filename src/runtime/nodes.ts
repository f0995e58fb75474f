import { Csr, csrFromDense } from "../inference/csr";
import type { GraphNode } from "./format";
import type { RuntimeMemory } from "./kernels";

/**
 * The node kinds the runtime can run, each planned once at load: what it reads, what it leaves, and the wasm call
 * that computes it for a chunk of tiles. Activations live as tiles [t][c][h][w][8] (8 images innermost) or as
 * columns [features][8t] (images innermost). Adding a kind is one entry in NODE_KINDS.
 */
export type Activations = { layout: "tiles"; c: number; h: number; w: number } | { layout: "cols"; features: number };

/** Bytes of one tile (8 images) of activations. */
export const tileBytes = (a: Activations) => (a.layout === "tiles" ? a.c * a.h * a.w : a.features) * 32;

export type KernelPath = "sparse" | "dense" | "none";

export interface PlannedNode {
  output: Activations;
  /** Computes the node for `tiles` tiles from x into out (pointers into the runtime's memory). */
  run: (x: number, out: number, tiles: number) => void;
  path: KernelPath;
  /** Kernel weights and the non-zero ones among them (0 for a node without weights). */
  weights: number;
  nonzeros: number;
  /** The node also computed the next one (a 2×2 max pool fused into a sparse convolution). */
  fusesNext?: boolean;
}

export interface PlanContext {
  node: GraphNode;
  input: Activations;
  next?: GraphNode;
  mem: RuntimeMemory;
  /** The node's tensor of this role, checked against the shape it must have. */
  tensor(role: string, shape: number[]): Float32Array;
  /** An error naming the node. */
  fail(what: string): never;
}

type NodeKind = (ctx: PlanContext) => PlannedNode;

function intAttr(ctx: PlanContext, name: string, min: number): number {
  const v = ctx.node.attrs?.[name];
  if (!(typeof v === "number" && Number.isInteger(v) && v >= min)) ctx.fail(`attrs.${name}: ${JSON.stringify(v)}; expected an integer ≥ ${min}`);
  return v as number;
}

function relu(ctx: PlanContext): number {
  const a = ctx.node.attrs?.activation ?? "linear";
  if (a !== "relu" && a !== "linear") ctx.fail(`attrs.activation: ${JSON.stringify(a)}; expected "relu" or "linear"`);
  return a === "relu" ? 1 : 0;
}

function tilesInput(ctx: PlanContext): Extract<Activations, { layout: "tiles" }> {
  if (ctx.input.layout !== "tiles") ctx.fail(`${ctx.node.op} needs an image input [h, w, c]; its input is ${ctx.input.features} features`);
  return ctx.input as Extract<Activations, { layout: "tiles" }>;
}

interface CsrPointers {
  rowPtr: number;
  idx: number;
  vals: number;
  nonzeros: number;
}

function putCsr(mem: RuntimeMemory, csr: Csr): CsrPointers {
  return { rowPtr: mem.put(csr.rowPtr), idx: mem.put(csr.idx), vals: mem.put(csr.vals), nonzeros: csr.vals.length };
}

const conv2d: NodeKind = (ctx) => {
  const { c, h, w } = tilesInput(ctx);
  const co = intAttr(ctx, "filters", 1);
  const k = intAttr(ctx, "kernelSize", 1);
  const s = intAttr(ctx, "stride", 1);
  const padding = ctx.node.attrs?.padding ?? "valid";
  if (padding !== "valid" && padding !== "same") ctx.fail(`attrs.padding: ${JSON.stringify(padding)}; expected "valid" or "same"`);
  const act = relu(ctx);
  const kernel = ctx.tensor("kernel", [k, k, c, co]);
  const bias = ctx.mem.put(ctx.tensor("bias", [co]));
  const valid = padding === "valid";
  const [oh, ow] = valid ? [Math.floor((h - k) / s) + 1, Math.floor((w - k) / s) + 1] : [Math.ceil(h / s), Math.ceil(w / s)];
  if (oh < 1 || ow < 1) ctx.fail(`a ${k}×${k} kernel does not fit the ${h}×${w} input`);
  const weights = kernel.length;
  const nonzeros = kernel.reduce((n, x) => n + (x !== 0 ? 1 : 0), 0);
  const loops = ctx.mem.loops;
  if (!valid || s !== 1) {
    // No sparse kernel for these: the dense one, kernel as [co][dy][dx][ci].
    const byOutput = new Float32Array(weights);
    for (let i = 0; i < k * k * c; i++) for (let o = 0; o < co; o++) byOutput[o * k * k * c + i] = kernel[i * co + o];
    const pk = ctx.mem.put(byOutput);
    const top = valid ? 0 : Math.floor(Math.max((oh - 1) * s + k - h, 0) / 2);
    const left = valid ? 0 : Math.floor(Math.max((ow - 1) * s + k - w, 0) / 2);
    return {
      output: { layout: "tiles", c: co, h: oh, w: ow }, path: "dense", weights, nonzeros,
      run: (x, out, tiles) => loops.convTiles(x, out, pk, bias, tiles, c, h, w, co, k, s, top, left, oh, ow, act),
    };
  }
  // row = (dy·k + dx)·c + ci of the [k, k, c, co] kernel → element (ci·h + dy)·w + dx of an input tile plane
  const csr = putCsr(ctx.mem, csrFromDense(kernel, k * k * c, co, (row) => ((row % c) * h + Math.floor(row / (c * k))) * w + (Math.floor(row / c) % k)));
  const pool = ctx.next;
  if (pool?.op === "maxpool" && pool.attrs?.size === 2 && pool.inputs?.length === 1 && pool.inputs[0] === ctx.node.name) {
    const [ph, pw] = [Math.floor(oh / 2), Math.floor(ow / 2)];
    return {
      output: { layout: "tiles", c: co, h: ph, w: pw }, path: "sparse", weights, nonzeros, fusesNext: true,
      run: (x, out, tiles) => loops.spconvPool2x2(csr.rowPtr, csr.idx, csr.vals, bias, x, out, co, tiles, c * h * w * 32, co * ph * pw * 32,
        ph, pw, w * 32, pw * 32, ph * pw * 32, 32, act),
    };
  }
  return {
    output: { layout: "tiles", c: co, h: oh, w: ow }, path: "sparse", weights, nonzeros,
    run: (x, out, tiles) => loops.spmm(csr.rowPtr, csr.idx, csr.vals, bias, x, out, co, tiles, c * h * w * 32, co * oh * ow * 32,
      oh, w * 32, ow * 32, oh * ow * 32, ow * 2, 32, act),
  };
};

const maxpool: NodeKind = (ctx) => {
  const { c, h, w } = tilesInput(ctx);
  const size = intAttr(ctx, "size", 1);
  const [oh, ow] = [Math.floor(h / size), Math.floor(w / size)];
  if (oh < 1 || ow < 1) ctx.fail(`a ${size}×${size} pool does not fit the ${h}×${w} input`);
  const loops = ctx.mem.loops;
  const run = size === 2
    ? (x: number, out: number, tiles: number) => loops.maxPool2x2(x, out, tiles * c, h, w, 8)
    : (x: number, out: number, tiles: number) => loops.maxPoolTiles(x, out, tiles * c, h, w, size);
  return { output: { layout: "tiles", c, h: oh, w: ow }, path: "none", weights: 0, nonzeros: 0, run };
};

const flatten: NodeKind = (ctx) => {
  const { c, h, w } = tilesInput(ctx);
  const loops = ctx.mem.loops;
  return {
    output: { layout: "cols", features: h * w * c }, path: "none", weights: 0, nonzeros: 0,
    run: (x, out, tiles) => loops.tilesToCols(x, out, tiles, c, h, w, tiles * 32),
  };
};

/** Columns per segment of a dense layer: 8 vectors, the accumulators of spmm's widest chunk. */
const DENSE_BLOCK = 32;

const dense: NodeKind = (ctx) => {
  if (ctx.input.layout !== "cols") ctx.fail(`dense needs a flat input; its input is an image ${ctx.input.h}×${ctx.input.w}×${ctx.input.c} (flatten it first)`);
  const inputs = (ctx.input as Extract<Activations, { layout: "cols" }>).features;
  const units = intAttr(ctx, "units", 1);
  const act = relu(ctx);
  const kernel = ctx.tensor("kernel", [inputs, units]);
  const bias = ctx.mem.put(ctx.tensor("bias", [units]));
  const csr = putCsr(ctx.mem, csrFromDense(kernel, inputs, units, (row) => row));
  const loops = ctx.mem.loops;
  return {
    output: { layout: "cols", features: units }, path: "sparse", weights: kernel.length, nonzeros: csr.nonzeros,
    run: (x, out, tiles) => {
      const padded = tiles * 8;
      const full = Math.floor(padded / DENSE_BLOCK);
      const rest = padded - full * DENSE_BLOCK;
      const call = (offset: number, segs: number, segVecs: number) =>
        loops.spmm(csr.rowPtr, csr.idx, csr.vals, bias, x + offset, out + offset, units, 1, 0, 0, segs, DENSE_BLOCK * 4, DENSE_BLOCK * 4, padded * 4, segVecs, padded * 4, act);
      if (full > 0) call(0, full, DENSE_BLOCK / 4);
      if (rest > 0) call(full * DENSE_BLOCK * 4, 1, rest / 4);
    },
  };
};

export const NODE_KINDS: Record<string, NodeKind> = { conv2d, maxpool, flatten, dense };
