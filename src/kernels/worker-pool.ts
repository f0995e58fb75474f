import { Worker } from "node:worker_threads";
import * as tf from "@tensorflow/tfjs-core";
import { kernelThreads, onKernelThreadsShutdown } from "./threads";

/**
 * Worker threads that each run tfjs's wasm backend of their own, for work split by examples or images between them and
 * this thread (batch-split.ts: inference's convolution; split-predict.ts: whole models' inference): kernelThreads() − 1
 * of them, started on first use (their backends come up in the background), stopped with the kernel threads or when
 * the thread count changes. Each has a SharedArrayBuffer for its part's inputs and outputs, grown as needed, and its
 * slots in the control block.
 */

// Int32 slots per worker in the control block.
export const READY = 0; // 1: its backend is up; −1: it failed to start
export const DONE = 1;
export const FAILED = 2;
const SLOTS = 4;

export interface WorkerPool {
  control: Int32Array;
  workers: Worker[];
  /** Each worker's SharedArrayBuffer, grown as needed. */
  data: SharedArrayBuffer[];
}

/** Worker i's slot in the control block (workerData.slot): its READY, DONE and FAILED follow. */
export const slotOf = (i: number) => i * SLOTS;

/** Whether every worker's backend is up. */
export const workersReady = (p: WorkerPool) => p.workers.every((_, i) => Atomics.load(p.control, slotOf(i) + READY) === 1);

/** Clear worker i's DONE (set it where the worker gets no part) and FAILED before it is sent its part. */
export function openSlot(p: WorkerPool, i: number, done = false): void {
  Atomics.store(p.control, slotOf(i) + FAILED, 0);
  Atomics.store(p.control, slotOf(i) + DONE, done ? 1 : 0);
}

/** Wait until every worker is done with its part; whether any failed. */
export function waitForWorkers(p: WorkerPool): boolean {
  p.workers.forEach((_, i) => Atomics.wait(p.control, slotOf(i) + DONE, 0));
  return p.workers.some((_, i) => Atomics.load(p.control, slotOf(i) + FAILED) !== 0);
}

/**
 * A pool of workers running `source` (evaluated as CommonJS), each given workerData() and its control block and slot:
 * `current` starts it for the current thread count (undefined with one thread), `stop` ends it, `whenReady` waits (at
 * most `timeoutMs`) until the workers' backends are up or one failed to start, so that a timing that follows measures
 * split work from its first batch; `running` is the pool if one is started (starting none).
 */
export function workerPool(source: string, workerData: () => Record<string, unknown>) {
  let pool: WorkerPool | undefined;
  function stop(): void {
    if (!pool) return;
    for (const worker of pool.workers) void worker.terminate();
    pool = undefined;
  }
  onKernelThreadsShutdown(stop);
  function current(): WorkerPool | undefined {
    const workers = kernelThreads() - 1;
    if (pool && pool.workers.length !== workers) stop();
    if (workers < 1) return undefined;
    if (pool) return pool;
    const data = workerData();
    const control = new Int32Array(new SharedArrayBuffer(workers * SLOTS * 4));
    const started = Array.from({ length: workers }, (_, i) => {
      const worker = new Worker(source, { eval: true, workerData: { ...data, control: control.buffer, slot: slotOf(i) } });
      worker.unref(); // idle threads never keep the process alive
      worker.on("error", () => Atomics.store(control, slotOf(i) + READY, -1)); // it failed: never used
      return worker;
    });
    pool = { control, workers: started, data: started.map(() => new SharedArrayBuffer(0)) };
    return pool;
  }
  async function whenReady(timeoutMs = 30_000): Promise<void> {
    const start = Date.now();
    while (kernelThreads() > 1 && tf.getBackend() === "wasm" && Date.now() - start < timeoutMs) {
      const p = current();
      if (!p || workersReady(p) || p.workers.some((_, i) => Atomics.load(p.control, slotOf(i) + READY) === -1)) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return { current, running: () => pool, stop, whenReady };
}
