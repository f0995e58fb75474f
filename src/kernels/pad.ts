import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { convLoops } from "./fused-conv2d";
import { heapBuffer, pointer } from "./simd";

/**
 * PadV2 with zeros around one dimension or two adjacent ones (a convolution's zero padding of H and W) as row copies
 * into a zeroed output (conv.wat's copyRows), instead of wasm's own kernel, which goes element by element (~4 ms for
 * a 64×28×28×16 batch here). Moves values only: the same bits. Anything else on wasm's own kernel.
 */
export function zeroPad(backend: BackendWasm, x: tf.TensorInfo, paddings: [number, number][]): tf.TensorInfo | undefined {
  const loops = convLoops(backend);
  const shape = x.shape;
  if (!loops || x.dtype !== "float32" || paddings.length !== shape.length || shape.some((d) => d === 0)) return undefined;
  if (paddings.some(([before, after]) => !Number.isInteger(before) || !Number.isInteger(after) || before < 0 || after < 0)) return undefined;
  const padded = paddings.flatMap(([before, after], d) => (before + after > 0 ? [d] : []));
  if (padded.length === 0 || padded.length > 2 || padded[padded.length - 1] - padded[0] > 1) return undefined;
  const [first, last] = [padded[0], padded[padded.length - 1]];
  const outShape = shape.map((d, i) => d + paddings[i][0] + paddings[i][1]);
  const size = (dims: number[]) => dims.reduce((p, d) => p * d, 1);
  const outer = size(shape.slice(0, first));
  const inner = size(shape.slice(last + 1));
  // Rows: the padded dimension's (or the first of two's) runs; a row: the last padded dimension times the inner ones.
  const rows = first === last ? 1 : shape[first];
  const rowLen = shape[last] * inner;
  const outRowFloats = outShape[last] * inner;
  const outOuterFloats = first === last ? outRowFloats : outShape[first] * outRowFloats;
  const start = first === last ? paddings[first][0] * inner : paddings[first][0] * outRowFloats + paddings[last][0] * inner;
  const out = backend.makeOutput(outShape, "float32");
  const [px, po] = [pointer(backend, x), pointer(backend, out)];
  new Float32Array(heapBuffer(backend), po, size(outShape)).fill(0);
  loops.copyRows(px, po + start * 4, outer, rows, rowLen, outRowFloats * 4, outOuterFloats * 4);
  return out;
}

export function makePadV2Config(original: tf.KernelConfig): tf.KernelConfig {
  const padV2 = (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { paddings, constantValue } = (args.attrs ?? {}) as unknown as tf.PadV2Attrs;
    const out = constantValue === 0 ? zeroPad(args.backend as BackendWasm, x, paddings) : undefined;
    return out ?? original.kernelFunc(args as Parameters<tf.KernelFunc>[0]);
  };
  return { kernelName: tf.PadV2, backendName: "wasm", setupFunc: original.setupFunc, kernelFunc: padV2 as tf.KernelFunc };
}
