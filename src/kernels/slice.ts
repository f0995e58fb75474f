import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { heapBuffer, pointer } from "./simd";

const COPIED_DTYPES: readonly tf.DataType[] = ["float32", "int32", "bool"];

/**
 * A slice whose elements lie in one run of its input (a batch of examples cut from a dataset, say) copied within the
 * wasm heap. tfjs's own kernel first reads the whole input out of the heap into JavaScript (a 31 MB test set for every
 * batch of 1,000 cut from it); other slices still go to it.
 */
export function makeSliceConfig(original: tf.KernelConfig): tf.KernelConfig {
  const slice = (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) => {
    const backend = args.backend as BackendWasm;
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { begin, size } = (args.attrs ?? {}) as unknown as tf.SliceAttrs;
    const [start, extent] = tf.slice_util.parseSliceParams(x, begin, size);
    if (!COPIED_DTYPES.includes(x.dtype) || !tf.slice_util.isSliceContinous(x.shape, start, extent)) {
      return original.kernelFunc(args as Parameters<tf.KernelFunc>[0]);
    }
    const out = backend.makeOutput(extent, x.dtype);
    const bytes = tf.util.sizeFromShape(extent) * tf.util.bytesPerElement(x.dtype);
    if (bytes === 0) return out;
    const from = pointer(backend, x) + tf.slice_util.computeFlatOffset(start, tf.util.computeStrides(x.shape)) * tf.util.bytesPerElement(x.dtype);
    new Uint8Array(heapBuffer(backend)).copyWithin(pointer(backend, out), from, from + bytes); // after makeOutput: it may grow the heap
    return out;
  };
  return { kernelName: tf.Slice, backendName: "wasm", setupFunc: original.setupFunc, kernelFunc: slice as tf.KernelFunc };
}
