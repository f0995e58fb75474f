import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { convProduct, convThreads } from "./fused-conv2d";
import { relaxedConv2D } from "./gemm";
import { conv2DInfoOf } from "./util";

/**
 * Conv2D as one relaxed-SIMD product read in place from x (gemm.ts), where that is available and the convolution
 * fits it (valid padding, dilation 1, output channels in 8s, at least 32 floats per filter row); else, where the kernel
 * threads would share it (a first layer's few input channels), conv.wat's product, which gives XNNPACK's bits
 * (fused-conv2d.ts); otherwise wasm's own (XNNPACK) kernel.
 */
export function makeConv2DConfig(original: tf.KernelConfig): tf.KernelConfig {
  const conv2D = (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) => {
    const backend = args.backend as BackendWasm;
    const { x, filter } = args.inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
    const attrs = (args.attrs ?? {}) as unknown as tf.Conv2DAttrs;
    const info = conv2DInfoOf(x, filter, attrs);
    const threaded = () => (convThreads(backend, info) > 1 ? convProduct(backend, x, filter, info) : undefined);
    return relaxedConv2D(backend, x, filter, info) ?? threaded() ?? original.kernelFunc(args as Parameters<tf.KernelFunc>[0]);
  };
  return {
    kernelName: tf.Conv2D,
    backendName: "wasm",
    setupFunc: original.setupFunc,
    kernelFunc: conv2D as tf.KernelFunc,
  };
}
