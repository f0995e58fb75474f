import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { batchNormGradFactors, normLoops } from "./batch-norm-grad";
import { heapBuffer, pointer, withScratch } from "./simd";
import { callKernel } from "./util";

/**
 * Batch norm in training mode as two kernels instead of about fifteen. tfjs composes it as tf.moments (Mean, Cast,
 * Reshape, Sub, Square, Mean) and FusedBatchNorm, and autodiff runs the gradient of each in reverse (Tile, Square's
 * gradient, Sum, Neg, two Adds of the whole activation, ...). FwpruneBatchNormTrain computes the mean with the Mean
 * kernel, the variance in one pass with the same float32 subtraction and square per element and the same float64
 * sums, and y with the FusedBatchNorm kernel. Its gradient, FwpruneBatchNormTrainGrad, makes three passes:
 * FwpruneBatchNormGrad's sums (batch-norm-grad.ts), the Sum of Square's gradient dd for Sub's, and
 * dx = (dx_bn + dd) + dx_mean, the two Adds in the engine's order. Every output has the bits of the composite path.
 *
 * The engine adds the gradients reaching x one at a time, in reverse order of recording: the gradient G of an op that
 * read x after the batch norm gives ((G + dx_bn) + dd) + dx_mean there but G + ((dx_bn + dd) + dx_mean) here, and
 * float32 addition does not associate. So the fused path is only for an x that nothing else reads (the caller
 * knows: forward.ts counts a node's consumers, src/zoo.ts's batch norms follow a convolution); it also needs wasm with SIMD, float32, rank 2 to 4, channels in fours, and a scale and an
 * offset of one value a channel. Everything else, or with enableFusedBatchNormTraining(false), takes the composite path.
 */
export const BATCH_NORM_TRAIN = "FwpruneBatchNormTrain";
export const BATCH_NORM_TRAIN_GRAD = "FwpruneBatchNormTrainGrad";
const GRAD_VECTORS = ["mean", "r", "scale", "h", "negR"] as const;

let fusedOn = true;

/** Turn the fused training-mode batch norm on (default) or off (the composite path: for A/B timing and the tests). */
export function enableFusedBatchNormTraining(on = true): void {
  fusedOn = on;
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

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
  const mean = callKernel(tf.Mean, backend, { x }, { axis, keepDims: false });
  const variance = backend.makeOutput([columns], "float32");
  withScratch(backend, columns * 8, (acc) => {
    const sums = new Float64Array(heapBuffer(backend), acc, columns).fill(0);
    loops.varianceSums(pointer(backend, x), pointer(backend, mean), acc, rows, columns * 4);
    // as the Mean kernel (sum.ts): the float64 sum divided by the rows, then rounded to float32
    for (let c = 0; c < columns; c++) sums[c] /= rows;
    (backend.typedArrayFromHeap(variance) as Float32Array).set(sums);
  });
  const y = callKernel(tf.FusedBatchNorm, backend, { x, mean, variance, offset, scale }, { varianceEpsilon });
  return [y, mean, variance];
}

/**
 * The gradient of FwpruneBatchNormTrain. Inputs x, dy, the batch mean and FusedBatchNorm's gradient factors per
 * channel (r = 1/√(variance + ε), scale, h = −r³/2, negR = −r); outputs dx, dScale, dOffset. Three passes:
 * batchNormGrad's sums (dx_bn not stored), Σ dd for Sub's gradient, and dx = (dx_bn + dd) + dx_mean. In between,
 * per channel and in float32 as tfjs's kernels round them: dsq = dVariance/rows (the variance's Mean),
 * mean' = dMean − Σ dd (Sub's gradient, then the engine's Add) and dx_mean = mean'/rows (the mean's Mean).
 */
