import * as tf from "@tensorflow/tfjs";
import { LayerSpec, ModelSpec, paramShapes } from "../model";
import { ConvPoolAttrs, MAX_POOL_TILES, SPARSE_CONV_POOL, SPARSE_SPMM, SpmmAttrs, TILES_TO_COLS, registerSparseKernels, sparseKernelsAvailable } from "../kernels/sparse";
import { median } from "../train";
import { Csr, csrFromDense } from "./csr";

/**
 * A pruned model compiled for inference: each conv and dense layer runs either through tfjs's dense kernels (the
 * same ops as model.ts's forward) or through sparse.wat's sparse product over its non-zero weights, whichever the
 * calibration measured faster, the layout conversions between the two included.
 *
 * Layouts: tfjs's "nhwc" [n, h, w, c] and "rows" [n, features]; the sparse kernels' "tiles" [n/8, c, h, w, 8]
 * (eight images innermost, so one output row of a convolution is a run of floats) and "cols" [features, n]
 * (images innermost). The batch is padded to a multiple of 8 in tiles and cols.
 */
export const TILE = 8;

export type LayerPath = "dense" | "sparse";
type Layout = "nhwc" | "tiles" | "rows" | "cols";

export interface CompileOptions {
  /** Applied to the weights first (pruned weights are exact zeros either way). */
  mask?: Record<string, Float32Array>;
  /** "auto" (default): each layer's path from measured speed; or every layer one way; or per kernel name ("conv2"). */
  paths?: "auto" | LayerPath | Record<string, LayerPath>;
  /** Images per calibration pass (default 256); timings do not depend on the values, so the images are noise. */
  calibrationBatch?: number;
  /** Timed passes per step in calibration (the median counts; default 5). */
  calibrationRepeats?: number;
}

export interface LayerReport {
  /** conv1, conv2, dense1, … */
  layer: string;
  path: LayerPath;
  weights: number;
  nonzeros: number;
  /**
   * Calibration (when the layer had a choice): milliseconds per calibration batch of the whole model with this layer
   * on the dense and on the sparse path, every other layer as chosen.
   */
  denseMs?: number;
  sparseMs?: number;
}

export interface StepTiming {
  step: string;
  layer: string;
  ms: number;
}

export interface SparseModel {
  spec: ModelSpec;
  layers: LayerReport[];
  /** Logits [n, classes] for images [n, h, w, c], as model.ts's forward computes them. */
  predict(images: tf.Tensor4D): tf.Tensor2D;
  /** The same, step by step, with the milliseconds of each step (conversions, layers, pools) for a profile. */
  profile(images: tf.Tensor4D): StepTiming[];
  dispose(): void;
}

interface Geometry {
  h: number;
  w: number;
  c: number;
}

interface ConvOp {
  kind: "conv";
  name: string;
  layer: Extract<LayerSpec, { type: "conv2d" }>;
  input: Geometry;
  output: Geometry;
  kernel: tf.Tensor4D;
  bias: tf.Tensor1D;
  /** Undefined where the sparse kernel does not apply (padding "same", stride > 1). */
  csr?: CsrTensors;
  nonzeros: number;
}
interface PoolOp {
  kind: "pool";
  size: number;
  input: Geometry;
}
interface FlattenOp {
  kind: "flatten";
  input: Geometry;
}
interface DenseOp {
  kind: "dense";
  name: string;
  layer: Extract<LayerSpec, { type: "dense" }>;
  inputs: number;
  units: number;
  kernel: tf.Tensor2D;
  bias: tf.Tensor1D;
  csr: CsrTensors;
  nonzeros: number;
}
type Op = ConvOp | PoolOp | FlattenOp | DenseOp;

interface CsrTensors {
  rowPtr: tf.Tensor1D;
  idx: tf.Tensor1D;
  vals: tf.Tensor1D;
}

