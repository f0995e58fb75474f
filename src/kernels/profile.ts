import * as tf from "@tensorflow/tfjs-core";

/** Self time (excluding kernels it called through the registry) and call count of one kernel. */
export interface KernelTiming {
  kernel: string;
  calls: number;
  selfMs: number;
}

export interface KernelProfiler {
  /** Forget what was measured so far. */
  reset(): void;
  /** Timings since the last reset, slowest first. */
  timings(): KernelTiming[];
  /** Put the original kernels back. */
  stop(): void;
}

/** Milliseconds of CPU time this process has used: unlike wall time, other processes' load does not inflate it. */
export function cpuClockMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/**
 * Wrap every kernel registered for `backendName` with a timer (wall clock by default, or e.g. cpuClockMs).
 * Only meaningful for synchronous backends (wasm, cpu): a kernel's time is the time its kernelFunc runs.
 * Kernels called from inside another kernel (through `tf.getKernel`) are counted apart, so times never
 * double count.
 */
export function profileKernels(backendName = "wasm", clock: () => number = () => performance.now()): KernelProfiler {
  const originals = tf.getKernelsForBackend(backendName);
  const totals = new Map<string, { calls: number; selfMs: number }>();
  const childMs: number[] = [];
  for (const config of originals) {
    const inner = config.kernelFunc;
    const timed: tf.KernelFunc = (params) => {
      childMs.push(0);
      const start = clock();
      try {
        return inner(params);
      } finally {
        const elapsed = clock() - start;
        const children = childMs.pop() ?? 0;
        if (childMs.length > 0) childMs[childMs.length - 1] += elapsed;
        const entry = totals.get(config.kernelName) ?? { calls: 0, selfMs: 0 };
        entry.calls += 1;
        entry.selfMs += elapsed - children;
        totals.set(config.kernelName, entry);
      }
    };
    tf.unregisterKernel(config.kernelName, backendName);
    tf.registerKernel({ ...config, kernelFunc: timed });
  }
  return {
    reset: () => totals.clear(),
    timings: () => [...totals.entries()].map(([kernel, t]) => ({ kernel, calls: t.calls, selfMs: t.selfMs })).sort((a, b) => b.selfMs - a.selfMs),
    stop: () => {
      for (const config of originals) {
        tf.unregisterKernel(config.kernelName, backendName);
        tf.registerKernel(config);
      }
    },
  };
}
