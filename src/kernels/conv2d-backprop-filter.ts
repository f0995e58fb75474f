import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { pointer, SimdLoops, simdLoops } from "./simd";
import { callKernel, checkNhwc, dispose, Pad, sliceInfo, transposeInfo } from "./util";

/**
 * dW[kh,kw,ci,co] = Σ_{b,oh,ow} x[b, oh·sh + kh − top, ow·sw + kw − left, ci] · dy[b,oh,ow,co], on wasm's fast
 * paths, whichever measured fastest for the shape:
 * - one or two input channels (a first layer), output channels in 32s: a direct SIMD sum (simd.wat);
 * - otherwise dW = Aᵀ·dy, one XNNPACK matrix product of the transposed im2col matrix of x,
 *   Aᵀ[(kh,kw,ci), (b,oh,ow)] (built by a SIMD loop), with dy[(b,oh,ow), co]: the result is dW's layout;
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
    simd.conv2DFilterGradDirect(
      pointer(backend, x),
      pointer(backend, dy),
      pointer(backend, dw),
      batchSize,
      inHeight,
      inWidth,
      inChannels,
      outHeight,
      outWidth,
      outChannels,
      filterHeight,
      filterWidth,
      strideHeight,
      strideWidth,
      info.padInfo.top,
      info.padInfo.left,
    );
    return dw;
  }
  return viaIm2col(backend, simd, x, dy, info);
}

function viaIm2col(backend: BackendWasm, simd: SimdLoops, x: tf.TensorInfo, dy: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const n = batchSize * outHeight * outWidth;
  const k = filterHeight * filterWidth * inChannels;
  const xT = transposeInfo(backend, x, [3, 0, 1, 2]);
  // A 1×1, stride-1, unpadded filter's im2col matrix is xT itself: multiply it as it lies (the same values).
  const { top, left } = info.padInfo;
  const inPlace = filterHeight * filterWidth * strideHeight * strideWidth === 1 && top === 0 && left === 0 && outHeight === inHeight && outWidth === inWidth;
  const colsT = inPlace ? { ...xT, shape: [1, k, n] } : backend.makeOutput([1, k, n], "float32");
  if (!inPlace) {
    simd.im2colRows(
      pointer(backend, xT),
      pointer(backend, colsT),
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
    );
  }
  const dw = callKernel("BatchMatMul", backend, { a: colsT, b: { ...dy, shape: [1, n, outChannels] } }, { transposeA: false, transposeB: false });
  dispose(backend, xT);
  if (!inPlace) dispose(backend, colsT);
  return { ...dw, shape: [filterHeight, filterWidth, inChannels, outChannels] };
}

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