function csrTensors(csr: Csr): CsrTensors {
  return {
    rowPtr: tf.tensor1d(csr.rowPtr, "int32"),
    idx: tf.tensor1d(csr.idx, "int32"),
    vals: tf.tensor1d(csr.vals, "float32"),
  };
}

/** A step of a compiled program: what runs, and the layout it leaves. */
interface Step {
  key: string;
  label: string;
  /** The conv or dense layer whose time it counts toward (its pool after it, the conversions before it). */
  layer: string;
  run: (x: tf.Tensor, n: number) => tf.Tensor;
  /** The input it expects (for calibration): layout and geometry at that point. */
  inLayout: Layout;
  at: Geometry | number;
}

const ceilTile = (n: number) => Math.ceil(n / TILE) * TILE;

function toTiles(x: tf.Tensor, n: number): tf.Tensor {
  const [, h, w, c] = x.shape;
  const padded = ceilTile(n);
  const full = padded > n ? tf.pad(x, [[0, padded - n], [0, 0], [0, 0], [0, 0]]) : x;
  return tf.transpose(tf.reshape(full, [padded / TILE, TILE, h, w, c]), [0, 4, 2, 3, 1]);
}

function toNhwc(x: tf.Tensor, n: number): tf.Tensor {
  const [t, c, h, w] = x.shape;
  const nhwc = tf.reshape(tf.transpose(x, [0, 4, 2, 3, 1]), [t * TILE, h, w, c]);
  return t * TILE > n ? tf.slice(nhwc, [0, 0, 0, 0], [n, -1, -1, -1]) : nhwc;
}

function toCols(x: tf.Tensor, n: number): tf.Tensor {
  const cols = tf.transpose(x);
  const padded = ceilTile(n);
  return padded > n ? tf.pad(cols, [[0, 0], [0, padded - n]]) : cols;
}

function toRows(x: tf.Tensor, n: number): tf.Tensor {
  const rows = tf.transpose(x);
  return rows.shape[0] > n ? tf.slice(rows, [0, 0], [n, -1]) : rows;
}

/** tiles [t, c, h, w, 8] → cols [h·w·c, 8t]: the features in flatten's (h, w, c) order. */
function tilesToCols(x: tf.Tensor): tf.Tensor {
  return tf.engine().runKernel(TILES_TO_COLS, { x } as unknown as tf.NamedTensorMap, {}) as tf.Tensor;
}

