import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { convLoops } from "./fused-conv2d";
import { heapBuffer, pointer, simdLoops, withScratch } from "./simd";
import { checkNhwc, Pad } from "./util";

/**
 * The two gradients of a depthwise convolution, which the wasm backend lacks, in plain TypeScript over the wasm
 * heap, or SIMD loops (simd.wat; conv.wat's at stride 1) for multiplier 1 and channels in fours. Filter W[kh,kw,c,m]; output channel
 * c·M + m reads input channel c (M = depth multiplier); input row ih = oh·sh + kh − top, column
 * iw = ow·sw + kw − left. Any filter size, stride, padding and multiplier; dilation 1.
 */
type Args = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };
type Attrs = { strides: number | [number, number]; pad: Pad; dimRoundingMode?: "floor" | "round" | "ceil"; dilations?: unknown };

function depthwiseInfo(kernelName: string, attrs: Attrs, inShape: number[], filterShape: number[]): tf.backend_util.Conv2DInfo {
  checkNhwc(kernelName, attrs);
  if (inShape.length !== 4 || filterShape.length !== 4 || inShape[3] !== filterShape[2]) {
    throw new Error(
      `${kernelName} on wasm: input shape ${JSON.stringify(inShape)} and filter shape ${JSON.stringify(filterShape)} ` +
        "do not fit; expected [batch, height, width, c] and [kh, kw, c, multiplier]",
    );
  }
  return tf.backend_util.computeConv2DInfo(
    inShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    true,
  );
}

/**
 * Calls visit(dyAt, xAt, tapAt) for every output position (b, oh, ow) and every filter tap (kh, kw) that reads
 * inside the input: the offsets of dy[b,oh,ow,:], of x[b,ih,iw,:] (or dx's) and of W[kh,kw,:,:] (or dW's).
 */
function forEachTap(info: tf.backend_util.Conv2DInfo, visit: (dyAt: number, xAt: number, tapAt: number) => void): void {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const { top, left } = info.padInfo;
  for (let b = 0; b < batchSize; b++) {
    for (let oh = 0; oh < outHeight; oh++) {
      for (let ow = 0; ow < outWidth; ow++) {
        const dyAt = ((b * outHeight + oh) * outWidth + ow) * outChannels;
        for (let kh = 0; kh < filterHeight; kh++) {
          const ih = oh * strideHeight + kh - top;
          if (ih < 0 || ih >= inHeight) continue;
          for (let kw = 0; kw < filterWidth; kw++) {
            const iw = ow * strideWidth + kw - left;
            if (iw < 0 || iw >= inWidth) continue;
            visit(dyAt, ((b * inHeight + ih) * inWidth + iw) * inChannels, (kh * filterWidth + kw) * outChannels);
          }
        }
      }
    }
  }
}

/** dW[kh,kw,c,m] = Σ_{b,oh,ow} x[b,ih,iw,c] · dy[b,oh,ow,c·M+m], summed in float64 (over images: within one, float32 on the SIMD path). */
function depthwiseBackpropFilter(args: Args): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = (args.attrs ?? {}) as unknown as Attrs & { filterShape: number[] };
  const info = depthwiseInfo("DepthwiseConv2dNativeBackpropFilter", attrs, x.shape, attrs.filterShape);
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const { top, left } = info.padInfo;
  const multiplier = info.outChannels / inChannels;
  const acc = new Float64Array(filterHeight * filterWidth * outChannels);
  const out = backend.makeOutput(attrs.filterShape, "float32");
  const simd = simdLoops(backend);
  if (simd && multiplier === 1 && inChannels % 4 === 0) {
    // Tap by tap reads x in runs at stride 1; at stride 2 the per-output walk was as fast or faster.
    const conv = strideHeight === 1 && strideWidth === 1 ? convLoops(backend) : undefined;
    withScratch(backend, acc.length * 4, (image) => {
      const sums = new Float32Array(heapBuffer(backend), image, acc.length);
      const dims = [inHeight, inWidth, inChannels, outHeight, outWidth, filterHeight, filterWidth, strideHeight, strideWidth, top, left] as const;
      for (let b = 0; b < batchSize; b++) {
        const xAt = pointer(backend, x) + b * inHeight * inWidth * inChannels * 4;
        const dyAt = pointer(backend, dy) + b * outHeight * outWidth * outChannels * 4;
        if (conv) conv.depthwiseFilterGradTaps(xAt, dyAt, image, ...dims);
        else {
          sums.fill(0);
          simd.depthwiseFilterGrad(xAt, dyAt, image, 1, ...dims);
        }
        for (let i = 0; i < acc.length; i++) acc[i] += sums[i];
      }
    });
    (backend.typedArrayFromHeap(out) as Float32Array).set(acc);
    return out;
  }
  const xs = backend.typedArrayFromHeap(x) as Float32Array;
  const gs = backend.typedArrayFromHeap(dy) as Float32Array;
  forEachTap(info, (g0, x0, a0) => {
    if (multiplier === 1) {
      for (let c = 0; c < inChannels; c++) acc[a0 + c] += xs[x0 + c] * gs[g0 + c];
      return;
    }
    for (let c = 0; c < inChannels; c++) {
      const xv = xs[x0 + c];
      const o = c * multiplier;
      for (let m = 0; m < multiplier; m++) acc[a0 + o + m] += xv * gs[g0 + o + m];
    }
  });
  (backend.typedArrayFromHeap(out) as Float32Array).set(acc);
  return out;
}

