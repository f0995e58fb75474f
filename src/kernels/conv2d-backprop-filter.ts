import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { KC_MAX, relaxedConv2DFilterGrad, relaxedMatMulOfBlocks } from "./gemm";
import { pointer, SimdLoops, simdLoops } from "./simd";
import { threadedConv2DFilterGrad } from "./threaded-conv";
import { FILTER_TAPS } from "./thread-jobs";
import { MIN_THREADED_MACS, poolThreads, runJob } from "./threads";
import { callKernel, checkNhwc, dispose, Pad, sliceInfo, transposeInfo } from "./util";

/**
 * dW[kh,kw,ci,co] = Σ_{b,oh,ow} x[b, oh·sh + kh − top, ow·sw + kw − left, ci] · dy[b,oh,ow,co], on wasm's fast
 * paths, whichever measured fastest for the shape:
 * - one or two input channels (a first layer), output channels in 32s: a direct SIMD sum (simd.wat), its filter's taps
 *   split between the kernel threads;
 * - otherwise dW = Aᵀ·dy, the matrix product of the transposed im2col matrix of x, Aᵀ[(kh,kw,ci), (b,oh,ow)]
 *   (built by a SIMD loop), with dy[(b,oh,ow), co]: the result is dW's layout; on the kernel threads, x's
 *   transpose, im2col and product all run there (threaded-conv.ts); on one thread with relaxed SIMD (gemm.ts) at
 *   stride 1 Aᵀ is read in place from xT zero-padded, at other strides it is built and multiplied in blocks of
 *   images; else it is one product;
 * - without WebAssembly SIMD: one Conv2D of xᵀ[ci,H,W,b] with dyᵀ[oh,ow,b,co] as the filter and
 *   dilation = stride, giving [ci,kh,kw,co], then transposed to [kh,kw,ci,co].
 */
function conv2DBackpropFilter(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = (args.attrs ?? {}) as unknown as tf.Conv2DBackpropFilterAttrs & { dilations?: unknown };
  checkNhwc("Conv2DBackpropFilter", attrs);
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterShape,
    attrs.strides,
    1,
    attrs.pad as Pad,
    attrs.dimRoundingMode,
  );
  const simd = simdLoops(backend);
  if (!simd) return viaConv2D(backend, x, dy, info);
  if (info.inChannels <= 2 && info.outChannels % 32 === 0) {
    const dw = backend.makeOutput(attrs.filterShape, "float32");
    const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
    const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
    const direct = [
      ...[pointer(backend, x), pointer(backend, dy), pointer(backend, dw)],
      ...[batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels],
      ...[filterHeight, filterWidth, strideHeight, strideWidth, info.padInfo.top, info.padInfo.left],
    ] as const;
    const taps = filterHeight * filterWidth;
    const macs = batchSize * outHeight * outWidth * outChannels * taps * inChannels;
    if (taps > 1 && macs >= MIN_THREADED_MACS && poolThreads(backend) > 1) runJob(FILTER_TAPS, taps, 1, [...direct]);
    else simd.conv2DFilterGradDirect(...direct);
    return dw;
  }
  return viaIm2col(backend, simd, x, dy, info);
}

