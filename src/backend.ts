import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { kernelThreads, registerWasmKernels } from "./kernels";
import { registerTfjsGradients } from "./kernels/gradients";

export type BackendName = "tensorflow" | "wasm" | "cpu";
export const BACKENDS: readonly BackendName[] = ["tensorflow", "wasm", "cpu"];

let nativeLoaded: boolean | undefined;

/** True when @tensorflow/tfjs-node is installed and loads (it registers the `tensorflow` backend). */
export function hasNativeBackend(): boolean {
  if (nativeLoaded === undefined) {
    try {
      // The real tfjs-node package, not danfojs-node's aliased copy of plain tfjs.
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- optional: loaded only if installed
      const pkg = require("@tensorflow/tfjs-node/package.json") as { name: string };
      if (pkg.name !== "@tensorflow/tfjs-node") throw new Error("not tfjs-node");
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require("@tensorflow/tfjs-node");
      nativeLoaded = true;
    } catch {
      nativeLoaded = false;
    }
  }
  return nativeLoaded;
}

/**
 * Pick and initialise the tfjs backend: the one named (argument, then FWPRUNE_BACKEND), else the fastest
 * available: tensorflow (tfjs-node) → wasm → cpu. Returns the backend that actually runs. With it, tfjs's gradients,
 * except where `training` is false (a thread that only infers).
 */
export async function initBackend(preferred?: BackendName, opts: { quiet?: boolean; training?: boolean } = {}): Promise<BackendName> {
  const requested = preferred ?? (process.env.FWPRUNE_BACKEND as BackendName | undefined) ?? undefined;
  if (requested !== undefined && !BACKENDS.includes(requested)) {
    throw new Error(`FWPRUNE_BACKEND: unknown backend "${requested}"; expected one of ${BACKENDS.join(", ")}`);
  }
  const order: BackendName[] = requested ? [requested] : [...BACKENDS];
  if (opts.training !== false) registerTfjsGradients();
  for (const name of order) {
    if (name === "tensorflow" && !hasNativeBackend()) {
      if (requested) throw new Error('backend "tensorflow" needs @tensorflow/tfjs-node: npm install @tensorflow/tfjs-node');
      continue;
    }
    if (name === "wasm") {
      registerWasmKernels({ training: opts.training });
      kernelThreads(); // a bad FWPRUNE_THREADS fails here, before any work
    }
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only where it runs
    if (name === "cpu") require("@tensorflow/tfjs-backend-cpu");
    if (tf.getBackend() === name || (await tf.setBackend(name))) {
      await tf.ready();
      if (!opts.quiet && !process.env.FWPRUNE_QUIET) console.error(`fwprune: tfjs backend ${tf.getBackend()}`);
      return tf.getBackend() as BackendName;
    }
  }
  throw new Error(`could not initialise any tfjs backend among ${order.join(", ")}`);
}
