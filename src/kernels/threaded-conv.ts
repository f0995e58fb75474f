import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { aligned, hasRelaxedGemm, KC_MAX } from "./gemm";
import { countFusedInputGrad, fitsGemmCol2im, gemmCol2imScratchBytes } from "./input-grad";
import { heapBuffer, pointer } from "./simd";
import { COL2IM_IMAGES, IM2COL_IMAGES } from "./thread-jobs";
import { CLAIMS_PER_THREAD, MIN_THREADED_MACS, kernelThreads, runJob, sharedGemm, threadedGemmPacked, threadsNow } from "./threads";

/**
 * A convolution's two gradients on the kernel threads (threads.ts), im2col and col2im included: only the operands and
 * the result cross between tfjs's heap and the shared memory. Each gives what the single-threaded kernels give (the
 * same products and additions in the same order; see runUnits), whatever the thread count.
 */

/** Consecutive regions of the shared memory of the given sizes: their byte offsets, then the total. */
function layout(...bytes: number[]): number[] {
  const offsets = [0];
  for (const b of bytes) offsets.push(offsets[offsets.length - 1] + aligned(b));
  return offsets;
}

/** The divisors of n. */
const divisors = (n: number) => Array.from({ length: n }, (_, i) => i + 1).filter((d) => n % d === 0);

/** Units per claim: about CLAIMS_PER_THREAD claims per thread, so that a thread that wakes late takes fewer. */
const imagesPerClaim = (images: number, threads: number) => Math.max(1, Math.floor(images / (threads * CLAIMS_PER_THREAD)));

/**
 * dW [(kh,kw,ci), co] = Σ_b (image b's transposed im2col matrix) · dy_b from x NHWC (on tfjs's heap): the threads first
 * transpose every block of images of x to [ci, images, h, w] in scratch of their own, build its im2col matrix and pack
 * its rows of dy (blocks split between them), then split dW's rows, each summing over the blocks in order:
 * conv2d-backprop-filter.ts's blocked product.
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
  if (threadsNow() <= 1 || outChannels % 8 !== 0 || m * perImage * batchSize * outChannels < MIN_THREADED_MACS) return undefined;
  if (x.dtype !== "float32" || dy.dtype !== "float32" || !hasRelaxedGemm(backend)) return undefined;
  const threads = kernelThreads();
  // Blocks of images as long as a pass over k (KC_MAX) where the batch divides into them: fewer passes over dW.
  const images = Math.max(...divisors(batchSize).filter((d) => d === 1 || d * perImage <= KC_MAX));
  const [blocks, k] = [batchSize / images, images * perImage];
  const xBytes = batchSize * inHeight * inWidth * inChannels * 4;
  const [colsBytes, dyBytes, xTBytes] = [
    batchSize * m * perImage * 4,
    batchSize * perImage * outChannels * 4,
    aligned(images * inHeight * inWidth * inChannels * 4),
  ];
  const [sx, cols, sdy, sbp, sdw, sxT, end] = layout(xBytes, colsBytes, dyBytes, dyBytes, m * outChannels * 4, threads * xTBytes);
  const shared = sharedGemm(end);
  if (!shared || shared.threads !== threads) return undefined;
  const dw = backend.makeOutput([filterHeight, filterWidth, inChannels, outChannels], "float32");
  const [px, pdy, pdw] = [pointer(backend, x), pointer(backend, dy), pointer(backend, dw)];
  const heap = new Uint8Array(heapBuffer(backend));
  const mem = new Uint8Array(shared.memory.buffer);
  mem.set(heap.subarray(px, px + xBytes), sx);
  mem.set(heap.subarray(pdy, pdy + dyBytes), sdy);
  const { strideHeight, strideWidth } = info;
  const im2col = [sx, cols, inChannels, sxT, inHeight, inWidth, outHeight, outWidth, filterHeight, filterWidth, strideHeight, strideWidth];
  runJob(IM2COL_IMAGES, blocks, imagesPerClaim(blocks, threads), [...im2col, padInfo.top, padInfo.left, sdy, sbp, outChannels, images, xTBytes]);
  threadedGemmPacked({
    ...{ a: cols, table: 0, lda: k * 4, bp: sbp, c: sdw, m, k, n: outChannels },
    ...{ kcMax: KC_MAX, runLen: KC_MAX, runStride: 0, accumulate: 0 },
    ...{ batches: blocks, aStride: m * k * 4, bpStride: k * outChannels * 4 },
  });
  heap.set(mem.subarray(sdw, sdw + m * outChannels * 4), pdw);
  return dw;
}

/**
 * dx = col2im(dy · Wᵀ) with filterT = Wᵀ [co, (kh,kw,ci)] (on tfjs's heap), images split between the threads: each
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
  if (threadsNow() <= 1 || n % 8 !== 0 || batchSize * perImage * outChannels * n < MIN_THREADED_MACS) return false;
  if (dy.dtype !== "float32" || filterT.dtype !== "float32" || !hasRelaxedGemm(backend)) return false;
  const threads = kernelThreads();
  const [dyBytes, fBytes, dxBytes, scratchBytes] = [
    batchSize * perImage * outChannels * 4,
    outChannels * n * 4,
    tf.util.sizeFromShape(dx.shape) * 4,
    aligned(Math.max(perImage * n * 4, gemmCol2imScratchBytes(n, outChannels))),
  ];
  const [sdy, sf, sbp, sdx, scratch, end] = layout(dyBytes, fBytes, fBytes, dxBytes, threads * scratchBytes);
  const shared = sharedGemm(end);
  if (!shared || shared.threads !== threads) return false;
  const heap = new Uint8Array(heapBuffer(backend));
  const mem = new Uint8Array(shared.memory.buffer);
  const [pdy, pf, pdx] = [pointer(backend, dy), pointer(backend, filterT), pointer(backend, dx)];
  mem.set(heap.subarray(pdy, pdy + dyBytes), sdy);
  mem.set(heap.subarray(pf, pf + fBytes), sf);
  shared.packB(sf, sbp, outChannels, n);
  const { strideHeight, strideWidth } = info;
  const col2im = [inChannels, inHeight, inWidth, outHeight, outWidth, filterHeight, filterWidth, strideHeight, strideWidth, padInfo.top, padInfo.left];
  const fused = fitsGemmCol2im(info);
  runJob(COL2IM_IMAGES, batchSize, imagesPerClaim(batchSize, threads), [sdy, sbp, scratch, scratchBytes, sdx, outChannels, KC_MAX, ...col2im, fused ? 1 : 0]);
  if (fused) countFusedInputGrad();
  heap.set(mem.subarray(sdx, sdx + dxBytes), pdx);
  return true;
}
