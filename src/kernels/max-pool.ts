import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { pointer, simdLoops } from "./simd";
import { POOL_IMAGES } from "./thread-jobs";
import { MIN_THREADED_FLOATS, poolThreads, runJob, unitsPerClaim } from "./threads";
import { dispose, pool2DInfoOf } from "./util";

/**
 * MaxPool: a 2×2, stride-2, unpadded pool (the paper CNN's) on simd.wat's maxPool2x2, which takes XNNPACK's maximum in
 * XNNPACK's order (about 2.5× faster than XNNPACK's kernel on one thread), with images split between the kernel threads;
 * anything else on wasm's own (XNNPACK) kernel. XNNPACK picks its maximum by CPU (wasm's pmax on x86, max elsewhere;
 * NaN and ±0 tell them apart), so the loop is used only where it gives wasm's own bits on windows of every mix of ±0,
 * NaN, 1 and −1, checked once per backend.
 */
export function makeMaxPoolConfig(original: tf.KernelConfig): tf.KernelConfig {
  const whole = (args: KernelArgs) => original.kernelFunc(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
  const maxPool = (args: KernelArgs) => {
    const backend = args.backend as BackendWasm;
    const { x } = args.inputs as { x: tf.TensorInfo };
    const attrs = (args.attrs ?? {}) as unknown as tf.MaxPoolAttrs;
    const info = pool2DInfoOf(x, attrs);
    const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, padInfo } = info;
    const plainTiles =
      [info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth].every((v) => v === 2) &&
      padInfo.top + padInfo.left + padInfo.bottom + padInfo.right === 0 &&
      inChannels % 4 === 0 &&
      x.dtype === "float32";
    const simd = simdLoops(backend);
    if (!plainTiles || !simd || !givesXnnpackBits(backend, whole)) return whole(args);
    const threads = batchSize > 1 && tf.util.sizeFromShape(x.shape) >= MIN_THREADED_FLOATS ? poolThreads(backend) : 1;
    const y = backend.makeOutput([batchSize, outHeight, outWidth, inChannels], "float32");
    const [px, py] = [pointer(backend, x), pointer(backend, y)];
    if (threads > 1) runJob(POOL_IMAGES, batchSize, unitsPerClaim(batchSize, threads), [px, py, inHeight, inWidth, inChannels, outHeight, outWidth]);
    else simd.maxPool2x2(px, py, batchSize, inHeight, inWidth, inChannels, outHeight, outWidth);
    return y;
  };
  return { ...original, kernelFunc: maxPool as tf.KernelFunc };
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

const checked = new WeakMap<BackendWasm, boolean>();

/** Whether maxPool2x2 gives wasm's own kernel's bits on every 2×2 window of ±0, NaN, 1 and −1 (625 windows, 4 channels). */
function givesXnnpackBits(backend: BackendWasm, whole: (args: KernelArgs) => tf.TensorInfo): boolean {
  let same = checked.get(backend);
  if (same !== undefined) return same;
  const simd = simdLoops(backend);
  const values = [0, -0, NaN, 1, -1];
  const windows = values.flatMap((a) => values.flatMap((b) => values.flatMap((c) => values.map((d) => [a, b, c, d]))));
  const n = windows.length;
  // One image of 2 rows × 2n columns: window k is columns 2k, 2k + 1, (a, b) above (c, d).
  const image = new Float32Array(4 * n * 4);
  windows.forEach(([a, b, c, d], k) => {
    [a, b].forEach((v, col) => image.fill(v, (2 * k + col) * 4, (2 * k + col + 1) * 4));
    [c, d].forEach((v, col) => image.fill(v, (2 * n + 2 * k + col) * 4, (2 * n + 2 * k + col + 1) * 4));
  });
  const x = backend.makeOutput([1, 2, 2 * n, 4], "float32", undefined, image);
  const attrs = { filterSize: 2, strides: 2, pad: "valid", dimRoundingMode: undefined } as unknown as tf.NamedAttrMap;
  const theirs = whole({ inputs: { x }, backend, attrs });
  const ours = backend.makeOutput([1, 1, n, 4], "float32");
  if (simd) simd.maxPool2x2(pointer(backend, x), pointer(backend, ours), 1, 2, 2 * n, 4, 1, n);
  const bits = (t: tf.TensorInfo) => new Uint32Array((backend.readSync(t.dataId) as Float32Array).buffer);
  const [a, b] = [bits(theirs), bits(ours)];
  same = simd !== undefined && a.length === b.length && a.every((v, i) => v === b[i]);
  dispose(backend, x, theirs, ours);
  checked.set(backend, same);
  return same;
}
