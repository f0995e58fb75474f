import * as tf from "@tensorflow/tfjs";
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