function convPoolSparse(op: ConvOp, x: tf.Tensor): tf.Tensor {
  const csr = op.csr as CsrTensors;
  const attrs: ConvPoolAttrs = {
    input: [op.input.c, op.input.h, op.input.w],
    kernel: op.layer.kernelSize,
    channels: op.output.c,
    relu: (op.layer.activation ?? "linear") === "relu",
  };
  const inputs = { x, rowPtr: csr.rowPtr, idx: csr.idx, vals: csr.vals, bias: op.bias } as unknown as tf.NamedTensorMap;
  return tf.engine().runKernel(SPARSE_CONV_POOL, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
}

function convSparse(op: ConvOp, x: tf.Tensor): tf.Tensor {
  const { input: i, output: o } = op;
  const t = x.shape[0];
  const bytes = TILE * 4;
  const attrs: SpmmAttrs = {
    outShape: [t, o.c, o.h, o.w, TILE],
    rows: o.c,
    inTile: i.c * i.h * i.w * bytes,
    outTile: o.c * o.h * o.w * bytes,
    inSeg: i.w * bytes,
    outSeg: o.w * bytes,
    outRow: o.h * o.w * bytes,
    scale: bytes,
    relu: (op.layer.activation ?? "linear") === "relu",
    passes: [{ inOffset: 0, outOffset: 0, tiles: t, segs: o.h, segVecs: (o.w * TILE) / 4 }],
  };
  return runSpmm(x, op.csr as CsrTensors, op.bias, attrs);
}

/** Columns per segment of a dense layer: 8 vectors, the accumulators of spmm's widest chunk. */
const DENSE_BLOCK = 32;

function denseSparse(op: DenseOp, x: tf.Tensor): tf.Tensor {
  const padded = x.shape[1] as number;
  const full = Math.floor(padded / DENSE_BLOCK);
  const rest = padded - full * DENSE_BLOCK;
  const passes = [];
  if (full > 0) passes.push({ inOffset: 0, outOffset: 0, tiles: 1, segs: full, segVecs: DENSE_BLOCK / 4 });
  if (rest > 0) passes.push({ inOffset: full * DENSE_BLOCK * 4, outOffset: full * DENSE_BLOCK * 4, tiles: 1, segs: 1, segVecs: rest / 4 });
  const attrs: SpmmAttrs = {
    outShape: [op.units, padded],
    rows: op.units,
    inTile: 0,
    outTile: 0,
    inSeg: DENSE_BLOCK * 4,
    outSeg: DENSE_BLOCK * 4,
    outRow: padded * 4,
    scale: padded * 4,
    relu: (op.layer.activation ?? "linear") === "relu",
    passes,
  };
  return runSpmm(x, op.csr, op.bias, attrs);
}

function runSpmm(x: tf.Tensor, csr: CsrTensors, bias: tf.Tensor1D, attrs: SpmmAttrs): tf.Tensor {
  const inputs = { x, rowPtr: csr.rowPtr, idx: csr.idx, vals: csr.vals, bias } as unknown as tf.NamedTensorMap;
  return tf.engine().runKernel(SPARSE_SPMM, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
}

/** Build the ops of a spec from its weights (masked), with CSR copies of every kernel the sparse path can run. */
function buildOps(spec: ModelSpec, weights: Record<string, Float32Array>, mask?: Record<string, Float32Array>): Op[] {
  const shapes = new Map(paramShapes(spec).map((p) => [p.name, p.shape]));
  const values = (name: string) => {
    const v = weights[name];
    const size = (shapes.get(name) as number[]).reduce((a, b) => a * b, 1);
    if (!v || v.length !== size) throw new Error(`weights["${name}"]: expected ${size} values, got ${v ? v.length : "none"}`);
    const m = mask?.[name];
    if (mask && name.endsWith("/kernel") && (!m || m.length !== size)) throw new Error(`mask["${name}"]: expected ${size} values, got ${m ? m.length : "none"}`);
    return m ? v.map((x, i) => (m[i] === 0 ? 0 : x)) : v;
  };
  let [h, w, c] = spec.inputShape;
  let conv = 0;
  let dense = 0;
  const ops: Op[] = [];
  for (const layer of spec.layers) {
    if (layer.type === "conv2d") {
      const name = `conv${++conv}`;
      const k = layer.kernelSize;
      const stride = layer.stride ?? 1;
      const valid = (layer.padding ?? "valid") === "valid";
      const out = valid ? { h: Math.floor((h - k) / stride) + 1, w: Math.floor((w - k) / stride) + 1, c: layer.filters } : { h: Math.ceil(h / stride), w: Math.ceil(w / stride), c: layer.filters };
      const kernel = values(`${name}/kernel`);
      const input = { h, w, c };
      const csr = csrFromDense(kernel, k * k * c, layer.filters, (row) => {
        // row = (dy·k + dx)·c + ci of the [k, k, c, co] kernel → element (ci·h + dy)·w + dx of an input tile plane
        const ci = row % c;
        const dx = Math.floor(row / c) % k;
        const dy = Math.floor(row / (c * k));
        return (ci * h + dy) * w + dx;
      });
      ops.push({
        kind: "conv", name, layer, input, output: out,
        kernel: tf.tensor4d(kernel, [k, k, c, layer.filters]),
        bias: tf.tensor1d(values(`${name}/bias`)),
        csr: valid && stride === 1 ? csrTensors(csr) : undefined,
        nonzeros: csr.vals.length,
      });
      [h, w, c] = [out.h, out.w, out.c];
    } else if (layer.type === "maxpool") {
      ops.push({ kind: "pool", size: layer.size, input: { h, w, c } });
      [h, w] = [Math.floor(h / layer.size), Math.floor(w / layer.size)];
    } else if (layer.type === "flatten") {
      ops.push({ kind: "flatten", input: { h, w, c } });
      [h, w, c] = [1, 1, h * w * c];
    } else {
      const name = `dense${++dense}`;
      const inputs = h * w * c;
      const kernel = values(`${name}/kernel`);
      const csr = csrFromDense(kernel, inputs, layer.units, (row) => row);
      ops.push({
        kind: "dense", name, layer, inputs, units: layer.units,
        kernel: tf.tensor2d(kernel, [inputs, layer.units]),
        bias: tf.tensor1d(values(`${name}/bias`)),
        csr: csrTensors(csr),
        nonzeros: csr.vals.length,
      });
      [h, w, c] = [1, 1, layer.units];
    }
  }
  return ops;
}

/** The program for one choice of paths: the ops in their layouts, with conversions where layouts change. */
function program(ops: Op[], paths: Map<string, LayerPath>): Step[] {
  const steps: Step[] = [];
  let layout = "nhwc" as Layout;
  const layered = ops.filter((op): op is ConvOp | DenseOp => op.kind === "conv" || op.kind === "dense");
  // Pools and conversions count toward the layer before them; flatten and the conversions into a layer toward it.
  const owner = (i: number, after = false) => {
    const before = layered.filter((op) => ops.indexOf(op) <= i);
    const next = layered.find((op) => ops.indexOf(op) >= i);
    return (after ? before[before.length - 1]?.name : undefined) ?? next?.name ?? before[before.length - 1]?.name ?? "";
  };
  const push = (step: Omit<Step, "inLayout">) => steps.push({ ...step, inLayout: layout });
  const convert = (to: Layout, at: Geometry | number, where: number) => {
    if (layout === to) return;
    const from = layout;
    const run = from === "nhwc" ? toTiles : from === "tiles" ? toNhwc : from === "rows" ? toCols : toRows;
    push({ key: `${where}:${from}>${to}`, label: `${from}→${to}`, layer: owner(where, where >= ops.length), run, at });
    layout = to;
  };
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    if (op.kind === "conv") {
      const sparse = paths.get(op.name) === "sparse" && op.csr !== undefined;
      convert(sparse ? "tiles" : "nhwc", op.input, i);
      const activation = op.layer.activation ?? "linear";
      const next = ops[i + 1];
      if (sparse && next?.kind === "pool" && next.size === 2) {
        // The pool runs inside the convolution's kernel: only the pooled outputs are written.
        push({ key: `${i}:tiles+pool`, label: `${op.name} sparse + maxpool`, layer: op.name, run: (x) => convPoolSparse(op, x), at: op.input });
        i++;
        continue;
      }
      const run = sparse
        ? (x: tf.Tensor) => convSparse(op, x)
        : (x: tf.Tensor) => tf.fused.conv2d({ x: x as tf.Tensor4D, filter: op.kernel, bias: op.bias, strides: op.layer.stride ?? 1, pad: op.layer.padding ?? "valid", activation });
      push({ key: `${i}:${layout}`, label: `${op.name} ${sparse ? "sparse" : "dense"}`, layer: op.name, run, at: op.input });
    } else if (op.kind === "pool") {
      if (layout === "tiles" && op.size !== 2) convert("nhwc", op.input, i);
      const tiles = layout === "tiles";
      const run = tiles
        ? (x: tf.Tensor) => tf.engine().runKernel(MAX_POOL_TILES, { x } as unknown as tf.NamedTensorMap, {}) as tf.Tensor
        : (x: tf.Tensor) => tf.maxPool(x as tf.Tensor4D, op.size, op.size, "valid");
      push({ key: `${i}:${layout}`, label: `maxpool (${layout})`, layer: owner(i, true), run, at: op.input });
    } else if (op.kind === "flatten") {
      const fromTiles = layout === "tiles";
      const run = fromTiles ? (x: tf.Tensor) => tilesToCols(x) : (x: tf.Tensor) => tf.reshape(x, [x.shape[0], -1]);
      push({ key: `${i}:${layout}`, label: fromTiles ? "flatten tiles→cols" : "flatten", layer: owner(i), run, at: op.input });
      layout = fromTiles ? "cols" : "rows";
    } else {
      const sparse = paths.get(op.name) === "sparse";
      convert(sparse ? "cols" : "rows", op.inputs, i);
      const activation = op.layer.activation ?? "linear";
      const run = sparse
        ? (x: tf.Tensor) => denseSparse(op, x)
        : (x: tf.Tensor) => tf.fused.matMul({ a: x as tf.Tensor2D, b: op.kernel, bias: op.bias, activation });
      push({ key: `${i}:${layout}`, label: `${op.name} ${sparse ? "sparse" : "dense"}`, layer: op.name, run, at: op.inputs });
    }
  }
  convert("rows", 0, ops.length);
  return steps;
}

function execute(steps: Step[], images: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => {
    const n = images.shape[0];
    let h: tf.Tensor = images;
    for (const step of steps) h = step.run(h, n);
    return h as tf.Tensor2D;
  });
}

