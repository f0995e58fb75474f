import type { ActivationName, Padding } from "../graph/types";
import { Csr, csrFromDense } from "../inference/csr";
import type { RuntimeMemory } from "./kernels";
import { activateInPlace } from "./nodes-plain";
import { KindPlanner, PlanContext, Planned, Value, channelsOf, positionsOf, reluFlag } from "./plan";

/**
 * The node kinds with kernels, each on sparse.wat's sparse product over tiles of 8 images (CSR over its output
 * channels, each stored weight adding w · (a run of inputs) to an output row): conv2d, depthwise-conv2d,
 * separable-conv2d (depthwise, then pointwise) and dense. A convolution with a stride or padding first copies its input
 * into padded, stride-phase planes (below), where every window's row is again a contiguous run.
 */

interface CsrPointers {
  rowPtr: number;
  idx: number;
  vals: number;
  nonzeros: number;
}

function putCsr(mem: RuntimeMemory, csr: Csr): CsrPointers {
  return { rowPtr: mem.put(csr.rowPtr), idx: mem.put(csr.idx), vals: mem.put(csr.vals), nonzeros: csr.vals.length };
}

const biasOf = (ctx: PlanContext, channels: number) => ctx.mem.put(ctx.tensor("bias") ?? new Float32Array(channels));
const countNonzeros = (k: Float32Array) => k.reduce((n, v) => n + (v !== 0 ? 1 : 0), 0);

/**
 * A conv window over an input [h, w, c]: output size, padding, and the input's planes as the sparse product reads
 * them. With stride (sh, sw) the padded input is split into sh·sw phase planes [c][py][px][hq][wq] (padded position
 * (qy·sh + py, qx·sw + px)), so that output row oy, tap (dy, dx) reads phase (dy mod sh, dx mod sw), row oy + ⌊dy/sh⌋,
 * columns ⌊dx/sw⌋ onward: one run of ow positions. Without stride or padding the planes are the input itself.
 */
interface ConvWindow {
  h: number;
  w: number;
  c: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  top: number;
  left: number;
  oh: number;
  ow: number;
  hq: number;
  wq: number;
  /** The input needs copying into padded phase planes first. */
  copies: boolean;
}

function convWindow([h, w, c]: number[], [kh, kw]: [number, number], [sh, sw]: [number, number], padding: Padding): ConvWindow {
  const same = padding === "same";
  const [oh, ow] = same ? [Math.ceil(h / sh), Math.ceil(w / sw)] : [Math.floor((h - kh) / sh) + 1, Math.floor((w - kw) / sw) + 1];
  const top = same ? Math.floor(Math.max((oh - 1) * sh + kh - h, 0) / 2) : 0;
  const left = same ? Math.floor(Math.max((ow - 1) * sw + kw - w, 0) / 2) : 0;
  const copies = sh !== 1 || sw !== 1 || top !== 0 || left !== 0 || (oh - 1) * sh + kh > h || (ow - 1) * sw + kw > w;
  const [hq, wq] = copies ? [Math.ceil(((oh - 1) * sh + kh) / sh), Math.ceil(((ow - 1) * sw + kw) / sw)] : [h, w];
  return { h, w, c, kh, kw, sh, sw, top, left, oh, ow, hq, wq, copies };
}

/** The element of an input tile's planes that tap (dy, dx) of channel ci reads for output position (0, 0). */
const tapIndex = (v: ConvWindow, dy: number, dx: number, ci: number) =>
  (((ci * v.sh + (dy % v.sh)) * v.sw + (dx % v.sw)) * v.hq + Math.floor(dy / v.sh)) * v.wq + Math.floor(dx / v.sw);

const planeFloats = (v: ConvWindow) => v.c * v.sh * v.sw * v.hq * v.wq * 8;

