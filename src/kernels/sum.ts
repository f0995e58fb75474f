import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { normLoops } from "./batch-norm-grad";
import { heapBuffer, pointer, simdLoops, withScratch } from "./simd";

/**
 * Sum (or Mean) over the leading axes of a float32 tensor (bias gradients and batch norm's statistics:
 * [b,h,w,c] → [c]) as one pass over the wasm heap (a SIMD loop, norm.wat's blocked one, when the columns come in fours),
 * summing in float64; wasm's own kernels transpose first and are ~5× slower. Every other case uses wasm's kernel.
 */
export function makeSumConfig(original: tf.KernelConfig): tf.KernelConfig {
  return makeLeadingReduceConfig(original, false);
}

export function makeMeanConfig(original: tf.KernelConfig): tf.KernelConfig {
  return makeLeadingReduceConfig(original, true);
}

function makeLeadingReduceConfig(original: tf.KernelConfig, mean: boolean): tf.KernelConfig {
  const sum = (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) => {
    const backend = args.backend as BackendWasm;
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { axis, keepDims } = (args.attrs ?? {}) as unknown as tf.SumAttrs;
    const rank = x.shape.length;
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
    const leading = axes.length > 0 && axes.length < rank && axes.every((a, i) => a === i);
    if (x.dtype !== "float32" || !leading) return original.kernelFunc(args as Parameters<tf.KernelFunc>[0]);
    const kept = x.shape.slice(axes.length);
    const columns = tf.util.sizeFromShape(kept);
    const rows = tf.util.sizeFromShape(x.shape) / columns;
    const outShape = keepDims ? [...axes.map(() => 1), ...kept] : kept;
    const out = backend.makeOutput(outShape, "float32");
    const simd = simdLoops(backend);
    if (simd && columns % 4 === 0) {
      withScratch(backend, columns * 8, (acc) => {
        const heap = heapBuffer(backend);
        new Float64Array(heap, acc, columns).fill(0);
        const norm = normLoops(backend);
        if (norm) norm.sumRowsF64Blocked(pointer(backend, x), acc, rows, columns * 4);
        else simd.sumRowsF64(pointer(backend, x), acc, rows, columns);
        const sums = new Float64Array(heap, acc, columns);
        if (mean) for (let c = 0; c < columns; c++) sums[c] /= rows;
        (backend.typedArrayFromHeap(out) as Float32Array).set(sums);
      });
      return out;
    }
    const src = backend.typedArrayFromHeap(x) as Float32Array;
    const acc = new Float64Array(columns);
    let r = 0;
    for (; r + 4 <= rows; r += 4) {
      const b0 = r * columns;
      const b1 = b0 + columns;
      const b2 = b1 + columns;
      const b3 = b2 + columns;
      for (let c = 0; c < columns; c++) acc[c] += src[b0 + c] + src[b1 + c] + (src[b2 + c] + src[b3 + c]);
    }
    for (; r < rows; r++) {
      const base = r * columns;
      for (let c = 0; c < columns; c++) acc[c] += src[base + c];
    }
    if (mean) for (let c = 0; c < columns; c++) acc[c] /= rows;
    (backend.typedArrayFromHeap(out) as Float32Array).set(acc);
    return out;
  };
  return { kernelName: mean ? tf.Mean : tf.Sum, backendName: "wasm", setupFunc: original.setupFunc, kernelFunc: sum as tf.KernelFunc };
}