/** A random input of the layout and geometry a step expects, for a batch of n. */
function calibrationInput(step: Step, n: number): tf.Tensor {
  const g = step.at;
  const shape =
    step.inLayout === "nhwc" ? [n, (g as Geometry).h, (g as Geometry).w, (g as Geometry).c]
    : step.inLayout === "tiles" ? [ceilTile(n) / TILE, (g as Geometry).c, (g as Geometry).h, (g as Geometry).w, TILE]
    : step.inLayout === "rows" ? [n, g as number]
    : [g as number, ceilTile(n)];
  return tf.randomUniform(shape, -1, 1, "float32", 1);
}

/** Every combination of paths over the layers that can choose (2^layers; the paper CNN has four). */
function pathChoices(ops: Op[], fixed: Map<string, LayerPath>): Map<string, LayerPath>[] {
  let out: Map<string, LayerPath>[] = [new Map()];
  for (const op of ops) {
    if (op.kind !== "conv" && op.kind !== "dense") continue;
    const options: LayerPath[] = fixed.has(op.name) ? [fixed.get(op.name) as LayerPath] : op.kind === "conv" && !op.csr ? ["dense"] : ["dense", "sparse"];
    out = out.flatMap((m) => options.map((p) => new Map([...m, [op.name, p]])));
  }
  return out;
}

