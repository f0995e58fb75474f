import * as path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { heapBuffer, pointer } from "./simd";
import { threadsNow } from "./threads";
import { dispose, sliceInfo } from "./util";
import { DONE, FAILED, READY, openSlot, waitForWorkers, workerPool, workersReady } from "./worker-pool";

/**
 * tfjs's own (XNNPACK) FusedConv2D, the inference convolution, with the batch split between this thread and worker
 * threads that each run tfjs's wasm backend of their own: XNNPACK computes every output pixel alone, so a part of
 * the batch gives the same bits as the whole (checked by test/kernel-threads.test.ts). A worker's images and output
 * cross in a SharedArrayBuffer. Until the workers' backends are ready (they start at the first large convolution),
 * and for small convolutions, the kernel runs whole on this thread.
 */

/** Multiply-adds below which the kernel runs whole: the copies cost about as much as a thread saves. */
export const MIN_SPLIT_MACS = 1 << 28;

// Each job: x's images (the worker's part), filter, bias and prelu weights as Float32Array views of `data`, the output
// written to `data` at outOffset.
const WORKER_SOURCE = `
const { workerData, parentPort } = require("node:worker_threads");
const { corePath, wasmPath, control, slot } = workerData;
const ctrl = new Int32Array(control);
const tf = require(corePath);
require(wasmPath);
tf.setBackend("wasm")
  .then((ok) => Atomics.store(ctrl, slot + ${READY}, ok ? 1 : -1))
  .catch(() => Atomics.store(ctrl, slot + ${READY}, -1));
parentPort.on("message", (job) => {
  try {
    const inputs = {};
    for (const [name, view] of Object.entries(job.inputs)) inputs[name] = tf.tensor(new Float32Array(view.data, view.offset, view.size), view.shape, "float32");
    const out = tf.engine().runKernel(job.kernel, inputs, job.attrs);
    new Float32Array(job.data, job.outOffset, out.size).set(out.dataSync());
    tf.dispose([out, ...Object.values(inputs)]);
  } catch (err) {
    Atomics.store(ctrl, slot + ${FAILED}, 1);
  }
  Atomics.store(ctrl, slot + ${DONE}, 1);
  Atomics.notify(ctrl, slot + ${DONE});
});
`;

const workers = workerPool(WORKER_SOURCE, () => {
  const wasmPath = require.resolve("@tensorflow/tfjs-backend-wasm");
  return { wasmPath, corePath: require.resolve("@tensorflow/tfjs-core", { paths: [path.dirname(wasmPath)] }) };
});

let convolutionsSplit = 0;
/** How many convolutions ran split so far (tests check that the split path did run). */
export function splitConvolutions(): number {
  return convolutionsSplit;
}

/** Whether the workers for the current thread count have their backends up (starting them if need be). */
export function splitWorkersReady(): boolean {
  const p = workers.current();
  return p !== undefined && workersReady(p);
}

/**
 * Start the workers for the current thread count, if any, and wait until their backends are up (at most `timeoutMs`),
 * so that a timing that follows measures the split kernel from its first batch.
 */
export const whenSplitWorkersReady = (timeoutMs?: number) => workers.whenReady(timeoutMs);

/** `count` floats of a tensor on tfjs's heap from float `first` on, as bytes. */
function bytesOf(backend: BackendWasm, info: tf.TensorInfo, first = 0, count = tf.util.sizeFromShape(info.shape)): Uint8Array {
  return new Uint8Array(heapBuffer(backend), pointer(backend, info) + first * 4, count * 4);
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

/** tfjs's FusedConv2D (`original`) with the batch split between the threads where that pays. */
export function makeSplitFusedConv2DConfig(original: tf.KernelConfig): tf.KernelConfig {
  const whole = (args: KernelArgs) => original.kernelFunc(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
  const fusedConv2D = (args: KernelArgs) => {
    const backend = args.backend as BackendWasm;
    const { x, filter } = args.inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
    const attrs = (args.attrs ?? {}) as unknown as tf.FusedConv2DAttrs;
    if (threadsNow() <= 1 || (attrs.dataFormat ?? "NHWC") !== "NHWC") return whole(args);
    // The inputs given (bias and preluActivationWeights are optional: undefined when absent).
    const given = Object.entries(args.inputs as Record<string, tf.TensorInfo | undefined>).filter((e): e is [string, tf.TensorInfo] => e[1] !== undefined);
    if (given.some(([, t]) => t.dtype !== "float32")) return whole(args);
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      filter.shape as [number, number, number, number],
      attrs.strides,
      attrs.dilations ?? 1,
      attrs.pad as "valid",
      attrs.dimRoundingMode,
    );
    const perImage = info.outHeight * info.outWidth * info.outChannels;
    const p = workers.current();
    const threads = p ? p.workers.length + 1 : 1;
    const batch = x.shape[0];
    if (!p || batch < threads || batch * perImage * info.filterHeight * info.filterWidth * info.inChannels < MIN_SPLIT_MACS) return whole(args);
    if (!workersReady(p)) return whole(args);
    convolutionsSplit++;
    const inImage = tf.util.sizeFromShape(x.shape.slice(1));
    const cuts = Array.from({ length: threads + 1 }, (_, i) => Math.round((batch * i) / threads));
    // Worker i: images cuts[i]..cuts[i + 1] − 1, its inputs then its output in its SharedArrayBuffer.
    const outOffsets = p.workers.map((worker, i) => {
      const images = cuts[i + 1] - cuts[i];
      const parts = given.map(([name, t]) => ({
        name,
        bytes: t === x ? bytesOf(backend, t, cuts[i] * inImage, images * inImage) : bytesOf(backend, t),
        shape: t === x ? [images, ...x.shape.slice(1)] : t.shape,
      }));
      const outOffset = parts.reduce((sum, part) => sum + part.bytes.byteLength, 0);
      const needed = outOffset + images * perImage * 4;
      if (p.data[i].byteLength < needed) p.data[i] = new SharedArrayBuffer(needed);
      const data = p.data[i];
      const inputs: Record<string, { data: SharedArrayBuffer; offset: number; size: number; shape: number[] }> = {};
      let offset = 0;
      for (const part of parts) {
        new Uint8Array(data, offset, part.bytes.byteLength).set(part.bytes);
        inputs[part.name] = { data, offset, size: part.bytes.byteLength / 4, shape: part.shape };
        offset += part.bytes.byteLength;
      }
      openSlot(p, i);
      worker.postMessage({ kernel: original.kernelName, inputs, attrs: args.attrs ?? {}, data, outOffset });
      return outOffset;
    });
    const mine = cuts[threads - 1];
    const xMine = sliceInfo(backend, x, [mine, 0, 0, 0], [batch - mine, ...x.shape.slice(1)]);
    const part = whole({ ...args, inputs: { ...args.inputs, x: xMine } });
    dispose(backend, xMine);
    if (waitForWorkers(p)) {
      dispose(backend, part);
      workers.stop();
      return whole(args);
    }
    const out = backend.makeOutput([batch, ...part.shape.slice(1)], "float32");
    const heap = new Uint8Array(heapBuffer(backend));
    const at = pointer(backend, out);
    p.workers.forEach((_, i) => heap.set(new Uint8Array(p.data[i], outOffsets[i], (cuts[i + 1] - cuts[i]) * perImage * 4), at + cuts[i] * perImage * 4));
    heap.set(bytesOf(backend, part), at + mine * perImage * 4);
    dispose(backend, part);
    return out;
  };
  return { ...original, kernelFunc: fusedConv2D as tf.KernelFunc };
}
