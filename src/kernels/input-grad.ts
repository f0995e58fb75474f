import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { gemmFor } from "./gemm";
import { pointer, withScratch } from "./simd";
import { MIN_THREADED_MACS, poolThreads } from "./threads";

/**
 * A convolution's input gradient dx += col2im(dy · Wᵀ) by gemm.wat's gemmCol2im: 6 output pixels at a time from
 * registers through an L1 scratch tile into dx, with relaxedMatMul's sums and col2imAdd's additions in its order
 * (bit for bit the blocked product and scatter it replaces), on one thread here and image by image on the kernel
 * threads (threaded-conv.ts).
 */

let enabled = true;
let runs = 0;

/** Switch gemmCol2im off (tests and A/B timings compare it with the blocked product and col2imAdd). */
export function enableFusedInputGrad(on: boolean): void {
  enabled = on;
}

/** How many input gradients (or, on the kernel threads, batches of them) gemmCol2im has computed in this process. */
export const fusedInputGradCalls = (): number => runs;

/** Counts one run: threaded-conv.ts calls it where its threads take gemmCol2im. */
export const countFusedInputGrad = (): void => void runs++;

/** Whether gemmCol2im applies: switched on, ci % 8 == 0, 2 to 32 taps (1×1: packing dy's tiles costs more than the scatter saves). */
export function fitsGemmCol2im(info: tf.backend_util.Conv2DInfo): boolean {
  const taps = info.filterHeight * info.filterWidth;
  return enabled && info.inChannels % 8 === 0 && taps > 1 && taps <= 32;
}

/** gemmCol2im's scratch after the packed filter: a tile of column gradients, and one of dy's rows. */
export const gemmCol2imScratchBytes = (k: number, outChannels: number): number => 6 * (k + outChannels) * 4;

/**
 * gemmCol2im on one thread (dx zeroed, filterT = Wᵀ [co, (kh,kw,ci)]). False (nothing computed) where relaxed SIMD
 * is unavailable, gemmCol2im does not apply or the kernel threads would run the gradient faster.
 */
export function relaxedConv2DInputGrad(
  backend: BackendWasm,
  dy: tf.TensorInfo,
  filterT: tf.TensorInfo,
  dx: tf.TensorInfo,
  info: tf.backend_util.Conv2DInfo,
): boolean {
  const gemm = gemmFor(backend);
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth, padInfo } = info;
  const pixels = batchSize * outHeight * outWidth;
  const k = filterHeight * filterWidth * inChannels;
  if (!gemm || !fitsGemmCol2im(info) || dy.dtype !== "float32" || filterT.dtype !== "float32") return false;
  if (poolThreads(backend) > 1 && pixels * k * outChannels >= MIN_THREADED_MACS) return false;
  withScratch(backend, k * outChannels * 4 + gemmCol2imScratchBytes(k, outChannels), (bp) => {
    gemm.packB(pointer(backend, filterT), bp, outChannels, k);
    const [h, w, kh, kw, sh, sw] = [inHeight, inWidth, filterHeight, filterWidth, info.strideHeight, info.strideWidth];
    const [top, left] = [padInfo.top, padInfo.left];
    gemm.gemmCol2im(
      pointer(backend, dy),
      bp,
      pointer(backend, dx),
      bp + k * outChannels * 4,
      pixels,
      outChannels,
      inChannels,
      h,
      w,
      outHeight,
      outWidth,
      kh,
      kw,
      sh,
      sw,
      top,
      left,
    );
  });
  runs++;
  return true;
}
