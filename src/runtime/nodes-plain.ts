import type { ActivationName, Padding } from "../graph/types";
import type { RuntimeMemory } from "./kernels";
import { KindPlanner, Layout, Value, blocksOf, channelsOf, positionsOf, tileFloats } from "./plan";

/**
 * The node kinds without kernels to prune: pools, global pools, activations, batch norm (where it does not fold),
 * flatten, reshape, add and concatenate. Plain loops over the runtime's memory, except flatten and the square
 * unpadded max pools (wasm); none of them is where a model's time goes.
 */

/** An activation over a value's buffer, in place; softmax over the channels of each image and position. */
export function activateInPlace(mem: RuntimeMemory, v: Value, at: number, tiles: number, activation: ActivationName): void {
  if (activation === "linear") return;
  const x = mem.floats(at, tiles * tileFloats(v));
  const n = x.length;
  // one loop per function, so that each stays monomorphic
  if (activation === "relu") for (let i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
  else if (activation === "relu6") for (let i = 0; i < n; i++) x[i] = x[i] > 0 ? (x[i] < 6 ? x[i] : 6) : 0;
  else if (activation === "sigmoid") for (let i = 0; i < n; i++) x[i] = 1 / (1 + Math.exp(-x[i]));
  else if (activation === "tanh") for (let i = 0; i < n; i++) x[i] = Math.tanh(x[i]);
  if (activation !== "softmax") return;
  const { blocks, blockFloats, run } = blocksOf(v, tiles);
  const channels = channelsOf(v);
  for (let b = 0; b < blocks; b++) {
    for (let r = 0; r < run; r++) {
      const first = b * blockFloats + r;
      let max = -Infinity;
      for (let c = 0; c < channels; c++) max = Math.max(max, x[first + c * run]);
      let sum = 0;
      for (let c = 0; c < channels; c++) sum += x[first + c * run] = Math.exp(x[first + c * run] - max);
      for (let c = 0; c < channels; c++) x[first + c * run] /= sum;
    }
  }
}

/** Tiles [t][f][8] ↔ columns [f][8t] of a vector value. */
export function convertLayout(mem: RuntimeMemory, v: Value, x: number, out: number, tiles: number, to: Layout): void {
  const f = channelsOf(v);
  if (to === "cols") {
    mem.loops.tilesToCols(x, out, tiles, f, positionsOf(v), 1, tiles * 32);
    return;
  }
  const [src, dst] = [mem.floats(x, tiles * f * 8), mem.floats(out, tiles * f * 8)];
  for (let t = 0; t < tiles; t++) for (let c = 0; c < f; c++) dst.set(src.subarray((c * tiles + t) * 8, (c * tiles + t + 1) * 8), (t * f + c) * 8);
}

const activation: KindPlanner = (ctx) => {
  const a = (ctx.config as { activation: ActivationName }).activation;
  const x = ctx.inputs[0];
  const mem = ctx.mem;
  const value = ctx.emit([x], x.shape, x.layout, (xs, out, tiles) => {
    const n = tiles * tileFloats(x);
    mem.floats(out, n).set(mem.floats(xs[0], n));
    activateInPlace(mem, x, out, tiles, a);
  });
  return { value, path: "none" };
};

/** Evaluated where it does not fold into the layer before it: x·γ/√(var+ε) + (β − mean·γ/√(var+ε)) per channel. */
const batchNorm: KindPlanner = (ctx) => {
  const x = ctx.inputs[0];
  const channels = channelsOf(x);
  const get = (role: string, fill: number) => ctx.tensor(role) ?? new Float32Array(channels).fill(fill);
  const [gamma, beta, mean, variance] = [get("gamma", 1), get("beta", 0), get("moving-mean", 0), get("moving-variance", 1)];
  const epsilon = (ctx.config as { epsilon: number }).epsilon;
  const scale = Float32Array.from(gamma, (g, c) => g / Math.sqrt(variance[c] + epsilon));
  const shift = Float32Array.from(beta, (b, c) => b - mean[c] * scale[c]);
  const mem = ctx.mem;
  const value = ctx.emit([x], x.shape, x.layout, (xs, out, tiles) => {
    const { blocks, blockFloats, run } = blocksOf(x, tiles);
    const [src, dst] = [mem.floats(xs[0], blocks * blockFloats), mem.floats(out, blocks * blockFloats)];
    for (let b = 0; b < blocks; b++)
      for (let c = 0; c < channels; c++) {
        const first = b * blockFloats + c * run;
        for (let i = first; i < first + run; i++) dst[i] = src[i] * scale[c] + shift[c];
      }
  });
  return { value, path: "none" };
};

function pool(kind: "max" | "avg"): KindPlanner {
  return (ctx) => {
    const c = ctx.config as { poolSize: [number, number]; strides: [number, number]; padding: Padding };
    const x = ctx.as(ctx.inputs[0], "tiles");
    const [h, w, ch] = x.shape;
    const [[kh, kw], [sh, sw]] = [c.poolSize, c.strides];
    const same = c.padding === "same";
    const [oh, ow] = same ? [Math.ceil(h / sh), Math.ceil(w / sw)] : [Math.floor((h - kh) / sh) + 1, Math.floor((w - kw) / sw) + 1];
    const top = same ? Math.floor(Math.max((oh - 1) * sh + kh - h, 0) / 2) : 0;
    const left = same ? Math.floor(Math.max((ow - 1) * sw + kw - w, 0) / 2) : 0;
    const mem = ctx.mem;
    const shape = [oh, ow, ch];
    if (kind === "max" && !same && kh === kw && sh === kh && sw === kw) {
      const run = kh === 2 ? mem.loops.maxPool2x2 : mem.loops.maxPoolTiles;
      return { value: ctx.emit([x], shape, "tiles", (xs, out, tiles) => run(xs[0], out, tiles * ch, h, w, kh === 2 ? 8 : kh)), path: "none" };
    }
    const value = ctx.emit([x], shape, "tiles", (xs, out, tiles) => {
      const [src, dst] = [mem.floats(xs[0], tiles * ch * h * w * 8), mem.floats(out, tiles * ch * oh * ow * 8)];
      const acc = new Float64Array(8);
      for (let p = 0; p < tiles * ch; p++)
        for (let oy = 0; oy < oh; oy++)
          for (let ox = 0; ox < ow; ox++) {
            acc.fill(kind === "max" ? -Infinity : 0);
            let count = 0;
            for (let y = Math.max(oy * sh - top, 0); y < Math.min(oy * sh - top + kh, h); y++)
              for (let xx = Math.max(ox * sw - left, 0); xx < Math.min(ox * sw - left + kw, w); xx++) {
                const at = ((p * h + y) * w + xx) * 8;
                count++;
                for (let l = 0; l < 8; l++) acc[l] = kind === "max" ? Math.max(acc[l], src[at + l]) : acc[l] + src[at + l];
              }
            const to = ((p * oh + oy) * ow + ox) * 8;
            for (let l = 0; l < 8; l++) dst[to + l] = kind === "max" ? acc[l] : acc[l] / count;
          }
    });
    return { value, path: "none" };
  };
}

function globalPool(kind: "max" | "avg"): KindPlanner {
  return (ctx) => {
    const x = ctx.as(ctx.inputs[0], "tiles");
    const [positions, ch, mem] = [positionsOf(x), channelsOf(x), ctx.mem];
    const value = ctx.emit([x], [ch], "tiles", (xs, out, tiles) => {
      const [src, dst] = [mem.floats(xs[0], tiles * ch * positions * 8), mem.floats(out, tiles * ch * 8)];
      const acc = new Float64Array(8);
      for (let p = 0; p < tiles * ch; p++) {
        let i = p * positions * 8;
        acc.fill(kind === "max" ? -Infinity : 0);
        if (kind === "max") for (let s = 0; s < positions; s++) for (let l = 0; l < 8; l++, i++) acc[l] = acc[l] > src[i] ? acc[l] : src[i];
        else for (let s = 0; s < positions; s++) for (let l = 0; l < 8; l++, i++) acc[l] += src[i];
        for (let l = 0; l < 8; l++) dst[p * 8 + l] = kind === "max" ? acc[l] : acc[l] / positions;
      }
    });
    return { value, path: "none" };
  };
}

/** Flatten: tiles → columns in the flat (row-major) order, with sparse.wat's tilesToCols. */
const flatten: KindPlanner = (ctx) => {
  const x = ctx.inputs[0];
  if (x.shape.length === 1) return { value: x, path: "none" };
  const mem = ctx.mem;
  const t = ctx.as(x, "tiles");
  const size = tileFloats(x) / 8;
  return {
    value: ctx.emit([t], [size], "cols", (xs, out, tiles) => mem.loops.tilesToCols(xs[0], out, tiles, channelsOf(x), positionsOf(x), 1, tiles * 32)),
    path: "none",
  };
};

/** Reshape: a gather within each tile from the flat (row-major) order of one shape to the other's. */
const reshape: KindPlanner = (ctx) => {
  const shape = (ctx.node.shape as number[]).slice();
  const x = ctx.as(ctx.inputs[0], "tiles");
  const [cin, cout] = [channelsOf(x), shape[shape.length - 1]];
  const [sin, sout] = [positionsOf(x), positionsOf({ shape })];
  const size = cin * sin;
  const from = new Int32Array(size);
  for (let q = 0; q < size; q++) from[(q % cout) * sout + Math.floor(q / cout)] = ((q % cin) * sin + Math.floor(q / cin)) * 8;
  const mem = ctx.mem;
  const value = ctx.emit([x], shape, "tiles", (xs, out, tiles) => {
    const [src, dst] = [mem.floats(xs[0], tiles * size * 8), mem.floats(out, tiles * size * 8)];
    for (let t = 0; t < tiles; t++)
      for (let i = 0; i < size; i++) {
        const [a, b] = [t * size * 8 + from[i], (t * size + i) * 8];
        for (let l = 0; l < 8; l++) dst[b + l] = src[a + l];
      }
  });
  return { value, path: "none" };
};

/** Inputs in one layout: columns if all are, tiles otherwise. */
function sameLayout(ctx: Parameters<KindPlanner>[0]): Value[] {
  const layout: Layout = ctx.inputs.every((v) => v.layout === "cols") ? "cols" : "tiles";
  return ctx.inputs.map((v) => ctx.as(v, layout));
}

/** Add, with the activation layer reading it alone applied in the same pass (src/runtime/plan.ts's prepareNodes). */
const add: KindPlanner = (ctx) => {
  const xs = sameLayout(ctx);
  const activation = (ctx.config.activation as ActivationName | undefined) ?? "linear";
  const mem = ctx.mem;
  const value = ctx.emit(xs, xs[0].shape, xs[0].layout, (ptrs, out, tiles) => {
    const n = tiles * tileFloats(xs[0]);
    const dst = mem.floats(out, n);
    dst.set(mem.floats(ptrs[0], n));
    for (const p of ptrs.slice(1)) {
      const src = mem.floats(p, n);
      for (let i = 0; i < n; i++) dst[i] += src[i];
    }
    activateInPlace(mem, xs[0], out, tiles, activation);
  });
  return { value, path: "none" };
};

/** Concatenate on the last axis: in either layout, each input's channels are one contiguous block per tile (or per chunk). */
const concatenate: KindPlanner = (ctx) => {
  const xs = sameLayout(ctx);
  const mem = ctx.mem;
  const shape = ctx.node.shape as number[];
  const out: Value = { id: -1, shape, layout: xs[0].layout };
  const value = ctx.emit(xs, shape, xs[0].layout, (ptrs, at, tiles) => {
    const whole = blocksOf(out, tiles);
    const dst = mem.floats(at, whole.blocks * whole.blockFloats);
    let offset = 0;
    xs.forEach((x, i) => {
      const part = blocksOf(x, tiles);
      const src = mem.floats(ptrs[i], part.blocks * part.blockFloats);
      for (let b = 0; b < part.blocks; b++) dst.set(src.subarray(b * part.blockFloats, (b + 1) * part.blockFloats), b * whole.blockFloats + offset);
      offset += part.blockFloats;
    });
  });
  return { value, path: "none" };
};

export const PLAIN_PLANNERS = {
  activation,
  "batch-norm": batchNorm,
  "max-pool": pool("max"),
  "avg-pool": pool("avg"),
  "global-max-pool": globalPool("max"),
  "global-avg-pool": globalPool("avg"),
  flatten,
  reshape,
  add,
  concatenate,
};
