import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { relaxedMatMul, threadedMatMulTransposedB } from "./gemm";
import { dispose, transposeInfo } from "./util";

/**
 * wasm's BatchMatMul is fast (XNNPACK) only without transposes; with transposeA or transposeB it runs
 * plain loops (~10× slower). Transpose an operand explicitly instead (cheap next to the product). XNNPACK also
 * repacks b on every call with a new b, so for A·Bᵀ with a large B (a dense layer's input gradient dy·Wᵀ)
 * it computes (B·Aᵀ)ᵀ: only the small A and the product are transposed, and B is used as it lies. Where relaxed
 * SIMD is available, the products whose output has columns in 8s run on gemm.ts's fused multiply-add instead; on the
 * kernel threads, A·Bᵀ with fewer rows than columns runs as it is, B's panels packed from B.
 */
export function makeBatchMatMulConfig(original: tf.KernelConfig): tf.KernelConfig {
  const batchMatMul = (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) => {
    const backend = args.backend as BackendWasm;
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = (args.attrs ?? {}) as unknown as tf.BatchMatMulAttrs;
    const plain = (x: tf.TensorInfo, y: tf.TensorInfo) =>
      relaxedMatMul(backend, x, y) ??
      (original.kernelFunc({ inputs: { a: x, b: y }, backend, attrs: { transposeA: false, transposeB: false } }) as tf.TensorInfo);
    if (!transposeA && !transposeB) return plain(a, b);
    const swapLast = (t: tf.TensorInfo) => {
      const perm = t.shape.map((_, i) => i);
      perm.push(...perm.splice(-2).reverse());
      return transposeInfo(backend, t, perm);
    };
    if (!transposeA && a.shape.length === 2 && b.shape.length === 2) {
      const [m, k] = a.shape;
      const n = b.shape[0];
      const swapped = m * k + m * n < n * k;
      // Where one thread's (B·Aᵀ)ᵀ is gemm.ts's product too (its output has columns in 8s), and so gives these bits.
      const direct = !swapped || m % 8 === 0 ? threadedMatMulTransposedB(backend, a, b) : undefined;
      if (direct) return direct;
      if (swapped) {
        const aT = swapLast(a);
        const productT = plain(b, aT);
        dispose(backend, aT);
        const product = swapLast(productT);
        dispose(backend, productT);
        return product;
      }
    }
    const aa = transposeA ? swapLast(a) : a;
    const bb = transposeB ? swapLast(b) : b;
    const out = plain(aa, bb);
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
