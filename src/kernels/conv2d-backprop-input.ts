import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { relaxedMatMulInBlocks } from "./gemm";
import { relaxedConv2DInputGrad } from "./input-grad";
import { heapBuffer, pointer, simdLoops } from "./simd";
import { threadedConv2DBackpropInput } from "./threaded-conv";
import { callKernel, checkNhwc, dispose, Pad, transposeInfo } from "./util";

/**
 * dx[b,ih,iw,ci] = Σ dy[b,oh,ow,co] · W[kh,kw,ci,co] over the taps with ih = oh·sh + kh − top, iw = ow·sw + kw − left,
 * on wasm's fast paths instead of the plain loops of wasm's own Conv2DBackpropInput:
 * - with WebAssembly SIMD: the product dcols = dy · Wᵀ, scatter-added into dx by a SIMD loop (col2im); on the
 *   kernel threads image by image (threaded-conv.ts), on one thread with relaxed SIMD as one kernel, 6 output pixels
 *   at a time (input-grad.ts: 3×3 and other filters with ci % 8 == 0) or else in blocks of output rows (gemm.ts),
 *   each scattered while in cache, else as one product;
 * - without, at stride 1: one Conv2D of dy, padded by (k − 1 − pad), with W reversed on both spatial axes and
 *   its channel axes swapped; other strides (or pads wider than the filter) use wasm's own kernel.
 */
export function makeConv2DBackpropInputConfig(original: tf.KernelConfig): tf.KernelConfig {
  const conv2DBackpropInput = (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) => {
    const backend = args.backend as BackendWasm;
    const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
    const attrs = (args.attrs ?? {}) as unknown as tf.Conv2DBackpropInputAttrs & { dilations?: unknown };
    checkNhwc("Conv2DBackpropInput", attrs);
    const info = tf.backend_util.computeConv2DInfo(
      attrs.inputShape,
      filter.shape as [number, number, number, number],
      attrs.strides,
      1,
      attrs.pad as Pad,
      attrs.dimRoundingMode,
    );
    const { inHeight, inWidth, outHeight, outWidth, filterHeight, filterWidth, strideHeight, strideWidth } = info;
    const simd = simdLoops(backend);
    if (simd) {
      // dcols[(b,oh,ow), (kh,kw,ci)] = dy[(b,oh,ow), co] · Wᵀ[co, (kh,kw,ci)], scatter-added into dx in its rows' order.
      const { batchSize, inChannels, outChannels } = info;
      const n = batchSize * outHeight * outWidth;
      const k = filterHeight * filterWidth * inChannels;
      const filterT = transposeInfo(backend, { ...filter, shape: [k, outChannels] }, [1, 0]);
      const { top, left } = info.padInfo;
      if (filterHeight * filterWidth * strideHeight * strideWidth === 1 && top === 0 && left === 0 && outHeight === inHeight && outWidth === inWidth) {
        // A 1×1, stride-1 filter's dcols is dx: the scatter would add each value to a zero, which leaves it as it is
        // (a sum of products that starts from +0 never ends at −0).
        const dx = callKernel(
          "BatchMatMul",
          backend,
          { a: { ...dy, shape: [1, n, outChannels] }, b: { ...filterT, shape: [1, outChannels, k] } },
          {
            transposeA: false,
            transposeB: false,
          },
        );
        dispose(backend, filterT);
        return { ...dx, shape: attrs.inputShape };
      }
      const dx = backend.makeOutput(attrs.inputShape, "float32");
      const col2im = (dcols: number, first: number, rows: number) =>
        simd.col2imAdd(
          dcols,
          pointer(backend, dx),
          inChannels,
          inHeight,
          inWidth,
          outHeight,
          outWidth,
          filterHeight,
          filterWidth,
          strideHeight,
          strideWidth,
          info.padInfo.top,
          info.padInfo.left,
          first,
          rows,
        );
      const a = { ...dy, shape: [n, outChannels] };
      const b = { ...filterT, shape: [outChannels, k] };
      // Blocks of whole output rows, about BLOCK_BYTES of dcols and a multiple of 6 rows (gemm.wat's tile) where
      // that fits: dcols stays in cache between the product and the scatter.
      const unit = 6 / gcd(outWidth, 6);
      const imageRows = Math.max(1, Math.floor(BLOCK_BYTES / (outWidth * k * 4 * unit))) * unit;
      // On the threads dx is zeroed there, image by image, and copied back whole; else zeroed here.
      const threaded = threadedConv2DBackpropInput(backend, dy, filterT, dx, info);
      if (!threaded) new Float32Array(heapBuffer(backend), pointer(backend, dx), tf.util.sizeFromShape(attrs.inputShape)).fill(0);
      const fused = threaded || relaxedConv2DInputGrad(backend, dy, filterT, dx, info);
      const blocked = fused || relaxedMatMulInBlocks(backend, a, b, imageRows * outWidth, (c, first, rows) => col2im(c, first / outWidth, rows / outWidth));
      if (!blocked) {
        const dcols = callKernel(
          "BatchMatMul",
          backend,
          { a: { ...a, shape: [1, n, outChannels] }, b: { ...b, shape: [1, outChannels, k] } },
          {
            transposeA: false,
            transposeB: false,
          },
        );
        col2im(pointer(backend, dcols), 0, batchSize * outHeight);
        dispose(backend, dcols);
      }
      dispose(backend, filterT);
      return dx;
    }
    const padTop = filterHeight - 1 - info.padInfo.top;
    const padLeft = filterWidth - 1 - info.padInfo.left;
    const padBottom = inHeight - outHeight + info.padInfo.top;
    const padRight = inWidth - outWidth + info.padInfo.left;
    if (strideHeight !== 1 || strideWidth !== 1 || Math.min(padTop, padLeft, padBottom, padRight) < 0) {
      return original.kernelFunc(args as Parameters<tf.KernelFunc>[0]);
    }
    const flipped = flipFilter(backend, filter);
    const pad: tf.backend_util.ExplicitPadding = [
      [0, 0],
      [padTop, padBottom],
      [padLeft, padRight],
      [0, 0],
    ];
    const dx = callKernel("Conv2D", backend, { x: dy, filter: flipped }, { strides: 1, pad, dataFormat: "NHWC", dilations: 1 });
    dispose(backend, flipped);
    return dx;
  };
  return {
    kernelName: tf.Conv2DBackpropInput,
    backendName: "wasm",
    setupFunc: original.setupFunc,
    kernelFunc: conv2DBackpropInput as tf.KernelFunc,
  };
}

/** dcols bytes per block of the blocked product: well inside L2, beside the packed filter. */
const BLOCK_BYTES = 64 * 1024;

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** W[kh,kw,ci,co] → W'[KH−1−kh, KW−1−kw, co, ci]. */
function flipFilter(backend: BackendWasm, filter: tf.TensorInfo): tf.TensorInfo {
  const [kh, kw, ci, co] = filter.shape;
  const out = backend.makeOutput([kh, kw, co, ci], "float32");
  const src = backend.typedArrayFromHeap(filter) as Float32Array;
  const dst = backend.typedArrayFromHeap(out) as Float32Array;
  for (let h = 0; h < kh; h++) {
    for (let w = 0; w < kw; w++) {
      const from = ((kh - 1 - h) * kw + (kw - 1 - w)) * ci * co;
      const to = (h * kw + w) * co * ci;
      for (let i = 0; i < ci; i++) {
        for (let o = 0; o < co; o++) dst[to + o * ci + i] = src[from + i * co + o];
      }
    }
  }
  return out;
}