/** Copy tiles [t][c][h][w][8] into the window's zero-padded phase planes. */
function copyToPhases(mem: RuntimeMemory, v: ConvWindow, x: number, out: number, tiles: number) {
  const src = mem.floats(x, tiles * v.c * v.h * v.w * 8);
  const dst = mem.floats(out, tiles * planeFloats(v));
  dst.fill(0);
  for (let t = 0; t < tiles; t++)
    for (let ci = 0; ci < v.c; ci++)
      for (let py = 0; py < v.sh; py++)
        for (let px = 0; px < v.sw; px++)
          for (let qy = 0; qy < v.hq; qy++) {
            const y = qy * v.sh + py - v.top;
            if (y < 0 || y >= v.h) continue;
            const from = ((t * v.c + ci) * v.h + y) * v.w * 8;
            const to = ((((t * v.c + ci) * v.sh + py) * v.sw + px) * v.hq + qy) * v.wq * 8;
            if (v.sw === 1) {
              const [q0, q1] = [Math.max(0, v.left), Math.min(v.wq, v.w + v.left)];
              if (q1 > q0) dst.set(src.subarray(from + (q0 - v.left) * 8, from + (q1 - v.left) * 8), to + q0 * 8);
              continue;
            }
            for (let qx = 0; qx < v.wq; qx++) {
              const xx = qx * v.sw + px - v.left;
              if (xx >= 0 && xx < v.w) for (let l = 0; l < 8; l++) dst[to + qx * 8 + l] = src[from + xx * 8 + l];
            }
          }
}

/**
 * The sparse product of a window (conv or depthwise, CSR rows over output channels with tapIndex idx) from tiles at
 * x to tiles [co][oh][ow] at out, or, with `pooled`, to the 2×2 max pool of them (stride 1 only). `planes` is scratch
 * room for the phase planes.
 */
function windowProduct(mem: RuntimeMemory, v: ConvWindow, csr: CsrPointers, bias: number, co: number, relu: number, pooled: boolean) {
  const loops = mem.loops;
  const inTile = planeFloats(v) * 4;
  const [ph, pw] = [Math.floor(v.oh / 2), Math.floor(v.ow / 2)];
  return (x: number, out: number, tiles: number, planes: number) => {
    if (v.copies) copyToPhases(mem, v, x, planes, tiles);
    const input = v.copies ? planes : x;
    if (pooled) {
      loops.spconvPool2x2(
        csr.rowPtr,
        csr.idx,
        csr.vals,
        bias,
        input,
        out,
        co,
        tiles,
        inTile,
        co * ph * pw * 32,
        ph,
        pw,
        v.wq * 32,
        pw * 32,
        ph * pw * 32,
        32,
        relu,
      );
    } else {
      const plane = v.oh * v.ow * 32;
      loops.spmm(csr.rowPtr, csr.idx, csr.vals, bias, input, out, co, tiles, inTile, co * plane, v.oh, v.wq * 32, v.ow * 32, plane, v.ow * 2, 32, relu);
    }
  };
}

interface WindowConfig {
  kernelSize: [number, number];
  strides: [number, number];
  padding: Padding;
  activation: ActivationName;
}

/** A max pool 2×2, stride 2, unpadded, as the only reader of a stride-1 conv with a ReLU or none: computed in its kernel. */
function poolsInKernel(ctx: PlanContext, c: WindowConfig, v: ConvWindow): boolean {
  const r = ctx.soleReader;
  const p = r?.spec.kind === "max-pool" ? (r.spec.config as { poolSize: number[]; strides: number[]; padding: string }) : undefined;
  const twoByTwo = p !== undefined && p.poolSize.join() === "2,2" && p.strides.join() === "2,2" && p.padding === "valid";
  return twoByTwo && v.sh === 1 && v.sw === 1 && (c.activation === "relu" || c.activation === "linear") && v.oh >= 2 && v.ow >= 2;
}

/** The window's output value, the activation past ReLU applied after the sparse product. */
function emitWindow(ctx: PlanContext, x: Value, v: ConvWindow, co: number, c: WindowConfig, run: ReturnType<typeof windowProduct>, pooled: boolean) {
  const shape = pooled ? [Math.floor(v.oh / 2), Math.floor(v.ow / 2), co] : [v.oh, v.ow, co];
  const after = reluFlag(c.activation) ? "linear" : c.activation;
  const value = ctx.emit(
    [x],
    shape,
    "tiles",
    (xs, out, tiles, scratch) => {
      run(xs[0], out, tiles, scratch[0]);
      activateInPlace(ctx.mem, { id: -1, shape, layout: "tiles" }, out, tiles, after);
    },
    v.copies ? [planeFloats(v) * 4] : [],
  );
  return value;
}

