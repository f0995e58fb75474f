import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { CONV_WASM_BASE64 } from "./conv-module";
import { heapBuffer, loopsOnMemory, pointer, withScratch } from "./simd";
import { CONV_ROWS, convRowStarts } from "./thread-jobs";
import { MIN_THREADED_MACS, poolThreads, runJob } from "./threads";
import { callKernel, conv2DInfoOf, dispose } from "./util";

/** conv.wat's loops: a product in XNNPACK's multiply-then-add order, register tiles of 5 output pixels × 8 output channels. */
export interface ConvLoops {
  packB(b: number, bp: number, k: number, n: number): void;
  convProduct(a: number, table: number, bp: number, c: number, m: number, k: number, n: number, runLen: number, runStride: number): void;
  depthwiseFilterGradTaps(
    x: number,
    dy: number,
    out: number,
    h: number,
    w: number,
    c: number,
    oh: number,
    ow: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    top: number,
    left: number,
  ): void;
  depthwiseInputGradGather(
    dx: number,
    dy: number,
    filter: number,
    h: number,
    w: number,
    c: number,
    oh: number,
    ow: number,
    kh: number,
    kw: number,
    top: number,
    left: number,
  ): void;
  copyRows(src: number, dst: number, outer: number, rows: number, rowLen: number, dstRowStride: number, dstOuterStride: number): void;
}

const convOnMemory = loopsOnMemory<ConvLoops>(CONV_WASM_BASE64);

let enabled = true;
/** Switch conv.wat's loops off (tests and benchmarks compare them with the kernels they replace). */
export function enableConvProduct(on: boolean): void {
  enabled = on;
}

export function convLoops(backend: BackendWasm): ConvLoops | undefined {
  const memory = (backend.wasm as unknown as { asm?: { memory?: object } }).asm?.memory;
  return enabled && memory ? convOnMemory(memory) : undefined;
}

/**
 * An NHWC convolution (dilation 1, output channels in 8s) as one product read in place from x zero-padded: row
 * (b, oh, ow) of the im2col matrix is kh runs of kw·c floats, a padded input row apart; the filter [kh, kw, c, co] is B
 * as it lies. Every output is XNNPACK's: +0, then each tap's product added in (kh, kw, c) order (a padded tap's
 * product is ±0, which leaves a sum that started from +0 as it is). On the kernel threads, output pixels split between
 * them (each output's sum is computed whole by one thread). Undefined where the loops are unavailable or the
 * convolution does not fit them.
 */
export function convProduct(backend: BackendWasm, x: tf.TensorInfo, filter: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo | undefined {
  const loops = convLoops(backend);
  const { batchSize, inChannels, outHeight, outWidth, outChannels, padInfo, filterHeight, filterWidth, strideHeight, strideWidth } = info;
  if (!loops || info.dilationHeight !== 1 || info.dilationWidth !== 1 || outChannels % 8 !== 0 || info.dataFormat !== "channelsLast") return undefined;
  if (x.dtype !== "float32" || filter.dtype !== "float32") return undefined;
  const m = batchSize * outHeight * outWidth;
  const runLen = filterWidth * inChannels;
  const k = filterHeight * runLen;
  if (m * k === 0) return undefined;
  const unpadded = padInfo.top === 0 && padInfo.left === 0 && padInfo.bottom === 0 && padInfo.right === 0;
  const paddings = [
    [0, 0],
    [padInfo.top, padInfo.bottom],
    [padInfo.left, padInfo.right],
    [0, 0],
  ];
  const padded = unpadded ? x : callKernel("PadV2", backend, { x }, { paddings, constantValue: 0 });
  const [hp, wp] = padded.shape.slice(1, 3);
  const out = backend.makeOutput([batchSize, outHeight, outWidth, outChannels], "float32");
  const [px, pf, po] = [pointer(backend, padded), pointer(backend, filter), pointer(backend, out)];
  withScratch(backend, k * outChannels * 4 + m * 4, (bp) => {
    const table = bp + k * outChannels * 4;
    loops.packB(pf, bp, k, outChannels);
    const args = [px, table, bp, po, m, k, outChannels, runLen, wp * inChannels * 4] as const;
    const rowStarts = [outHeight, outWidth, hp, wp, strideHeight, strideWidth, inChannels] as const;
    const threads = convThreads(backend, info);
    // Claims of whole register tiles (5 pixels), about 8 per thread, each filling its part of the table first.
    if (threads > 1) {
      runJob(CONV_ROWS, m, Math.max(5, Math.ceil(m / (threads * 8) / 5) * 5), [...args, ...rowStarts]);
    } else {
      convRowStarts(new Int32Array(heapBuffer(backend), table, m), 0, ...rowStarts);
      loops.convProduct(...args);
    }
  });
  if (!unpadded) dispose(backend, padded);
  return out;
}

/** The threads convProduct runs on for this convolution: the pool's where it is large enough to pay, else 1. */
export function convThreads(backend: BackendWasm, info: tf.backend_util.Conv2DInfo): number {
  const macs = info.batchSize * info.outHeight * info.outWidth * info.outChannels * info.filterHeight * info.filterWidth * info.inChannels;
  return macs >= MIN_THREADED_MACS ? poolThreads(backend) : 1;
}

/**
 * FusedConv2D without bias or activation (a convolution before a batch norm) on conv.wat's product; anything else on
 * wasm's own (XNNPACK) kernel.
 */
export function makeFusedConv2DConfig(original: tf.KernelConfig): tf.KernelConfig {
  const fusedConv2D = (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) => {
    const backend = args.backend as BackendWasm;
    const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined>;
    const attrs = (args.attrs ?? {}) as unknown as tf.FusedConv2DAttrs;
    let out: tf.TensorInfo | undefined;
    if (x && filter && !bias && !preluActivationWeights && (attrs.activation ?? "linear") === "linear") {
      out = convProduct(backend, x, filter, conv2DInfoOf(x, filter, attrs));
    }
    return out ?? original.kernelFunc(args as Parameters<tf.KernelFunc>[0]);
  };
  return {
    kernelName: tf.FusedConv2D,
    backendName: "wasm",
    setupFunc: original.setupFunc,
    kernelFunc: fusedConv2D as tf.KernelFunc,
  };
}
