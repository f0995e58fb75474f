import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { aligned, gemmFor, KC_MAX } from "./gemm";
import { countFusedInputGrad, fitsGemmCol2im, gemmCol2imScratchBytes } from "./input-grad";
import { guardDeferredData } from "./deferred";
import { alignedScratch, pointer, withAlignedScratch } from "./simd";
import { COL2IM_IMAGES, IM2COL_IMAGES } from "./thread-jobs";
import { deferGemmPacked, MIN_THREADED_MACS, poolThreads, runJob, threadedGemmPacked, unitsPerClaim } from "./threads";

let deferProducts = true;
/** Switch the filter gradient's deferred product off (benchmarks and tests compare it with the product run at once). */
export function enableDeferredFilterGrad(on: boolean): void {
  deferProducts = on;
}

/**
 * A convolution's two gradients on the kernel threads (threads.ts), im2col and col2im included, on tfjs's heap in place
 * (scratch besides). Each gives what the single-threaded kernels give (the same products and additions in the same
 * order; see runUnits), whatever the thread count.
 */

/** Consecutive regions of scratch (withAlignedScratch) of the given sizes: their byte offsets from its start, then the total. */
function layout(...bytes: number[]): number[] {
  const offsets = [0];
  for (const b of bytes) offsets.push(offsets[offsets.length - 1] + aligned(b));
  return offsets;
}

/** The divisors of n. */
const divisors = (n: number) => Array.from({ length: n }, (_, i) => i + 1).filter((d) => n % d === 0);

/**
 * dW [(kh,kw,ci), co] = Σ_b (image b's transposed im2col matrix) · dy_b from x NHWC: the threads first
 * transpose every block of images of x to [ci, images, h, w] in scratch of their own, build its im2col matrix and pack
 * its rows of dy (blocks split between them), then split dW's rows, each summing over the blocks in order:
 * conv2d-backprop-filter.ts's blocked product. That product is deferred (deferJob): dW is returned at once and is
 * complete when anything reads, takes or disposes it (deferred.ts).
 * Undefined where kernels run on one thread, the product is small or the shapes do not fit (n % 8 ≠ 0).
 */
export function threadedConv2DFilterGrad(
  backend: BackendWasm,
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  info: tf.backend_util.Conv2DInfo,
): tf.TensorInfo | undefined {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth, padInfo } = info;
  const m = filterHeight * filterWidth * inChannels;
  const perImage = outHeight * outWidth;
  if (outChannels % 8 !== 0 || m * perImage * batchSize * outChannels < MIN_THREADED_MACS) return undefined;
  if (x.dtype !== "float32" || dy.dtype !== "float32" || !gemmFor(backend)) return undefined;
  const threads = poolThreads(backend);
  if (threads <= 1) return undefined;
  // Blocks of images as long as a pass over k (KC_MAX) where the batch divides into them: fewer passes over dW.
  const images = Math.max(...divisors(batchSize).filter((d) => d === 1 || d * perImage <= KC_MAX));
  const [blocks, k] = [batchSize / images, images * perImage];
  const [colsBytes, dyBytes, xTBytes] = [
    batchSize * m * perImage * 4,
    batchSize * perImage * outChannels * 4,
    aligned(images * inHeight * inWidth * inChannels * 4),
  ];
  const [cols, bp, xT, end] = layout(colsBytes, dyBytes, threads * xTBytes);
  const dw = backend.makeOutput([filterHeight, filterWidth, inChannels, outChannels], "float32");
  const [px, pdy, pdw] = [pointer(backend, x), pointer(backend, dy), pointer(backend, dw)];
  const { strideHeight, strideWidth } = info;
  const { at, free } = alignedScratch(backend, end);
  try {
    const im2col = [px, at + cols, inChannels, at + xT, inHeight, inWidth, outHeight, outWidth, filterHeight, filterWidth, strideHeight, strideWidth];
    const packDy = [pdy, at + bp, outChannels, images, xTBytes];
    runJob(IM2COL_IMAGES, blocks, unitsPerClaim(blocks, threads), [...im2col, padInfo.top, padInfo.left, ...packDy]);
  } catch (err) {
    free();
    throw err;
  }
  // The product reads only the scratch: it is left to the pool's threads while this one goes on (deferred.ts).
  guardDeferredData(backend);
  const product = {
    ...{ a: at + cols, table: 0, lda: k * 4, bp: at + bp, c: pdw, m, k, n: outChannels },
    ...{ kcMax: KC_MAX, runLen: KC_MAX, runStride: 0, accumulate: 0 },
    ...{ batches: blocks, aStride: m * k * 4, bpStride: k * outChannels * 4 },
  };
  if (deferProducts) {
    deferGemmPacked(product, [dw.dataId], free);
    return dw;
  }
  try {
    threadedGemmPacked(product);
  } finally {
    free();
  }
  return dw;
}

/**
 * dx = col2im(dy · Wᵀ) with filterT = Wᵀ [co, (kh,kw,ci)], images split between the threads: each
 * zeroes an image's part of dx, computes its column gradients into scratch of its own and scatter-adds them into it in
 * their rows' order, as conv2d-backprop-input.ts's blocked product and scatter do. False (dx untouched) where kernels
 * run on one thread, the product is small or the shapes do not fit ((kh·kw·ci) % 8 ≠ 0).
 */
export function threadedConv2DBackpropInput(
  backend: BackendWasm,
  dy: tf.TensorInfo,
  filterT: tf.TensorInfo,
  dx: tf.TensorInfo,
  info: tf.backend_util.Conv2DInfo,
): boolean {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth, padInfo } = info;
  const n = filterHeight * filterWidth * inChannels;
  const perImage = outHeight * outWidth;
  if (n % 8 !== 0 || batchSize * perImage * outChannels * n < MIN_THREADED_MACS) return false;
  const gemm = gemmFor(backend);
  if (dy.dtype !== "float32" || filterT.dtype !== "float32" || !gemm) return false;
  const threads = poolThreads(backend);
  if (threads <= 1) return false;
  const [fBytes, scratchBytes] = [outChannels * n * 4, aligned(Math.max(perImage * n * 4, gemmCol2imScratchBytes(n, outChannels)))];
  const [bp, scratch, end] = layout(fBytes, threads * scratchBytes);
  const { strideHeight, strideWidth } = info;
  const col2im = [inChannels, inHeight, inWidth, outHeight, outWidth, filterHeight, filterWidth, strideHeight, strideWidth, padInfo.top, padInfo.left];
  const fused = fitsGemmCol2im(info);
  withAlignedScratch(backend, end, (at) => {
    gemm.packB(pointer(backend, filterT), at + bp, outChannels, n);
    const args = [pointer(backend, dy), at + bp, at + scratch, scratchBytes, pointer(backend, dx), outChannels, KC_MAX, ...col2im, fused ? 1 : 0];
    runJob(COL2IM_IMAGES, batchSize, unitsPerClaim(batchSize, threads), args);
  });
  if (fused) countFusedInputGrad();
  return true;
}
