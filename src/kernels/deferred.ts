import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { MOMENTUM_STEP } from "./momentum";
import { heapBuffer, pointer } from "./simd";
import { anyDeferred, finishDeferred, isDeferred, postponeDisposal } from "./threads";
import { overrideWasmKernel } from "./util";

/**
 * A job deferred to the kernel threads (threads.ts's deferJob: a convolution's filter gradient product, which a training
 * step needs only at the optimizer) writes its output while this thread goes on; the optimizer's update of that
 * variable waits for it too (continueDeferred), possibly into the next step. Nothing may see that data before it is
 * done, nor free it: every wasm kernel joins the job first where one of its inputs is the job's data (guardKernels),
 * and so do the backend's reads of it; its disposals wait for the job (guardDeferredData).
 */

/** Kernels that take a deferred job's data themselves (momentum.ts's update leaves its work until the job is done). */
const TAKE_DEFERRED = new Set([MOMENTUM_STEP]);

/** `config` with a kernel that first joins a deferred job whose data it takes. */
export function guarded(config: tf.KernelConfig): tf.KernelConfig {
  if (TAKE_DEFERRED.has(config.kernelName)) return config;
  const inner = config.kernelFunc;
  const kernelFunc: tf.KernelFunc = (args) => {
    if (!anyDeferred()) return inner(args);
    for (const input of Object.values(args.inputs)) {
      if (input && isDeferred(input.dataId)) {
        finishDeferred();
        break;
      }
    }
    return inner(args);
  };
  return { ...config, kernelFunc };
}

/** Guard every kernel registered for wasm so far (kernels registered later: guarded at their registration). */
export function guardKernels(): void {
  for (const config of tf.getKernelsForBackend("wasm")) overrideWasmKernel(guarded(config));
}

const guardedBackends = new WeakSet<BackendWasm>();

/**
 * The backend's reads join a deferred job whose data they read; a disposal that would free its memory waits until the
 * job is done; disposing the backend joins it (set up once per backend).
 */
export function guardDeferredData(backend: BackendWasm): void {
  if (guardedBackends.has(backend)) return;
  guardedBackends.add(backend);
  const methods = backend as unknown as Record<"readSync" | "read", (dataId: object, ...rest: unknown[]) => unknown>;
  for (const name of ["readSync", "read"] as const) {
    const original = methods[name].bind(backend);
    methods[name] = (dataId, ...rest) => {
      if (isDeferred(dataId)) finishDeferred();
      return original(dataId, ...rest);
    };
  }
  const disposeData = backend.disposeData.bind(backend);
  backend.disposeData = (dataId: object, force = false) => {
    // Only the last reference frees the memory; an earlier one just counts down.
    const last = force || backend.refCount(dataId) <= 1;
    if (last && postponeDisposal(dataId, () => disposeData(dataId, force))) return true;
    return disposeData(dataId, force);
  };
  // The work and disposals left for a job run on this backend's heap: before it goes away.
  const dispose = backend.dispose.bind(backend);
  backend.dispose = () => {
    finishDeferred();
    dispose();
  };
}

/**
 * A float32 tensor's values (on the current backend) copied into `out`, without the fresh array dataSync() returns (on
 * wasm, straight from tfjs's heap, once a deferred job writing them is done): where a loop reads a large tensor each
 * iteration, a fresh array's pages cost more than the copy.
 */
export function readFloatsInto(t: tf.Tensor, out: Float32Array): Float32Array {
  if (t.dtype !== "float32" || t.size !== out.length)
    throw new Error(`readFloatsInto: a float32 tensor of ${out.length} values expected, got ${t.dtype} of ${t.size}`);
  if (tf.getBackend() !== "wasm") {
    out.set(t.dataSync() as Float32Array);
    return out;
  }
  const backend = tf.backend() as BackendWasm;
  if (isDeferred(t.dataId)) finishDeferred();
  out.set(new Float32Array(heapBuffer(backend), pointer(backend, t), t.size));
  return out;
}

/**
 * A float32 tensor of `shape` whose values `fill` writes into the array it is handed (pure JavaScript: no tfjs call
 * inside). On wasm that array is the tensor's own memory on tfjs's heap, so no fresh array is made and copied in.
 */
export function filledTensor(shape: number[], fill: (values: Float32Array) => void): tf.Tensor {
  const size = tf.util.sizeFromShape(shape);
  if (tf.getBackend() !== "wasm") {
    const values = new Float32Array(size);
    fill(values);
    return tf.tensor(values, shape, "float32");
  }
  const backend = tf.backend() as BackendWasm;
  const out = backend.makeOutput(shape, "float32");
  try {
    fill(new Float32Array(heapBuffer(backend), pointer(backend, out), size)); // after makeOutput: it may grow the heap
  } catch (err) {
    backend.disposeData(out.dataId);
    throw err;
  }
  return tf.engine().makeTensorFromTensorInfo(out);
}

/**
 * The values of the tensor that `run` makes (inside tf.tidy), read after the tidy and the tensor then disposed: a typed
 * array returned from tf.tidy is walked entry by entry (0.6–2 ms for a batch of 1000's logits), which timings counted.
 */
export function valuesOf(run: () => tf.Tensor): Float32Array {
  const out = tf.tidy(run);
  try {
    return out.dataSync() as Float32Array;
  } finally {
    out.dispose();
  }
}