function timeSteps(steps: Step[], n: number, repeats: number, memo: Map<string, number>): number {
  let total = 0;
  for (const step of steps) {
    let ms = memo.get(step.key);
    if (ms === undefined) {
      const x = calibrationInput(step, n);
      const once = () => {
        const t0 = performance.now();
        const y = step.run(x, n);
        const dt = performance.now() - t0;
        tf.dispose(y);
        return dt;
      };
      tf.tidy(() => void once());
      const times: number[] = [];
      for (let r = 0; r < repeats; r++) times.push(tf.tidy(once));
      tf.dispose(x);
      ms = median(times);
      memo.set(step.key, ms);
    }
    total += ms;
  }
  return total;
}

export function compileSparseModel(spec: ModelSpec, weights: Record<string, Float32Array>, opts: CompileOptions = {}): SparseModel {
  const calibrationBatch = opts.calibrationBatch ?? 256;
  const repeats = opts.calibrationRepeats ?? 5;
  if (!Number.isInteger(calibrationBatch) || calibrationBatch < 1 || calibrationBatch > 60000) {
    throw new Error(`calibrationBatch: expected an integer in 1..60000, got ${calibrationBatch}`);
  }
  const requested = opts.paths ?? "auto";
  const available = sparseKernelsAvailable();
  if (requested !== "auto" && requested !== "dense" && !available) {
    throw new Error(`sparse paths need the wasm backend with WebAssembly SIMD; the backend is ${tf.getBackend()}`);
  }
  if (available) registerSparseKernels();
  const ops = buildOps(spec, weights, opts.mask);
  const tensors = ops.flatMap((op) => (op.kind === "conv" || op.kind === "dense" ? [op.kernel, op.bias, ...(op.csr ? Object.values(op.csr) : [])] : []));
  try {
    return compileOps(spec, ops, tensors, requested, available, calibrationBatch, repeats);
  } catch (err) {
    tf.dispose(tensors);
    throw err;
  }
}

