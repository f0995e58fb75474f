import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { NORM_WASM_BASE64 } from "./norm-module";
import { heapBuffer, loopsOnMemory, pointer, simdLoops, withScratch } from "./simd";

/**
 * Batch norm's gradient in one pass on wasm. tfjs-core's gradient of FusedBatchNorm is composite: a Tile, eight
 * multiplications, a subtraction and four Sums over the whole activation, each a kernel of its own. norm.wat's
 * batchNormGrad runs the same float32 operations on each element in the same order, and sums in float64 row by row
 * as the Sum kernel (sum.ts) does, so every result has the same bits; the per-channel factors (1/√(variance + ε) and
 * the rest) are still computed by tfjs's own ops. Shapes it does not cover (not NHWC with channels in fours), other
 * backends, and wasm without SIMD keep tfjs-core's gradient.
 */
export interface NormLoops {
  /** dx is stored only where storeDx is 1 (batch-norm-train.ts recomputes it). */
  batchNormGrad(x: number, dy: number, dx: number, vecs: number, acc: number, rows: number, cBytes: number, storeDx: number): void;
  /** simd.wat's sumRowsF64 (the same sums, each channel's rows in the same order), blocked: cBytes = 4·cols. */
  sumRowsF64Blocked(x: number, acc: number, rows: number, cBytes: number): void;
  /** Batch norm's training statistics and their gradient (batch-norm-train.ts). */
  varianceSums(x: number, vecs: number, acc: number, rows: number, cBytes: number): void;
  statsGradSums(x: number, vecs: number, acc: number, rows: number, cBytes: number): void;
  trainGradDx(x: number, dy: number, vecs: number, dx: number, rows: number, cBytes: number): void;
  /** Batch norm's forward, y = x·k + d per channel (elementwise.ts). */
  scaleShiftRows(x: number, vecs: number, out: number, rows: number, cBytes: number): void;
  reluGrad(x: number, dy: number, out: number, bytes: number): void;
  squareGrad(x: number, dy: number, out: number, bytes: number): void;
}

const normOnMemory = loopsOnMemory<NormLoops>(NORM_WASM_BASE64);

/** norm.wat's loops on this backend's memory, or undefined without WebAssembly SIMD (or with simd.ts's loops off). */
export function normLoops(backend: BackendWasm): NormLoops | undefined {
  const memory = (backend.wasm as unknown as { asm?: { memory?: object } }).asm?.memory;
  return memory && simdLoops(backend) ? normOnMemory(memory) : undefined;
}

export const BATCH_NORM_GRAD = "FwpruneBatchNormGrad";
const VECTORS = ["mean", "r", "scale", "h", "negR"] as const;

/** Inputs x, dy (NHWC, float32) and the per-channel vectors; outputs dx and the four per-channel sums. */
function batchNormGrad(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo[] {
  const backend = args.backend as BackendWasm;
  const { x, dy } = args.inputs as Record<"x" | "dy", tf.TensorInfo>;
  const loops = normLoops(backend);
  const columns = x.shape[x.shape.length - 1];
  if (!loops) throw new Error(`${BATCH_NORM_GRAD}: needs WebAssembly SIMD`);
  const vectors = VECTORS.map((name) => args.inputs[name] as tf.TensorInfo);
  const fits = (t: tf.TensorInfo) => t.dtype === "float32" && tf.util.sizeFromShape(t.shape) === columns;
  if (x.dtype !== "float32" || !tf.util.arraysEqual(x.shape, dy.shape) || columns % 4 !== 0 || !vectors.every(fits)) {
    throw new Error(`${BATCH_NORM_GRAD}: x [${x.shape}] and dy [${dy.shape}] must be float32 of one shape, channels in fours, one value a channel`);
  }
  const rows = tf.util.sizeFromShape(x.shape) / columns;
  const dx = backend.makeOutput(x.shape, "float32");
  const sums = [0, 1, 2, 3].map(() => backend.makeOutput([columns], "float32"));
  const cBytes = columns * 4;
  withScratch(backend, 5 * cBytes + 4 * 2 * cBytes, (vecs) => {
    const acc = vecs + 5 * cBytes;
    const heap = heapBuffer(backend);
    vectors.forEach((t, i) => new Float32Array(heap, vecs + i * cBytes, columns).set(backend.typedArrayFromHeap(t) as Float32Array));
    new Float64Array(heap, acc, 4 * columns).fill(0);
    loops.batchNormGrad(pointer(backend, x), pointer(backend, dy), pointer(backend, dx), vecs, acc, rows, cBytes, 1);
    sums.forEach((s, i) => (backend.typedArrayFromHeap(s) as Float32Array).set(new Float64Array(heap, acc + i * 2 * cBytes, columns)));
  });
  return [dx, ...sums];
}

export const batchNormGradConfig: tf.KernelConfig = {
  kernelName: BATCH_NORM_GRAD,
  backendName: "wasm",
  kernelFunc: batchNormGrad as unknown as tf.KernelFunc,
};

/** Whether the fused gradient covers this case (else tfjs-core's composite gradient runs). */
function fused(x: tf.Tensor, mean: tf.Tensor, variance: tf.Tensor, scale: tf.Tensor | undefined): boolean {
  if (tf.getBackend() !== "wasm" || !tf.getKernel(BATCH_NORM_GRAD, "wasm") || !normLoops(tf.backend() as BackendWasm)) return false;
  const columns = x.shape[x.rank - 1];
  const vector = (t: tf.Tensor | undefined) => t === undefined || (t.rank === 1 && t.shape[0] === columns && t.dtype === "float32");
  return x.rank === 4 && x.dtype === "float32" && columns % 4 === 0 && mean.rank === 1 && vector(mean) && vector(variance) && vector(scale);
}

/** FusedBatchNorm's gradient factors per channel (r = 1/√(variance + ε), h = −r³/2, negR = −r), with tfjs-core's own ops in its order. */
export function batchNormGradFactors(variance: tf.Tensor, epsilon: number): { r: tf.Tensor; h: tf.Tensor; negR: tf.Tensor } {
  const r = tf.rsqrt(tf.add(variance, tf.scalar(epsilon)));
  return { r, h: tf.mul(tf.mul(tf.mul(r, r), r), tf.scalar(-0.5)), negR: tf.mul(r, tf.scalar(-1)) };
}

/** The gradient of FusedBatchNorm: fused where it covers the case, else `original` (tfjs-core's). */
export function makeBatchNormGradient(original: tf.GradConfig): tf.GradConfig {
  return {
    kernelName: tf.FusedBatchNorm,
    inputsToSave: ["x", "mean", "variance", "scale"],
    gradFunc: (dy, saved, attrs) => {
      const [x, mean, variance, scale] = saved as (tf.Tensor | undefined)[] as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor | undefined];
      if (!fused(x, mean, variance, scale) || !tf.util.arraysEqual((dy as tf.Tensor).shape, x.shape)) return original.gradFunc(dy, saved, attrs);
      const { varianceEpsilon } = attrs as unknown as tf.FusedBatchNormAttrs;
      const { r, h, negR } = batchNormGradFactors(variance, varianceEpsilon);
      const scaleValue = scale ?? tf.ones(mean.shape);
      const inputs = { x, dy: dy as tf.Tensor, mean, r, scale: scaleValue, h, negR } as unknown as tf.NamedTensorMap;
      const [dx, dMean, dVariance, dScale, dOffset] = tf.engine().runKernel(BATCH_NORM_GRAD, inputs, {}) as tf.Tensor[];
      return {
        x: () => dx,
        mean: () => tf.reshape(dMean, mean.shape),
        variance: () => tf.reshape(dVariance, mean.shape),
        scale: () => tf.reshape(dScale, mean.shape),
        offset: () => tf.reshape(dOffset, mean.shape),
      };
    },
  };
}

