import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { normLoops } from "./batch-norm-grad";
import { heapBuffer, pointer, simdLoops, withScratch } from "./simd";

/**
 * Elementwise float32 Multiply, Add, Sub and RealDiv of two tensors of one shape, or of an NHWC activation and a
 * per-channel vector ([c] or [1,…,1,c]) or a single number, in either order, as SIMD loops over rows (simd.wat),
 * when the channels (or the size) come in fours: batch norm's forward and gradient are made of these. wasm's own
 * kernels take ~4× longer (per-element index arithmetic for broadcasting). The same correctly rounded float32
 * operations, so the same bits. Every other case uses wasm's kernel.
 */
interface RowPlan {
  outShape: number[];
  rows: number;
  columns: number;
  aStep: number;
  bStep: number;
  /** The broadcast operand is one number: repeat it into a row of four first. */
  splat?: "a" | "b";
}

function rowPlan(a: tf.TensorInfo, b: tf.TensorInfo): RowPlan | undefined {
  if (a.dtype !== "float32" || b.dtype !== "float32") return undefined;
  const sizeA = tf.util.sizeFromShape(a.shape);
  const sizeB = tf.util.sizeFromShape(b.shape);
  if (tf.util.arraysEqual(a.shape, b.shape)) {
    if (sizeA === 0 || sizeA % 4 !== 0) return undefined;
    return { outShape: a.shape, rows: 1, columns: sizeA, aStep: 0, bStep: 0 };
  }
  const [full, vector] = sizeA >= sizeB ? [a, b] : [b, a];
  const sizeFull = Math.max(sizeA, sizeB);
  if (Math.min(sizeA, sizeB) === 1 && vector.shape.length <= full.shape.length && sizeFull > 0 && sizeFull % 4 === 0) {
    const [aStep, bStep] = full === a ? [16, 0] : [0, 16];
    return { outShape: full.shape, rows: sizeFull / 4, columns: 4, aStep, bStep, splat: full === a ? "b" : "a" };
  }
  const columns = full.shape[full.shape.length - 1];
  const isChannelVector =
    vector.shape.length >= 1 &&
    vector.shape.length <= full.shape.length &&
    vector.shape[vector.shape.length - 1] === columns &&
    tf.util.sizeFromShape(vector.shape) === columns;
  if (!isChannelVector || columns === 0 || columns % 4 !== 0) return undefined;
  const rowBytes = columns * 4;
  return {
    outShape: full.shape,
    rows: tf.util.sizeFromShape(full.shape) / columns,
    columns,
    aStep: full === a ? rowBytes : 0,
    bStep: full === b ? rowBytes : 0,
  };
}

type RowsLoop = "mulRows" | "addRows" | "subRows" | "divRows";

function makeBinaryConfig(original: tf.KernelConfig, loop: RowsLoop): tf.KernelConfig {
  const binary = (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) => {
    const backend = args.backend as BackendWasm;
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const simd = simdLoops(backend);
    const plan = simd ? rowPlan(a, b) : undefined;
    if (!simd || !plan) return original.kernelFunc(args as Parameters<tf.KernelFunc>[0]);
    const out = backend.makeOutput(plan.outShape, "float32");
    const run = (pa: number, pb: number) => simd[loop](pa, plan.aStep, pb, plan.bStep, pointer(backend, out), plan.rows, plan.columns * 4);
    if (!plan.splat) {
      run(pointer(backend, a), pointer(backend, b));
      return out;
    }
    const value = (backend.typedArrayFromHeap(plan.splat === "a" ? a : b) as Float32Array)[0];
    withScratch(backend, 16, (at) => {
      new Float32Array(heapBuffer(backend), at, 4).fill(value);
      if (plan.splat === "a") run(at, pointer(backend, b));
      else run(pointer(backend, a), at);
    });
    return out;
  };
  return { kernelName: original.kernelName, backendName: "wasm", setupFunc: original.setupFunc, kernelFunc: binary as tf.KernelFunc };
}

export const makeMultiplyConfig = (original: tf.KernelConfig) => makeBinaryConfig(original, "mulRows");
export const makeAddConfig = (original: tf.KernelConfig) => makeBinaryConfig(original, "addRows");
export const makeSubConfig = (original: tf.KernelConfig) => makeBinaryConfig(original, "subRows");
export const makeRealDivConfig = (original: tf.KernelConfig) => makeBinaryConfig(original, "divRows");

/**
 * Batch norm's forward, y = (x − mean)·scale/√(variance + ε) + offset per channel, as y = x·k + d with k and d
 * per channel (float64, then float32), one SIMD pass (norm.wat's scaleShiftRows; two of simd.wat's without it); within float32 rounding of the cpu backend's formula.
 * Per-channel statistics of NHWC activations with channels in fours; otherwise wasm's own kernel.
 */
export function makeFusedBatchNormConfig(original: tf.KernelConfig): tf.KernelConfig {
  const batchNorm = (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) => {
    const backend = args.backend as BackendWasm;
    const { x, mean, variance, offset, scale } = args.inputs as Record<string, tf.TensorInfo | undefined> as {
      x: tf.TensorInfo;
      mean: tf.TensorInfo;
      variance: tf.TensorInfo;
      offset?: tf.TensorInfo;
      scale?: tf.TensorInfo;
    };
    const { varianceEpsilon } = (args.attrs ?? {}) as unknown as tf.FusedBatchNormAttrs;
    const columns = x.shape[x.shape.length - 1];
    const simd = simdLoops(backend);
    const fits = (t: tf.TensorInfo | undefined) => t === undefined || (t.dtype === "float32" && tf.util.sizeFromShape(t.shape) === columns);
    if (!simd || x.dtype !== "float32" || columns === 0 || columns % 4 !== 0 || ![mean, variance, offset, scale].every(fits)) {
      return original.kernelFunc(args as Parameters<tf.KernelFunc>[0]);
    }
    const out = backend.makeOutput(x.shape, "float32");
    const rows = tf.util.sizeFromShape(x.shape) / columns;
    const values = (t: tf.TensorInfo | undefined) => (t ? (backend.typedArrayFromHeap(t) as Float32Array).slice() : undefined);
    const [m, v, o, s] = [mean, variance, offset, scale].map(values);
    withScratch(backend, columns * 8, (at) => {
      const k = new Float32Array(heapBuffer(backend), at, columns);
      const d = new Float32Array(heapBuffer(backend), at + columns * 4, columns);
      for (let c = 0; c < columns; c++) {
        const factor = (s ? s[c] : 1) / Math.sqrt(v![c] + varianceEpsilon);
        k[c] = factor;
        d[c] = (o ? o[c] : 0) - m![c] * factor;
      }
      const rowBytes = columns * 4;
      const norm = normLoops(backend);
      if (norm) norm.scaleShiftRows(pointer(backend, x), at, pointer(backend, out), rows, rowBytes);
      else {
        simd.mulRows(pointer(backend, x), rowBytes, at, 0, pointer(backend, out), rows, rowBytes);
        simd.addRows(pointer(backend, out), rowBytes, at + rowBytes, 0, pointer(backend, out), rows, rowBytes);
      }
    });
    return out;
  };
  return { kernelName: tf.FusedBatchNorm, backendName: "wasm", setupFunc: original.setupFunc, kernelFunc: batchNorm as tf.KernelFunc };
}