const conv2d: KindPlanner = (ctx) => {
  const c = ctx.config as unknown as WindowConfig & { filters: number };
  const x = ctx.as(ctx.inputs[0], "tiles");
  const v = convWindow(x.shape, c.kernelSize, c.strides, c.padding);
  const kernel = ctx.tensor("kernel") as Float32Array;
  const rows = v.kh * v.kw * v.c;
  // kernel [kh, kw, c, co] as rows (dy·kw + dx)·c + ci
  const csr = putCsr(
    ctx.mem,
    csrFromDense(kernel, rows, c.filters, (row) => tapIndex(v, Math.floor(row / (v.kw * v.c)), Math.floor(row / v.c) % v.kw, row % v.c)),
  );
  const pooled = poolsInKernel(ctx, c, v);
  const run = windowProduct(ctx.mem, v, csr, biasOf(ctx, c.filters), c.filters, reluFlag(c.activation), pooled);
  return { value: emitWindow(ctx, x, v, c.filters, c, run, pooled), path: "sparse", weights: kernel.length, nonzeros: csr.nonzeros, fusedReader: pooled };
};

/** A depthwise kernel [kh, kw, c, m] as CSR over its c·m output channels, each reading its own input channel. */
function depthwiseCsr(kernel: Float32Array, v: ConvWindow, m: number): Csr {
  const rowPtr = new Int32Array(v.c * m + 1);
  const idx: number[] = [];
  const vals: number[] = [];
  for (let o = 0; o < v.c * m; o++) {
    const [ci, j] = [Math.floor(o / m), o % m];
    for (let dy = 0; dy < v.kh; dy++)
      for (let dx = 0; dx < v.kw; dx++) {
        const w = kernel[((dy * v.kw + dx) * v.c + ci) * m + j];
        if (w === 0) continue;
        idx.push(tapIndex(v, dy, dx, ci));
        vals.push(w);
      }
    rowPtr[o + 1] = idx.length;
  }
  return { rows: v.c * m, rowPtr, idx: Int32Array.from(idx), vals: Float32Array.from(vals) };
}

function depthwisePart(ctx: PlanContext, x: Value, c: WindowConfig & { depthMultiplier: number }, bias: number, relu: number) {
  const v = convWindow(x.shape, c.kernelSize, c.strides, c.padding);
  const kernel = ctx.tensor("depthwise-kernel") as Float32Array;
  const csr = putCsr(ctx.mem, depthwiseCsr(kernel, v, c.depthMultiplier));
  return { v, kernel, csr, run: windowProduct(ctx.mem, v, csr, bias, v.c * c.depthMultiplier, relu, false) };
}

const depthwiseConv2d: KindPlanner = (ctx) => {
  const c = ctx.config as unknown as WindowConfig & { depthMultiplier: number };
  const x = ctx.as(ctx.inputs[0], "tiles");
  const co = x.shape[2] * c.depthMultiplier;
  const { v, kernel, csr, run } = depthwisePart(ctx, x, c, biasOf(ctx, co), reluFlag(c.activation));
  return { value: emitWindow(ctx, x, v, co, c, run, false), path: "sparse", weights: kernel.length, nonzeros: csr.nonzeros };
};

