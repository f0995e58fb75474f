import * as os from "node:os";

/** How many threads the kernels use: --threads, FWPRUNE_THREADS or every core, and onThisThreadAlone's exception. */

/** A positive integer thread count from a flag or FWPRUNE_THREADS, or an error naming where it came from. */
export function parseThreads(source: string, text: string): number {
  const n = Number(text);
  if (text.trim() === "" || !Number.isInteger(n) || n < 1)
    throw new Error(`${source}: got ${JSON.stringify(text)}; expected a positive whole number of threads`);
  return n;
}

/** --threads' help, the same on every command that trains or times. */
export const THREADS_HELP = "threads for the matrix products (default: FWPRUNE_THREADS, else every core); results are identical whatever the count";

/** commander's parser for --threads. */
export const threadsFlag = (text: string): number => parseThreads("--threads", text);

/** This machine's cores, as Node counts them. */
export function coreCount(): number {
  return typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length;
}

let requested: number | undefined;
let aloneDepth = 0;

/** Record `n` threads for the kernels from now on (threads.ts's setKernelThreads also stops a pool of another size). */
export function requestThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`threads: got ${n}; expected a positive whole number`);
  requested = n;
}

/**
 * Run `work` with every kernel on this thread alone, the pools idle but kept: the other threads are busy with other
 * parts of the same batch (split-predict.ts).
 */
export function onThisThreadAlone<T>(work: () => T): T {
  aloneDepth++;
  try {
    return work();
  } finally {
    aloneDepth--;
  }
}

/** Threads for the kernel about to run: kernelThreads(), or 1 inside onThisThreadAlone. */
export function threadsNow(): number {
  return aloneDepth > 0 ? 1 : kernelThreads();
}

/** Threads for the kernels of this process: set by setKernelThreads, else FWPRUNE_THREADS, else every core. */
export function kernelThreads(): number {
  if (requested !== undefined) return requested;
  const env = process.env.FWPRUNE_THREADS;
  return env === undefined || env === "" ? coreCount() : parseThreads("FWPRUNE_THREADS", env);
}
