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

/**
 * One image alone (batches under 8, where a tile would be mostly padding): planes [c][h][wp] of one float per
 * position, rows wp ≥ w floats apart (the columns past w are scratch), or a vector [features][4] (column 0 holds the
 * image; spmm's narrowest run is 4 floats).
 */
export type SingleActivations = { layout: "planes"; c: number; h: number; w: number; wp: number } | { layout: "vec"; features: number };

export const singleBytes = (a: SingleActivations) => (a.layout === "planes" ? a.c * a.h * a.wp : a.features * 4) * 4;

export interface SingleImageStep {
  output: SingleActivations;
  /** x → out, with a scratch buffer of `scratchBytes`. */
  run: (x: number, out: number, scratch: number) => void;
  scratchBytes?: number;
}

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
  /** The same node for one image alone, where the kind has such a path (and `singleInput` was given). */
  single?: SingleImageStep;
}

export interface PlanContext {
  node: GraphNode;
  input: Activations;
  next?: GraphNode;
  /** The previous node's output for one image alone, if every node so far has a single-image path. */
  singleInput?: SingleActivations;
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
      output: { layout: "tiles", c: co, h: oh, w: ow },
      path: "dense",
      weights,
      nonzeros,
      run: (x, out, tiles) => loops.convTiles(x, out, pk, bias, tiles, c, h, w, co, k, s, top, left, oh, ow, act),
    };
  }
  // row = (dy·k + dx)·c + ci of the [k, k, c, co] kernel → element (ci·h + dy)·w + dx of an input tile plane
  const csr = putCsr(
    ctx.mem,
    csrFromDense(kernel, k * k * c, co, (row) => ((row % c) * h + Math.floor(row / (c * k))) * w + (Math.floor(row / c) % k)),
  );
  const pool = ctx.next;
  const fused = pool?.op === "maxpool" && pool.attrs?.size === 2 && pool.inputs?.length === 1 && pool.inputs[0] === ctx.node.name;
  const single = ctx.singleInput?.layout === "planes" ? singleConv(ctx, ctx.singleInput, kernel, bias, co, k, act, fused) : undefined;
  if (fused) {
    const [ph, pw] = [Math.floor(oh / 2), Math.floor(ow / 2)];
    return {
      single,
      output: { layout: "tiles", c: co, h: ph, w: pw },
      path: "sparse",
      weights,
      nonzeros,
      fusesNext: true,
      run: (x, out, tiles) =>
        loops.spconvPool2x2(
          csr.rowPtr,
          csr.idx,
          csr.vals,
          bias,
          x,
          out,
          co,
          tiles,
          c * h * w * 32,
          co * ph * pw * 32,
          ph,
          pw,
          w * 32,
          pw * 32,
          ph * pw * 32,
          32,
          act,
        ),
    };
  }
  return {
    single,
    output: { layout: "tiles", c: co, h: oh, w: ow },
    path: "sparse",
    weights,
    nonzeros,
    run: (x, out, tiles) =>
      loops.spmm(csr.rowPtr, csr.idx, csr.vals, bias, x, out, co, tiles, c * h * w * 32, co * oh * ow * 32, oh, w * 32, ow * 32, oh * ow * 32, ow * 2, 32, act),
  };
};

const maxpool: NodeKind = (ctx) => {
  const { c, h, w } = tilesInput(ctx);
  const size = intAttr(ctx, "size", 1);
  const [oh, ow] = [Math.floor(h / size), Math.floor(w / size)];
  if (oh < 1 || ow < 1) ctx.fail(`a ${size}×${size} pool does not fit the ${h}×${w} input`);
  const loops = ctx.mem.loops;
  const run =
    size === 2
      ? (x: number, out: number, tiles: number) => loops.maxPool2x2(x, out, tiles * c, h, w, 8)
      : (x: number, out: number, tiles: number) => loops.maxPoolTiles(x, out, tiles * c, h, w, size);
  const single = ctx.singleInput?.layout === "planes" ? poolPlanes(ctx.mem, ctx.singleInput, size) : undefined;
  return { output: { layout: "tiles", c, h: oh, w: ow }, path: "none", weights: 0, nonzeros: 0, run, single };
};

