import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { BATCH_NORM_GRAD, normLoops } from "./batch-norm-grad";
import { heapBuffer, pointer, withScratch } from "./simd";

/**
 * Batch norm in training mode as two kernels instead of about fifteen. tfjs composes it as tf.moments (Mean, Cast,
 * Reshape, Sub, Square, Mean) and FusedBatchNorm, and autodiff runs the gradient of each in reverse (Tile, Square's
 * gradient, Sum, Neg, two Adds of the whole activation, ...). FwpruneBatchNormTrain computes the mean with the Mean
 * kernel, the variance in one pass with the same float32 subtraction and square per element and the same float64
 * sums, and y with the FusedBatchNorm kernel; its gradient runs FwpruneBatchNormGrad (batch-norm-grad.ts) and then
 * FwpruneBatchNormStatsGrad: one pass for the Sum of Square's gradient and one for dx = (dx_bn + dd) + dx_mean, the
 * two Adds in the engine's order. Every output has the bits of the composite path.
 *
 * The engine adds the gradients reaching x one at a time: x's gradient from ops recorded after the batch norm would
 * be added before dx_bn there, but before the fused dx here. So the fused path is only for an x that nothing else
 * reads (the caller knows); it also needs wasm with SIMD, float32, rank 2 to 4, channels in fours, and a scale and an
 * offset of one value a channel. Everything else, or with enableFusedBatchNormTraining(false), takes the composite path.
 */
export const BATCH_NORM_TRAIN = "FwpruneBatchNormTrain";
export const BATCH_NORM_STATS_GRAD = "FwpruneBatchNormStatsGrad";

let fusedOn = true;

/** Turn the fused training-mode batch norm on (default) or off (the composite path: for A/B timing and the tests). */
export function enableFusedBatchNormTraining(on = true): void {
  fusedOn = on;
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

function wasmKernel(name: string): tf.KernelFunc {
  const config = tf.getKernel(name, "wasm");
  if (!config) throw new Error(`${BATCH_NORM_TRAIN}: wasm kernel ${name} is not registered`);
  return config.kernelFunc;
}

/** Inputs x (float32, channels last), scale and offset ([c]); outputs y, the batch mean and the (biased) variance. */
function batchNormTrain(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as BackendWasm;
  const { x, scale, offset } = args.inputs as Record<"x" | "scale" | "offset", tf.TensorInfo>;
  const { varianceEpsilon } = (args.attrs ?? {}) as unknown as tf.FusedBatchNormAttrs;
  const loops = normLoops(backend);
  const columns = x.shape[x.shape.length - 1];
  if (!loops || x.dtype !== "float32" || columns % 4 !== 0)
    throw new Error(`${BATCH_NORM_TRAIN}: x [${x.shape}] must be float32 with channels in fours, on wasm with SIMD`);
  const rows = tf.util.sizeFromShape(x.shape) / columns;
  const axis = x.shape.slice(0, -1).map((_, i) => i);
  const mean = wasmKernel(tf.Mean)({ inputs: { x }, backend, attrs: { axis, keepDims: false } } as never) as tf.TensorInfo;
  const variance = backend.makeOutput([columns], "float32");
  withScratch(backend, columns * 8, (acc) => {
    const sums = new Float64Array(heapBuffer(backend), acc, columns).fill(0);
    loops.varianceSums(pointer(backend, x), pointer(backend, mean), acc, rows, columns * 4);
    // as the Mean kernel (sum.ts): the float64 sum divided by the rows, then rounded to float32
    for (let c = 0; c < columns; c++) sums[c] /= rows;
    (backend.typedArrayFromHeap(variance) as Float32Array).set(sums);
  });
  const y = wasmKernel(tf.FusedBatchNorm)({ inputs: { x, mean, variance, offset, scale }, backend, attrs: { varianceEpsilon } } as never) as tf.TensorInfo;
  return [y, mean, variance];
}

/**
 * Inputs x, the batch mean, dsq (the variance's gradient over the rows: Mean's gradient), and FwpruneBatchNormGrad's
 * dxBn and dMean; output x's whole gradient. mean' = dMean − Σ dd (Sub's gradient, then the engine's Add) and
 * dx_mean = mean'/rows are per channel, in float32 as tfjs's kernels round them.
 */
function statsGrad(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x, mean, dsq, dxBn, dMean } = args.inputs as Record<"x" | "mean" | "dsq" | "dxBn" | "dMean", tf.TensorInfo>;
  const loops = normLoops(backend);
  const columns = x.shape[x.shape.length - 1];
  if (!loops || x.dtype !== "float32" || columns % 4 !== 0 || !tf.util.arraysEqual(x.shape, dxBn.shape)) {
    throw new Error(`${BATCH_NORM_STATS_GRAD}: x [${x.shape}] and dxBn [${dxBn.shape}] must be float32 of one shape, channels in fours, on wasm with SIMD`);
  }
  const rows = tf.util.sizeFromShape(x.shape) / columns;
  const cBytes = columns * 4;
  const dx = backend.makeOutput(x.shape, "float32");
  const vector = (t: tf.TensorInfo) => backend.typedArrayFromHeap(t) as Float32Array;
  withScratch(backend, 3 * cBytes + 2 * cBytes, (vecs) => {
    const heap = heapBuffer(backend);
    new Float32Array(heap, vecs, columns).set(vector(mean));
    new Float32Array(heap, vecs + cBytes, columns).set(vector(dsq));
    const sums = new Float64Array(heap, vecs + 3 * cBytes, columns).fill(0);
    loops.statsGradSums(pointer(backend, x), vecs, vecs + 3 * cBytes, rows, cBytes);
    const dxMean = new Float32Array(heap, vecs + 2 * cBytes, columns);
    const dMeanBn = vector(dMean);
    // Math.fround of one double operation on two float32 values is the float32 operation, correctly rounded
    for (let c = 0; c < columns; c++) dxMean[c] = Math.fround(Math.fround(dMeanBn[c] - Math.fround(sums[c])) / rows);
    loops.statsGradDx(pointer(backend, x), pointer(backend, dxBn), vecs, pointer(backend, dx), rows, cBytes);
  });
  return dx;
}

