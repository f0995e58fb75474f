import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";

/**
 * Identity shares the input's memory (one more reference) instead of copying it, as the cpu backend
 * does; wasm kernels never write into their inputs, so sharing is safe. The gradient tape calls it often.
 */
function identity(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x } = args.inputs as { x: tf.TensorInfo };
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

export function makeIdentityConfig(original: tf.KernelConfig): tf.KernelConfig {
  return { kernelName: tf.Identity, backendName: "wasm", setupFunc: original.setupFunc, kernelFunc: identity as tf.KernelFunc };
}

/** Cast to the dtype a tensor already has shares it too (the Relu gradient casts its float32 step mask). */
export function makeCastConfig(original: tf.KernelConfig): tf.KernelConfig {
  const cast = (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { dtype } = (args.attrs ?? {}) as unknown as tf.CastAttrs;
    if (x.dtype === dtype) return identity(args);
    return original.kernelFunc(args as Parameters<tf.KernelFunc>[0]);
  };
  return { kernelName: tf.Cast, backendName: "wasm", setupFunc: original.setupFunc, kernelFunc: cast as tf.KernelFunc };
}
