import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";

export type Pad = "valid" | "same" | number | tf.backend_util.ExplicitPadding;

/** Run another wasm kernel directly (inside a kernelFunc, where tf ops must not be used). */
export function callKernel(kernelName: string, backend: BackendWasm, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap = {}): tf.TensorInfo {
  const config = tf.getKernel(kernelName, "wasm");
  if (!config) throw new Error(`wasm kernel ${kernelName} is not registered`);
  return config.kernelFunc({ inputs, backend, attrs }) as tf.TensorInfo;
}

/** The Conv2DInfo of a Conv2D or FusedConv2D kernel call (x, filter and its attributes). */
export function conv2DInfoOf(x: tf.TensorInfo, filter: tf.TensorInfo, attrs: tf.Conv2DAttrs): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad as Pad,
    attrs.dimRoundingMode,
    false,
    tf.backend_util.convertConv2DDataFormat(attrs.dataFormat ?? "NHWC"),
  );
}

/** A max pool's geometry from its input and attributes (MaxPool's, MaxPoolGrad's), dilation 1. */
export function pool2DInfoOf(x: tf.TensorInfo, attrs: tf.MaxPoolAttrs | tf.MaxPoolGradAttrs): tf.backend_util.Conv2DInfo {
  const shape = x.shape as [number, number, number, number];
  return tf.backend_util.computePool2DInfo(shape, attrs.filterSize, attrs.strides, 1, attrs.pad as Pad, attrs.dimRoundingMode);
}

export function transposeInfo(backend: BackendWasm, x: tf.TensorInfo, perm: number[]): tf.TensorInfo {
  return callKernel("Transpose", backend, { x }, { perm });
}

export function sliceInfo(backend: BackendWasm, x: tf.TensorInfo, begin: number[], size: number[]): tf.TensorInfo {
  return callKernel("Slice", backend, { x }, { begin, size });
}

export function dispose(backend: BackendWasm, ...infos: tf.TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

/** Reject attributes the wasm gradient kernels do not implement, naming the attribute and value. */
export function checkNhwc(kernelName: string, attrs: { dataFormat?: string; dilations?: unknown }): void {
  if (attrs.dataFormat !== undefined && attrs.dataFormat !== "NHWC") {
    throw new Error(`${kernelName} on wasm: dataFormat "${attrs.dataFormat}" is not supported; expected "NHWC"`);
  }
  const dilations = attrs.dilations;
  if (dilations !== undefined && dilations !== null) {
    const list = Array.isArray(dilations) ? dilations : [dilations];
    if (list.some((d) => d !== 1)) {
      throw new Error(`${kernelName} on wasm: dilations ${JSON.stringify(dilations)} are not supported; expected 1`);
    }
  }
}

/** Replace whatever kernel `kernelName` has on wasm with `config`. */
export function overrideWasmKernel(config: tf.KernelConfig): void {
  if (tf.getKernel(config.kernelName, "wasm")) tf.unregisterKernel(config.kernelName, "wasm");
  tf.registerKernel(config);
}