function compileOps(
  spec: ModelSpec,
  ops: ReturnType<typeof buildOps>,
  tensors: tf.Tensor[],
  requested: NonNullable<CompileOptions["paths"]>,
  available: boolean,
  calibrationBatch: number,
  repeats: number,
): SparseModel {
  const layered = ops.filter((op): op is ConvOp | DenseOp => op.kind === "conv" || op.kind === "dense");
  const fixed = new Map<string, LayerPath>();
  if (typeof requested === "object") {
    for (const [name, path] of Object.entries(requested)) {
      const op = layered.find((o) => o.name === name);
      if (!op) throw new Error(`paths["${name}"]: no such layer; expected one of ${layered.map((o) => o.name).join(", ")}`);
      if (path !== "dense" && path !== "sparse") throw new Error(`paths["${name}"]: expected "dense" or "sparse", got ${JSON.stringify(path)}`);
      if (path === "sparse" && op.kind === "conv" && !op.csr) throw new Error(`paths["${name}"]: the sparse kernel runs valid stride-1 convolutions only`);
      fixed.set(name, path);
    }
  } else if (requested === "dense" || !available) {
    for (const op of layered) fixed.set(op.name, "dense");
  } else if (requested === "sparse") {
    for (const op of layered) fixed.set(op.name, op.kind === "conv" && !op.csr ? "dense" : "sparse");
  } else if (requested !== "auto") {
    throw new Error(`paths: expected "auto", "dense", "sparse" or an object of layer → path, got ${JSON.stringify(requested)}`);
  }

  const choices = pathChoices(ops, fixed);
  let best = choices[0];
  const perLayer = new Map<string, { denseMs?: number; sparseMs?: number }>();
  if (choices.length > 1) {
    const memo = new Map<string, number>();
    let bestMs = Infinity;
    for (const choice of choices) {
      const ms = timeSteps(program(ops, choice), calibrationBatch, repeats, memo);
      if (ms < bestMs) [best, bestMs] = [choice, ms];
    }
    // What the choice weighed: the whole model's calibration time with each layer on either path, the rest as chosen.
    for (const op of layered) {
      const options = pathChoices([op], fixed).map((m) => m.get(op.name) as LayerPath);
      const cost = (path: LayerPath) => roundTo(timeSteps(program(ops, new Map([...best, [op.name, path]])), calibrationBatch, repeats, memo), 2);
      perLayer.set(op.name, Object.fromEntries(options.map((p) => [`${p}Ms`, cost(p)])));
    }
  }
  const steps = program(ops, best);
  const layers: LayerReport[] = layered.map((op) => ({
    layer: op.name,
    path: best.get(op.name) as LayerPath,
    weights: op.kernel.size,
    nonzeros: op.nonzeros,
    ...perLayer.get(op.name),
  }));
  return {
    spec,
    layers,
    predict: (images) => execute(steps, images),
    profile(images) {
      const n = images.shape[0];
      const out: StepTiming[] = [];
      let h: tf.Tensor = images;
      for (const step of steps) {
        const t0 = performance.now();
        const next = step.run(h, n);
        out.push({ step: step.label, layer: step.layer, ms: performance.now() - t0 });
        if (h !== images) h.dispose();
        h = next;
      }
      h.dispose();
      return out;
    },
    dispose: () => tf.dispose(tensors),
  };
}

export function roundTo(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
