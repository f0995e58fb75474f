import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { pointer, simdLoops } from "./simd";
import { POOL_GRAD_IMAGES } from "./thread-jobs";
import { MIN_THREADED_FLOATS, poolThreads, runJob, unitsPerClaim } from "./threads";
import { pool2DInfoOf } from "./util";

/**
 * dx of a max pool: each output's gradient goes to the first maximum of its window (row-major scan,
 * as the cpu backend does). 2×2 windows at stride 2 (the paper CNN's) run as a SIMD loop (simd.wat) that finds
 * the maximum by comparing with the pooled output, images split between the kernel threads (threads.ts); other pools
 * run in plain TypeScript over the wasm heap.
 * wasm's own kernel is ~10× slower than either.
 */
function maxPoolGrad(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const attrs = (args.attrs ?? {}) as unknown as tf.MaxPoolGradAttrs;
  const info = pool2DInfoOf(input, attrs);
  const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth } = info;
  const { strideHeight, strideWidth, filterHeight, filterWidth } = info;
  const { top, left } = info.padInfo;
  const out = backend.makeOutput(input.shape, "float32");
  // Views only after the last allocation: growing the heap detaches older views.
  const x = backend.typedArrayFromHeap(input) as Float32Array;
  const g = backend.typedArrayFromHeap(dy) as Float32Array;
  const dx = backend.typedArrayFromHeap(out) as Float32Array;
  const simd = simdLoops(backend);
  const plainTiles =
    filterHeight === 2 &&
    filterWidth === 2 &&
    strideHeight === 2 &&
    strideWidth === 2 &&
    top === 0 &&
    left === 0 &&
    2 * outHeight <= inHeight &&
    2 * outWidth <= inWidth &&
    channels % 4 === 0;
  if (simd && plainTiles) {
    // Windows tile the input; the pooled output tells each window's maximum.
    const uncovered = 2 * outHeight < inHeight || 2 * outWidth < inWidth;
    const { output } = args.inputs as { output: tf.TensorInfo };
    const at = (t: tf.TensorInfo) => pointer(backend, t);
    const threads = poolThreads(backend);
    if (threads > 1 && batchSize > 1 && dx.length >= MIN_THREADED_FLOATS) {
      const args = [at(input), at(output), at(dy), at(out), inHeight, inWidth, channels, outHeight, outWidth, uncovered ? 1 : 0];
      runJob(POOL_GRAD_IMAGES, batchSize, unitsPerClaim(batchSize, threads), args);
      return out;
    }
    if (uncovered) dx.fill(0);
    simd.maxPoolGrad2x2(at(input), at(output), at(dy), at(out), batchSize, inHeight, inWidth, channels, outHeight, outWidth);
    return out;
  }
  dx.fill(0);
  for (let b = 0; b < batchSize; b++) {
    for (let oh = 0; oh < outHeight; oh++) {
      const h0 = oh * strideHeight - top;
      const hFrom = Math.max(0, h0);
      const hTo = Math.min(inHeight, h0 + filterHeight);
      for (let ow = 0; ow < outWidth; ow++) {
        const w0 = ow * strideWidth - left;
        const wFrom = Math.max(0, w0);
        const wTo = Math.min(inWidth, w0 + filterWidth);
        const gBase = ((b * outHeight + oh) * outWidth + ow) * channels;
        for (let c = 0; c < channels; c++) {
          let best = -Infinity;
          let bestAt = -1;
          for (let h = hFrom; h < hTo; h++) {
            for (let w = wFrom; w < wTo; w++) {
              const at = ((b * inHeight + h) * inWidth + w) * channels + c;
              if (x[at] > best) {
                best = x[at];
                bestAt = at;
              }
            }
          }
          if (bestAt >= 0) dx[bestAt] += g[gBase + c];
        }
      }
    }
  }
  return out;
}

export const maxPoolGradConfig: tf.KernelConfig = {
  kernelName: tf.MaxPoolGrad,
  backendName: "wasm",
  kernelFunc: maxPoolGrad as tf.KernelFunc,
};
