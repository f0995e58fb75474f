import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { dispose, transposeInfo } from "./util";

/**
 * wasm's BatchMatMul is fast (XNNPACK) only without transposes; with transposeA or transposeB it runs
 * plain loops (~10× slower). Transpose the operand explicitly instead (cheap next to the product).
 */
export function makeBatchMatMulConfig(original: tf.KernelConfig): tf.KernelConfig {
  const batchMatMul = (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) => {
    const backend = args.backend as BackendWasm;
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = (args.attrs ?? {}) as unknown as tf.BatchMatMulAttrs;
    if (!transposeA && !transposeB) return original.kernelFunc(args as Parameters<tf.KernelFunc>[0]);
    const swapLast = (t: tf.TensorInfo) => {
      const perm = t.shape.map((_, i) => i);
      perm.push(...perm.splice(-2).reverse());
      return transposeInfo(backend, t, perm);
    };
    const aa = transposeA ? swapLast(a) : a;
    const bb = transposeB ? swapLast(b) : b;
    const out = original.kernelFunc({
      inputs: { a: aa, b: bb },
      backend,
      attrs: { transposeA: false, transposeB: false },
    }) as tf.TensorInfo;
    if (aa !== a) dispose(backend, aa);
    if (bb !== b) dispose(backend, bb);
    return out;
  };
  return {
    kernelName: tf.BatchMatMul,
    backendName: "wasm",
    setupFunc: original.setupFunc,
    kernelFunc: batchMatMul as tf.KernelFunc,
  };
}