export const batchNormTrainConfig: tf.KernelConfig = {
  kernelName: BATCH_NORM_TRAIN,
  backendName: "wasm",
  kernelFunc: batchNormTrain as unknown as tf.KernelFunc,
};
export const batchNormStatsGradConfig: tf.KernelConfig = {
  kernelName: BATCH_NORM_STATS_GRAD,
  backendName: "wasm",
  kernelFunc: statsGrad as unknown as tf.KernelFunc,
};

export const batchNormTrainGradient: tf.GradConfig = {
  kernelName: BATCH_NORM_TRAIN,
  inputsToSave: ["x", "scale"],
  outputsToSave: [false, true, true],
  gradFunc: (dys, saved, attrs) => {
    const [x, scale, mean, variance] = saved;
    const dy = (dys as tf.Tensor[])[0];
    const { varianceEpsilon } = attrs as unknown as tf.FusedBatchNormAttrs;
    // FusedBatchNorm's gradient as batch-norm-grad.ts runs it: the per-channel factors with tfjs's ops, then one pass
    const r = tf.rsqrt(tf.add(variance, tf.scalar(varianceEpsilon)));
    const h = tf.mul(tf.mul(tf.mul(r, r), r), tf.scalar(-0.5));
    const negR = tf.mul(r, tf.scalar(-1));
    const grads = tf.engine().runKernel(BATCH_NORM_GRAD, { x, dy, mean, r, scale, h, negR } as unknown as tf.NamedTensorMap, {});
    const [dxBn, dMean, dVariance, dScale, dOffset] = grads as tf.Tensor[];
    // the variance's Mean: its gradient divided by the rows (gradients.ts divides before broadcasting)
    const dsq = tf.div(dVariance, x.size / mean.size);
    const dx = tf.engine().runKernel(BATCH_NORM_STATS_GRAD, { x, mean, dsq, dxBn, dMean } as unknown as tf.NamedTensorMap, {}) as tf.Tensor;
    return { x: () => dx, scale: () => dScale, offset: () => dOffset };
  },
};

/** Whether the fused kernels cover this case (see the top of the file; the caller vouches that nothing else reads x). */
function fusedApplies(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): boolean {
  if (!fusedOn || tf.getBackend() !== "wasm" || !tf.getKernel(BATCH_NORM_TRAIN, "wasm") || !normLoops(tf.backend() as BackendWasm)) return false;
  const columns = x.shape[x.rank - 1];
  const vector = (t: tf.Tensor) => t.rank === 1 && t.shape[0] === columns && t.dtype === "float32";
  const rows = x.size / columns;
  // Sub's gradient sums over the axes where x has more than one row: sum.ts's float64 sums only when they lead
  const leading = x.shape.slice(0, -1);
  const summedLead = leading.every((d, i) => d === 1 || leading.slice(0, i).every((e) => e > 1));
  return (
    summedLead &&
    x.rank >= 2 &&
    x.rank <= 4 &&
    x.dtype === "float32" &&
    columns > 0 &&
    columns % 4 === 0 &&
    rows > 0 &&
    rows < 2 ** 24 &&
    vector(gamma) &&
    vector(beta)
  );
}

/**
 * Batch norm in training mode: y = (x − mean)·gamma/√(variance + ε) + beta with the batch's mean and biased variance
 * over every axis but the last (returned too: they move the moving statistics). Fused where it applies and `xUnshared`
 * (nothing but this batch norm reads x), else tf.moments and tf.batchNorm; the same bits either way.
 */
export function batchNormTraining(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  epsilon: number,
  xUnshared: boolean,
): { y: tf.Tensor; mean: tf.Tensor; variance: tf.Tensor } {
  if (!xUnshared || !fusedApplies(x, gamma, beta)) {
    const { mean, variance } = tf.moments(
      x,
      x.shape.slice(0, -1).map((_, i) => i),
    );
    return { y: tf.batchNorm(x, mean, variance, beta, gamma, epsilon), mean, variance };
  }
  const inputs = { x, scale: gamma, offset: beta } as unknown as tf.NamedTensorMap;
  const [y, mean, variance] = tf.engine().runKernel(BATCH_NORM_TRAIN, inputs, { varianceEpsilon: epsilon } as unknown as tf.NamedAttrMap) as tf.Tensor[];
  return { y, mean, variance };
}