/**
 * The gradients of Relu (dy·step(x)) and Square (dy·(x·2)) in one pass each instead of two kernels and a tensor
 * between them; the same float32 operations (a NaN input gives a NaN gradient, as before). Float32 tensors whose size
 * comes in fours, on wasm with SIMD; otherwise tfjs-core's gradient.
 */
const ELEMENTWISE_GRADS = { Relu: "FwpruneReluGrad", Square: "FwpruneSquareGrad" } as const;

function elementwiseGradConfig(kernelName: string, loop: "reluGrad" | "squareGrad"): tf.KernelConfig {
  const kernelFunc = (args: { inputs: tf.NamedTensorInfoMap; backend: unknown }) => {
    const backend = args.backend as BackendWasm;
    const { x, dy } = args.inputs as Record<"x" | "dy", tf.TensorInfo>;
    const loops = normLoops(backend);
    if (!loops) throw new Error(`${kernelName}: needs WebAssembly SIMD`);
    const size = tf.util.sizeFromShape(x.shape);
    if (x.dtype !== "float32" || dy.dtype !== "float32" || !tf.util.arraysEqual(x.shape, dy.shape) || size % 4 !== 0) {
      throw new Error(`${kernelName}: x [${x.shape}] and dy [${dy.shape}] must be float32 of one shape, a size in fours`);
    }
    const out = backend.makeOutput(x.shape, "float32");
    loops[loop](pointer(backend, x), pointer(backend, dy), pointer(backend, out), size * 4);
    return out;
  };
  return { kernelName, backendName: "wasm", kernelFunc: kernelFunc as unknown as tf.KernelFunc };
}

export const reluGradConfig = elementwiseGradConfig(ELEMENTWISE_GRADS.Relu, "reluGrad");
export const squareGradConfig = elementwiseGradConfig(ELEMENTWISE_GRADS.Square, "squareGrad");

/** The gradient of Relu or Square: one fused pass where it covers the case, else `original` (tfjs-core's). */
export function makeElementwiseGradient(original: tf.GradConfig): tf.GradConfig {
  const kernel = ELEMENTWISE_GRADS[original.kernelName as keyof typeof ELEMENTWISE_GRADS];
  return {
    kernelName: original.kernelName,
    inputsToSave: ["x"],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const g = dy as tf.Tensor;
      const fits =
        tf.getBackend() === "wasm" &&
        tf.getKernel(kernel, "wasm") !== undefined &&
        normLoops(tf.backend() as BackendWasm) !== undefined &&
        x.dtype === "float32" &&
        g.dtype === "float32" &&
        tf.util.arraysEqual(x.shape, g.shape) &&
        x.size % 4 === 0;
      if (!fits) return original.gradFunc(dy, saved, attrs);
      return { x: () => tf.engine().runKernel(kernel, { x, dy: g } as unknown as tf.NamedTensorMap, {}) as tf.Tensor };
    },
  };
}