/** dx[b,ih,iw,c] = Σ_{kh,kw,m} dy[b,oh,ow,c·M+m] · W[kh,kw,c,m] over the outputs whose window holds (ih, iw). */
function depthwiseBackpropInput(args: Args): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const attrs = (args.attrs ?? {}) as unknown as Attrs & { inputShape: number[] };
  const info = depthwiseInfo("DepthwiseConv2dNativeBackpropInput", attrs, attrs.inputShape, filter.shape);
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const { top, left } = info.padInfo;
  const multiplier = info.outChannels / inChannels;
  const out = backend.makeOutput(attrs.inputShape, "float32");
  const gs = backend.typedArrayFromHeap(dy) as Float32Array;
  const ws = backend.typedArrayFromHeap(filter) as Float32Array;
  const conv = strideHeight === 1 && strideWidth === 1 && multiplier === 1 && inChannels % 4 === 0 ? convLoops(backend) : undefined;
  if (conv) {
    const [dxAt, dyAt, filterAt] = [pointer(backend, out), pointer(backend, dy), pointer(backend, filter)];
    for (let b = 0; b < batchSize; b++) {
      const [dxImage, dyImage] = [dxAt + b * inHeight * inWidth * inChannels * 4, dyAt + b * outHeight * outWidth * inChannels * 4];
      conv.depthwiseInputGradGather(dxImage, dyImage, filterAt, inHeight, inWidth, inChannels, outHeight, outWidth, filterHeight, filterWidth, top, left);
    }
    return out;
  }
  const dx = backend.typedArrayFromHeap(out) as Float32Array;
  dx.fill(0);
  const simd = simdLoops(backend);
  if (simd && multiplier === 1 && inChannels % 4 === 0) {
    simd.depthwiseInputGrad(
      pointer(backend, out),
      pointer(backend, dy),
      pointer(backend, filter),
      batchSize,
      inHeight,
      inWidth,
      inChannels,
      outHeight,
      outWidth,
      filterHeight,
      filterWidth,
      strideHeight,
      strideWidth,
      top,
      left,
    );
    return out;
  }
  forEachTap(info, (g0, x0, w0) => {
    if (multiplier === 1) {
      for (let c = 0; c < inChannels; c++) dx[x0 + c] += gs[g0 + c] * ws[w0 + c];
      return;
    }
    for (let c = 0; c < inChannels; c++) {
      const o = c * multiplier;
      let sum = 0;
      for (let m = 0; m < multiplier; m++) sum += gs[g0 + o + m] * ws[w0 + o + m];
      dx[x0 + c] += sum;
    }
  });
  return out;
}

export const depthwiseBackpropFilterConfig: tf.KernelConfig = {
  kernelName: tf.DepthwiseConv2dNativeBackpropFilter,
  backendName: "wasm",
  kernelFunc: depthwiseBackpropFilter as tf.KernelFunc,
};

export const depthwiseBackpropInputConfig: tf.KernelConfig = {
  kernelName: tf.DepthwiseConv2dNativeBackpropInput,
  backendName: "wasm",
  kernelFunc: depthwiseBackpropInput as tf.KernelFunc,
};
