import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { callKernel, checkNhwc, dispose, Pad } from "./util";

/**
 * Stride 1: dx = Conv2D(dy, W reversed on both spatial axes with its channel axes swapped), with dy
 * padded by (k − 1 − pad) on each side; this runs on wasm's fast (XNNPACK) Conv2D instead of the
 * plain loops of wasm's own Conv2DBackpropInput. Other strides, or pads wider than the filter, use
 * wasm's own kernel.
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