function viaIm2col(backend: BackendWasm, simd: SimdLoops, x: tf.TensorInfo, dy: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const n = batchSize * outHeight * outWidth;
  const k = filterHeight * filterWidth * inChannels;
  const filterShape = [filterHeight, filterWidth, inChannels, outChannels];
  const { top, left } = info.padInfo;
  // A 1×1, stride-1, unpadded filter's im2col matrix is xT itself.
  const inPlace = filterHeight * filterWidth * strideHeight * strideWidth === 1 && top === 0 && left === 0 && outHeight === inHeight && outWidth === inWidth;
  if (inPlace && pointwiseInBlocks) {
    // xT KC_MAX pixels at a time (the product's k block), transposed into cache just before its products: xT is
    // never whole in memory. Larger blocks measured slower.
    const fill = (first: number, kc: number, a: number) => simd.transpose2D(pointer(backend, x) + first * k * 4, a, kc, k);
    const dw = relaxedMatMulOfBlocks(backend, k, { ...dy, shape: [n, outChannels] }, KC_MAX, fill);
    if (dw) {
      pointwiseBlockRuns++;
      return { ...dw, shape: filterShape };
    }
  }
  // On the kernel threads x is copied as it lies and transposed there, a block of images at a time.
  const threaded = inPlace ? undefined : threadedConv2DFilterGrad(backend, x, dy, info);
  if (threaded) return threaded;
  // xT = x transposed to [ci, b, h, w]: NHWC x as [b·h·w, ci] transposed.
  const xT = backend.makeOutput([inChannels, batchSize, inHeight, inWidth], "float32");
  simd.transpose2D(pointer(backend, x), pointer(backend, xT), batchSize * inHeight * inWidth, inChannels);
  const im2col = (cols: number, firstImage: number, images: number) =>
    simd.im2colRows(
      pointer(backend, xT) + firstImage * inHeight * inWidth * 4,
      cols,
      inChannels,
      batchSize,
      inHeight,
      inWidth,
      outHeight,
      outWidth,
      filterHeight,
      filterWidth,
      strideHeight,
      strideWidth,
      top,
      left,
      images,
    );
  // For a 1×1 filter xT is the im2col matrix: multiply it as it lies (the same values).
  const direct = inPlace ? undefined : relaxedConv2DFilterGrad(backend, xT, dy, info);
  if (direct) {
    dispose(backend, xT);
    return direct;
  }
  if (!inPlace) {
    // On one thread: the im2col matrix in blocks of whole images (about BLOCK_BYTES), each multiplied while in cache.
    const perImage = outHeight * outWidth;
    const images = Math.max(1, Math.floor(BLOCK_BYTES / (k * perImage * 4)));
    const fill = (first: number, kc: number, cols: number) => im2col(cols, first / perImage, kc / perImage);
    const dw = relaxedMatMulOfBlocks(backend, k, { ...dy, shape: [n, outChannels] }, images * perImage, fill);
    if (dw) {
      dispose(backend, xT);
      return { ...dw, shape: filterShape };
    }
  }
  const colsT = inPlace ? { ...xT, shape: [1, k, n] } : backend.makeOutput([1, k, n], "float32");
  if (!inPlace) im2col(pointer(backend, colsT), 0, batchSize);
  const dw = callKernel("BatchMatMul", backend, { a: colsT, b: { ...dy, shape: [1, n, outChannels] } }, { transposeA: false, transposeB: false });
  dispose(backend, xT);
  if (!inPlace) dispose(backend, colsT);
  return { ...dw, shape: filterShape };
}

let pointwiseInBlocks = true;
let pointwiseBlockRuns = 0;

/** Filter gradients computed a block of pixels at a time so far (tests check that the path ran). */
export const pointwiseFilterGradBlockRuns = (): number => pointwiseBlockRuns;

/** Switch a 1×1 filter's gradient in blocks of pixels off (tests check it against xT transposed whole). */
export function enablePointwiseFilterGradBlocks(on: boolean): void {
  pointwiseInBlocks = on;
}

/** im2col bytes per block of the blocked product: within L2, beside the packed block of dy. */
const BLOCK_BYTES = 512 * 1024;

function viaConv2D(backend: BackendWasm, x: tf.TensorInfo, dy: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo {
  const { inHeight, inWidth, outHeight, outWidth, filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const { top, left } = info.padInfo;
  // Input rows/cols the last filter tap can read; beyond them nothing contributes (valid + uneven stride),
  // short of them the conv needs zero padding at the bottom/right.
  const bottom = filterHeight + (outHeight - 1) * strideHeight - inHeight - top;
  const right = filterWidth + (outWidth - 1) * strideWidth - inWidth - left;
  let cropped = x;
  if (bottom < 0 || right < 0) {
    const rows = inHeight + Math.min(bottom, 0);
    const cols = inWidth + Math.min(right, 0);
    cropped = sliceInfo(backend, x, [0, 0, 0, 0], [x.shape[0], rows, cols, x.shape[3]]);
  }
  const xT = transposeInfo(backend, cropped, [3, 1, 2, 0]);
  if (cropped !== x) dispose(backend, cropped);
  const dyT = transposeInfo(backend, dy, [1, 2, 0, 3]);
  const pad: tf.backend_util.ExplicitPadding = [
    [0, 0],
    [top, Math.max(bottom, 0)],
    [left, Math.max(right, 0)],
    [0, 0],
  ];
  const dwT = callKernel("Conv2D", backend, { x: xT, filter: dyT }, { strides: 1, pad, dataFormat: "NHWC", dilations: [strideHeight, strideWidth] });
  dispose(backend, xT, dyT);
  const dw = transposeInfo(backend, dwT, [1, 2, 0, 3]);
  dispose(backend, dwT);
  return dw;
}

export const conv2DBackpropFilterConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: "wasm",
  kernelFunc: conv2DBackpropFilter as tf.KernelFunc,
};