const separableConv2d: KindPlanner = (ctx) => {
  const c = ctx.config as unknown as WindowConfig & { depthMultiplier: number; filters: number };
  const x = ctx.as(ctx.inputs[0], "tiles");
  const mid = x.shape[2] * c.depthMultiplier;
  const depthwise = depthwisePart(ctx, x, c, ctx.mem.put(new Float32Array(mid)), 0);
  const { oh, ow } = depthwise.v;
  const pointwise = ctx.tensor("pointwise-kernel") as Float32Array;
  const csr = putCsr(
    ctx.mem,
    csrFromDense(pointwise, mid, c.filters, (ci) => ci * oh * ow),
  );
  const [bias, relu, loops] = [biasOf(ctx, c.filters), reluFlag(c.activation), ctx.mem.loops];
  const shape = [oh, ow, c.filters];
  const plane = oh * ow * 32;
  const after = relu ? "linear" : c.activation;
  const value = ctx.emit(
    [x],
    shape,
    "tiles",
    (xs, out, tiles, scratch) => {
      depthwise.run(xs[0], scratch[1], tiles, scratch[0]);
      loops.spmm(
        csr.rowPtr,
        csr.idx,
        csr.vals,
        bias,
        scratch[1],
        out,
        c.filters,
        tiles,
        mid * plane,
        c.filters * plane,
        oh,
        ow * 32,
        ow * 32,
        plane,
        ow * 2,
        32,
        relu,
      );
      activateInPlace(ctx.mem, { id: -1, shape, layout: "tiles" }, out, tiles, after);
    },
    [depthwise.v.copies ? planeFloats(depthwise.v) * 4 : 0, mid * plane],
  );
  const weights = depthwise.kernel.length + pointwise.length;
  return { value, path: "sparse", weights, nonzeros: countNonzeros(depthwise.kernel) + countNonzeros(pointwise) };
};

/** Columns per segment of a dense layer on vectors: 8 vectors, the accumulators of spmm's widest chunk. */
const DENSE_BLOCK = 32;

const dense: KindPlanner = (ctx): Planned => {
  const c = ctx.config as { units: number; activation: ActivationName };
  const input = ctx.inputs[0];
  const features = channelsOf(input);
  const kernel = ctx.tensor("kernel") as Float32Array;
  const [bias, relu, loops] = [biasOf(ctx, c.units), reluFlag(c.activation), ctx.mem.loops];
  const after = relu ? "linear" : c.activation;
  const shape = [...input.shape.slice(0, -1), c.units];
  const positions = positionsOf(input);
  const csr = putCsr(
    ctx.mem,
    csrFromDense(kernel, features, c.units, (row) => row * positions),
  );
  const planned = { path: "sparse" as const, weights: kernel.length, nonzeros: csr.nonzeros };
  if (input.shape.length > 1) {
    // on the last axis of an image: a 1×1 convolution over the tiles' positions
    const x = ctx.as(input, "tiles");
    const plane = positions * 32;
    const value = ctx.emit([x], shape, "tiles", (xs, out, tiles) => {
      loops.spmm(csr.rowPtr, csr.idx, csr.vals, bias, xs[0], out, c.units, tiles, features * plane, c.units * plane, 1, 0, 0, plane, positions * 2, 32, relu);
      activateInPlace(ctx.mem, { id: -1, shape, layout: "tiles" }, out, tiles, after);
    });
    return { ...planned, value };
  }
  const x = ctx.as(input, "cols");
  const value = ctx.emit([x], shape, "cols", (xs, out, tiles) => {
    const padded = tiles * 8;
    const full = Math.floor(padded / DENSE_BLOCK);
    const rest = padded - full * DENSE_BLOCK;
    const call = (offset: number, segs: number, segVecs: number) =>
      loops.spmm(
        csr.rowPtr,
        csr.idx,
        csr.vals,
        bias,
        xs[0] + offset,
        out + offset,
        c.units,
        1,
        0,
        0,
        segs,
        DENSE_BLOCK * 4,
        DENSE_BLOCK * 4,
        padded * 4,
        segVecs,
        padded * 4,
        relu,
      );
    if (full > 0) call(0, full, DENSE_BLOCK / 4);
    if (rest > 0) call(full * DENSE_BLOCK * 4, 1, rest / 4);
    activateInPlace(ctx.mem, { id: -1, shape, layout: "cols" }, out, tiles, after);
  });
  return { ...planned, value };
};

export const WEIGHTED_PLANNERS = { conv2d, "depthwise-conv2d": depthwiseConv2d, "separable-conv2d": separableConv2d, dense };
