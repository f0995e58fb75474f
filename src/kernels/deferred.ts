import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { anyDeferred, finishDeferred, isDeferred } from "./threads";
import { overrideWasmKernel } from "./util";

/**
 * A job deferred to the kernel threads (threads.ts's deferJob: a convolution's filter gradient product, which a training
 * step needs only at the optimizer) writes its output while this thread goes on. Nothing may see that output, nor free
 * what the job uses, before it is done: every wasm kernel joins the job first where one of its inputs is the job's data
 * (guardKernels), and so do the backend's reads and disposals of it (guardDeferredData).
 */

/** `config` with a kernel that first joins a deferred job whose data it takes. */
export function guarded(config: tf.KernelConfig): tf.KernelConfig {
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

/** The backend's reads and disposals join a deferred job whose data they touch (set up once per backend). */
export function guardDeferredData(backend: BackendWasm): void {
  if (guardedBackends.has(backend)) return;
  guardedBackends.add(backend);
  const methods = backend as unknown as Record<"readSync" | "read" | "disposeData", (dataId: object, ...rest: unknown[]) => unknown>;
  for (const name of ["readSync", "read", "disposeData"] as const) {
    const original = methods[name].bind(backend);
    methods[name] = (dataId, ...rest) => {
      if (isDeferred(dataId)) finishDeferred();
      return original(dataId, ...rest);
    };
  }
}
