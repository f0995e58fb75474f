import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { pointer, simdLoops } from "./simd";

/**
 * Transpose: float32 matrices' last two axes swapped (perm [1, 0], or [0, …, n − 1, n − 2] for a batch of matrices:
 * BatchMatMul's transposed operands, a dense layer's input for its weight gradient) on simd.wat's transpose2D, a
 * matrix at a time in 4×4 blocks; anything else on wasm's own kernel. On the paper CNN's [128, 1600] it took 0.10 ms
 * against wasm's 0.78 ms. Values are only moved, so the bits are wasm's own.
 */
export function makeTransposeConfig(original: tf.KernelConfig): tf.KernelConfig {
  const transpose = (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) => {
    const backend = args.backend as BackendWasm;
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { perm } = (args.attrs ?? {}) as unknown as tf.TransposeAttrs;
    const simd = simdLoops(backend);
    const size = tf.util.sizeFromShape(x.shape);
    if (!simd || x.dtype !== "float32" || size === 0 || !swapsLastTwo(perm)) return original.kernelFunc(args as Parameters<tf.KernelFunc>[0]);
    const [rows, cols] = x.shape.slice(-2);
    const shape = perm.map((p) => x.shape[p]);
    const y = backend.makeOutput(shape, "float32");
    const [px, py] = [pointer(backend, x), pointer(backend, y)];
    for (let at = 0; at < size * 4; at += rows * cols * 4) simd.transpose2D(px + at, py + at, rows, cols);
    return y;
  };
  return { ...original, kernelFunc: transpose as tf.KernelFunc };
}

/** Whether `perm` keeps every axis but the last two, which it swaps. */
export function swapsLastTwo(perm: number[]): boolean {
  const n = perm.length;
  return n >= 2 && perm[n - 2] === n - 1 && perm[n - 1] === n - 2 && perm.slice(0, -2).every((p, i) => p === i);
}
