import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";

/**
 * Tile as block copies over the wasm heap: each input row is copied once, then every filled block is repeated
 * along its axis by doubling copies (copyWithin). Batch norm's gradient tiles per-channel vectors to the whole
 * activation; wasm's own kernel computes every output index apart and is ~20× slower there. Other dtypes than
 * float32 and int32 use wasm's kernel.
 */
export function makeTileConfig(original: tf.KernelConfig): tf.KernelConfig {
  const tile = (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) => {
    const backend = args.backend as BackendWasm;
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { reps } = (args.attrs ?? {}) as unknown as tf.TileAttrs;
    const rank = x.shape.length;
    if ((x.dtype !== "float32" && x.dtype !== "int32") || rank === 0 || reps.length !== rank) {
      return original.kernelFunc(args as Parameters<tf.KernelFunc>[0]);
    }
    const outShape = x.shape.map((d, i) => d * reps[i]);
    const out = backend.makeOutput(outShape, x.dtype);
    if (tf.util.sizeFromShape(outShape) === 0) return out;
    const src = backend.typedArrayFromHeap(x) as Float32Array | Int32Array;
    const dst = backend.typedArrayFromHeap(out) as Float32Array | Int32Array;
    // outStride[a]: elements of one step along axis a of the output; inStride likewise for the input.
    const outStride = new Array<number>(rank).fill(1);
    const inStride = new Array<number>(rank).fill(1);
    for (let a = rank - 2; a >= 0; a--) {
      outStride[a] = outStride[a + 1] * outShape[a + 1];
      inStride[a] = inStride[a + 1] * x.shape[a + 1];
    }
    const repeat = (at: number, block: number, times: number) => {
      for (let filled = block; filled < block * times; filled *= 2) {
        dst.copyWithin(at + filled, at, at + Math.min(filled, block * times - filled));
      }
    };
    const fill = (outAt: number, inAt: number, axis: number) => {
      const n = x.shape[axis];
      if (axis === rank - 1) {
        dst.set(src.subarray(inAt, inAt + n), outAt);
      } else {
        for (let i = 0; i < n; i++) fill(outAt + i * outStride[axis], inAt + i * inStride[axis], axis + 1);
      }
      repeat(outAt, n * outStride[axis], reps[axis]);
    };
    fill(0, 0, 0);
    return out;
  };
  return { kernelName: tf.Tile, backendName: "wasm", setupFunc: original.setupFunc, kernelFunc: tile as tf.KernelFunc };
}