function trainGrad(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as BackendWasm;
  const { x, dy } = args.inputs as Record<"x" | "dy", tf.TensorInfo>;
  const loops = normLoops(backend);
  const columns = x.shape[x.shape.length - 1];
  const vectors = GRAD_VECTORS.map((name) => args.inputs[name] as tf.TensorInfo);
  const fits = (t: tf.TensorInfo) => t.dtype === "float32" && tf.util.sizeFromShape(t.shape) === columns;
  if (!loops || x.dtype !== "float32" || !tf.util.arraysEqual(x.shape, dy.shape) || columns % 4 !== 0 || !vectors.every(fits)) {
    throw new Error(
      `${BATCH_NORM_TRAIN_GRAD}: x [${x.shape}] and dy [${dy.shape}] must be float32 of one shape, channels in fours, one value a channel, on wasm with SIMD`,
    );
  }
  const rows = tf.util.sizeFromShape(x.shape) / columns;
  const cBytes = columns * 4;
  const dx = backend.makeOutput(x.shape, "float32");
  const [dScale, dOffset] = [0, 1].map(() => backend.makeOutput([columns], "float32"));
  // scratch: mean, r, scale, h, negR | four float64 sums | mean, dsq, dxMean, r, scale | one float64 sum
  withScratch(backend, 20 * cBytes, (vecs) => {
    const heap = heapBuffer(backend);
    const [acc, statVecs, statAcc] = [vecs + 5 * cBytes, vecs + 13 * cBytes, vecs + 18 * cBytes];
    const f32 = (at: number) => new Float32Array(heap, at, columns);
    const f64 = (at: number) => new Float64Array(heap, at, columns);
    vectors.forEach((t, i) => f32(vecs + i * cBytes).set(backend.typedArrayFromHeap(t) as Float32Array));
    [0, 1, 2, 3].forEach((i) => f64(acc + i * 2 * cBytes).fill(0));
    loops.batchNormGrad(pointer(backend, x), pointer(backend, dy), 0, vecs, acc, rows, cBytes, 0);
    const [dMean, dVariance] = [0, 1].map((i) => Float32Array.from(f64(acc + i * 2 * cBytes)));
    (backend.typedArrayFromHeap(dScale) as Float32Array).set(f64(acc + 4 * cBytes));
    (backend.typedArrayFromHeap(dOffset) as Float32Array).set(f64(acc + 6 * cBytes));
    const [mean, dsq, dxMean, r, scale] = [0, 1, 2, 3, 4].map((i) => f32(statVecs + i * cBytes));
    mean.set(f32(vecs));
    r.set(f32(vecs + cBytes));
    scale.set(f32(vecs + 2 * cBytes));
    // Math.fround of one double operation on two float32 values is the float32 operation, correctly rounded
    for (let c = 0; c < columns; c++) dsq[c] = Math.fround(dVariance[c] / rows);
    const sums = f64(statAcc).fill(0);
    loops.statsGradSums(pointer(backend, x), statVecs, statAcc, rows, cBytes);
    for (let c = 0; c < columns; c++) dxMean[c] = Math.fround(Math.fround(dMean[c] - Math.fround(sums[c])) / rows);
    loops.trainGradDx(pointer(backend, x), pointer(backend, dy), statVecs, pointer(backend, dx), rows, cBytes);
  });
  return [dx, dScale, dOffset];
}

export const batchNormTrainConfig: tf.KernelConfig = {
  kernelName: BATCH_NORM_TRAIN,
  backendName: "wasm",
  kernelFunc: batchNormTrain as unknown as tf.KernelFunc,
};
export const batchNormTrainGradConfig: tf.KernelConfig = {
  kernelName: BATCH_NORM_TRAIN_GRAD,
  backendName: "wasm",
  kernelFunc: trainGrad as unknown as tf.KernelFunc,
};

export const batchNormTrainGradient: tf.GradConfig = {
  kernelName: BATCH_NORM_TRAIN,
  inputsToSave: ["x", "scale"],
  outputsToSave: [false, true, true],
  gradFunc: (dys, saved, attrs) => {
    const [x, scale, mean, variance] = saved;
    const dy = (dys as tf.Tensor[])[0];
    const { varianceEpsilon } = attrs as unknown as tf.FusedBatchNormAttrs;
    const { r, h, negR } = batchNormGradFactors(variance, varianceEpsilon);
    const inputs = { x, dy, mean, r, scale, h, negR } as unknown as tf.NamedTensorMap;
    const [dx, dScale, dOffset] = tf.engine().runKernel(BATCH_NORM_TRAIN_GRAD, inputs, {}) as tf.Tensor[];
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

/** A moving statistic moved toward the batch's, as tfjs-layers writes it: moving − (moving − batch)·(1 − momentum). */
export function movingAverage(moving: tf.Tensor, batch: tf.Tensor, momentum: number): tf.Tensor {
  return tf.sub(moving, tf.mul(tf.sub(moving, batch), 1 - momentum));
}
