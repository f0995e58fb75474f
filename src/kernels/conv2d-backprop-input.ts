import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { pointer, simdLoops } from "./simd";
import { callKernel, checkNhwc, dispose, Pad, transposeInfo } from "./util";

/**
 * dx[b,ih,iw,ci] = Σ dy[b,oh,ow,co] · W[kh,kw,ci,co] over the taps with ih = oh·sh + kh − top, iw = ow·sw + kw − left,
 * on wasm's fast paths instead of the plain loops of wasm's own Conv2DBackpropInput:
 * - with WebAssembly SIMD: one XNNPACK product dcols = dy · Wᵀ, scatter-added into dx by a SIMD loop (col2im);
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
      // dcols[(b,oh,ow), (kh,kw,ci)] = dy[(b,oh,ow), co] · Wᵀ[co, (kh,kw,ci)], then scatter-added into dx.
      const { batchSize, inChannels, outChannels } = info;
      const n = batchSize * outHeight * outWidth;
      const k = filterHeight * filterWidth * inChannels;
      const filterT = transposeInfo(backend, { ...filter, shape: [k, outChannels] }, [1, 0]);
      const dcols = callKernel(
        "BatchMatMul",
        backend,
        { a: { ...dy, shape: [1, n, outChannels] }, b: { ...filterT, shape: [1, outChannels, k] } },
        { transposeA: false, transposeB: false },
      );
      dispose(backend, filterT);
      const dx = backend.makeOutput(attrs.inputShape, "float32");
      simd.col2imAdd(
        pointer(backend, dcols),
        pointer(backend, dx),
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
        info.padInfo.top,
        info.padInfo.left,
      );
      dispose(backend, dcols);
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