const flatten: NodeKind = (ctx) => {
  const { c, h, w } = tilesInput(ctx);
  const loops = ctx.mem.loops;
  const p = ctx.singleInput;
  const single: SingleImageStep | undefined =
    p?.layout !== "planes"
      ? undefined
      : {
          output: { layout: "vec", features: h * w * c },
          run: (x, out) => {
            const [from, to] = [ctx.mem.floats(x, p.c * p.h * p.wp), ctx.mem.floats(out, h * w * c * 4)];
            for (let y = 0; y < h; y++)
              for (let xx = 0; xx < w; xx++) for (let ci = 0; ci < c; ci++) to[((y * w + xx) * c + ci) * 4] = from[(ci * h + y) * p.wp + xx];
          },
        };
  return {
    output: { layout: "cols", features: h * w * c },
    path: "none",
    weights: 0,
    nonzeros: 0,
    single,
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
  const csr = putCsr(
    ctx.mem,
    csrFromDense(kernel, inputs, units, (row) => row),
  );
  const loops = ctx.mem.loops;
  const single: SingleImageStep | undefined =
    ctx.singleInput?.layout !== "vec"
      ? undefined
      : {
          output: { layout: "vec", features: units },
          run: (x, out) => loops.spmm(csr.rowPtr, csr.idx, csr.vals, bias, x, out, units, 1, 0, 0, 1, 16, 16, 16, 1, 16, act),
        };
  return {
    single,
    output: { layout: "cols", features: units },
    path: "sparse",
    weights: kernel.length,
    nonzeros: csr.nonzeros,
    run: (x, out, tiles) => {
      const padded = tiles * 8;
      const full = Math.floor(padded / DENSE_BLOCK);
      const rest = padded - full * DENSE_BLOCK;
      const call = (offset: number, segs: number, segVecs: number) =>
        loops.spmm(
          csr.rowPtr,
          csr.idx,
          csr.vals,
          bias,
          x + offset,
          out + offset,
          units,
          1,
          0,
          0,
          segs,
          DENSE_BLOCK * 4,
          DENSE_BLOCK * 4,
          padded * 4,
          segVecs,
          padded * 4,
          act,
        );
      if (full > 0) call(0, full, DENSE_BLOCK / 4);
      if (rest > 0) call(full * DENSE_BLOCK * 4, 1, rest / 4);
    },
  };
};

/**
 * A valid stride-1 convolution of one image as spmm over planes: segments are output rows, each a run of ⌈ow/4⌉
 * vectors read from input rows wp floats apart (idx = (ci·h + dy)·wp + dx, one float per position); the runs past
 * ow (up to 3 floats) are scratch. With `pooled`, the 2×2 max pool after it, through the scratch buffer.
 */
function singleConv(
  ctx: PlanContext,
  input: Extract<SingleActivations, { layout: "planes" }>,
  kernel: Float32Array,
  bias: number,
  co: number,
  k: number,
  act: number,
  pooled: boolean,
): SingleImageStep {
  const { c, h, w, wp } = input;
  const [oh, ow] = [h - k + 1, w - k + 1];
  const segVecs = Math.ceil(ow / 4);
  const owp = 4 * segVecs;
  const csr = putCsr(
    ctx.mem,
    csrFromDense(kernel, k * k * c, co, (row) => ((row % c) * h + Math.floor(row / (c * k))) * wp + (Math.floor(row / c) % k)),
  );
  const loops = ctx.mem.loops;
  const conv = (x: number, out: number) =>
    loops.spmm(csr.rowPtr, csr.idx, csr.vals, bias, x, out, co, 1, 0, 0, oh, wp * 4, owp * 4, oh * owp * 4, segVecs, 4, act);
  const convOut = { layout: "planes" as const, c: co, h: oh, w: ow, wp: owp };
  if (!pooled) return { output: convOut, run: conv };
  const pool = poolPlanes(ctx.mem, convOut, 2);
  return { output: pool.output, run: (x, out, scratch) => (conv(x, scratch), pool.run(scratch, out, x)), scratchBytes: singleBytes(convOut) };
}

/** A size×size, stride-size max pool of one image's planes, in plain JS (a few thousand maxima). */
function poolPlanes(mem: RuntimeMemory, p: Extract<SingleActivations, { layout: "planes" }>, size: number): SingleImageStep {
  const [oh, ow] = [Math.floor(p.h / size), Math.floor(p.w / size)];
  return {
    output: { layout: "planes", c: p.c, h: oh, w: ow, wp: ow },
    run: (x, out) => {
      const [from, to] = [mem.floats(x, p.c * p.h * p.wp), mem.floats(out, p.c * oh * ow)];
      let o = 0;
      for (let ci = 0; ci < p.c; ci++) {
        for (let i = 0; i < oh; i++) {
          for (let j = 0; j < ow; j++) {
            let m = -Infinity;
            for (let dy = 0; dy < size; dy++) for (let dx = 0; dx < size; dx++) m = Math.max(m, from[(ci * p.h + i * size + dy) * p.wp + j * size + dx]);
            to[o++] = m;
          }
        }
      }
    },
  };
}

export const NODE_KINDS: Record<string, NodeKind> = { conv2d, maxpool, flatten, dense };
