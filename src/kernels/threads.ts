import * as os from "node:os";
import { setFlagsFromString } from "node:v8";
import { Worker } from "node:worker_threads";
import { GEMM_SHARED_WASM_BASE64 } from "./gemm-shared-module";

/**
 * Intra-op threads for gemm.wat's matrix product. tfjs's wasm heap is not shared (its threaded build does not run in
 * Node), so a threaded product copies its operands into a shared WebAssembly.Memory of its own, packs B there once,
 * and splits C's rows between this thread and a pool of worker_threads running the same module on that memory. Each
 * element of C sums its products in the same order whichever rows a thread covers: results are bit-identical to the
 * single-threaded product on tfjs's heap, whatever the thread count.
 */

/** The arguments of gemm.wat's gemmPacked, every pointer a byte offset into the shared memory. */
export interface PackedGemm {
  a: number;
  table: number;
  lda: number;
  bp: number;
  c: number;
  m: number;
  k: number;
  n: number;
  kcMax: number;
  runLen: number;
  runStride: number;
}

interface GemmSharedExports {
  packB(b: number, bp: number, k: number, n: number): void;
  gemmPacked(a: number, table: number, lda: number, bp: number, c: number, m: number, k: number, n: number, kcMax: number, runLen: number, runStride: number): void;
}

// The compile options leave out the DOM typings, where WebAssembly's live; this is the little used here.
interface SharedMemory {
  buffer: SharedArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => SharedMemory;
}
const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

const PAGE = 65536;
const MAX_PAGES = 32768; // as declared by the shared module (build-simd.sh): 2 GiB
/** Products with fewer multiply-adds run on one thread: waking the pool costs more than they take. */
export const MIN_THREADED_MACS = 1 << 20;

// The control block (Int32 slots): job generation, workers still busy, stop, failure, then one argument row per thread.
const GENERATION = 0;
const PENDING = 1;
const STOP = 2;
const FAILED = 3;
const ARGS = 8;
const ARG_SLOTS = 12;

const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { module, memory, control, index } = workerData;
const ctrl = new Int32Array(control);
let gemm = null;
try {
  gemm = new WebAssembly.Instance(module, { env: { memory } }).exports;
} catch (err) {
  gemm = null; // reported below, at each job, as a failure: the main thread must never wait for a thread that is gone
}
let seen = 0;
for (;;) {
  Atomics.wait(ctrl, ${GENERATION}, seen);
  seen = Atomics.load(ctrl, ${GENERATION});
  if (Atomics.load(ctrl, ${STOP}) !== 0) break;
  const at = ${ARGS} + index * ${ARG_SLOTS};
  try {
    if (gemm === null) throw new Error("no module");
    if (ctrl[at + 5] > 0) {
      gemm.gemmPacked(ctrl[at], ctrl[at + 1], ctrl[at + 2], ctrl[at + 3], ctrl[at + 4], ctrl[at + 5], ctrl[at + 6], ctrl[at + 7], ctrl[at + 8], ctrl[at + 9], ctrl[at + 10]);
    }
  } catch (err) {
    Atomics.store(ctrl, ${FAILED}, 1);
  }
  if (Atomics.sub(ctrl, ${PENDING}, 1) === 1) Atomics.notify(ctrl, ${PENDING});
}
`;

/** A positive integer thread count from a flag or FWPRUNE_THREADS, or an error naming where it came from. */
export function parseThreads(source: string, text: string): number {
  const n = Number(text);
  if (text.trim() === "" || !Number.isInteger(n) || n < 1) throw new Error(`${source}: got ${JSON.stringify(text)}; expected a positive whole number of threads`);
  return n;
}

/** This machine's cores, as Node counts them. */
export function coreCount(): number {
  return typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length;
}

let requested: number | undefined;

/** Threads for the kernels of this process: set by setKernelThreads, else FWPRUNE_THREADS, else every core. */
export function kernelThreads(): number {
  if (requested !== undefined) return requested;
  const env = process.env.FWPRUNE_THREADS;
  return env === undefined || env === "" ? coreCount() : parseThreads("FWPRUNE_THREADS", env);
}

/** Use `n` threads from the next kernel on (1: the single-threaded products on tfjs's heap, no pool). */
export function setKernelThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`threads: got ${n}; expected a positive whole number`);
  requested = n;
  if (pool && pool.workers.length !== n - 1) shutdownKernelThreads();
}

interface Pool {
  memory: SharedMemory;
  control: Int32Array;
  gemm: GemmSharedExports;
  workers: Worker[];
}
let pool: Pool | undefined;
let compiled: object | null | undefined;

function sharedModule(): object | null {
  if (compiled !== undefined) return compiled;
  const bytes = Buffer.from(GEMM_SHARED_WASM_BASE64, "base64");
  try {
    compiled = new wasmApi.Module(bytes);
  } catch {
    try {
      setFlagsFromString("--experimental-wasm-relaxed-simd");
      compiled = new wasmApi.Module(bytes);
    } catch {
      compiled = null;
    }
  }
  return compiled;
}

/** The pool for the current thread count, started on first use; undefined with one thread or without relaxed SIMD. */
function currentPool(): Pool | undefined {
  const threads = kernelThreads();
  if (threads <= 1) return undefined;
  if (pool) return pool;
  const module = sharedModule();
  if (!module) return undefined;
  const memory = new wasmApi.Memory({ initial: 16, maximum: MAX_PAGES, shared: true });
  const control = new Int32Array(new SharedArrayBuffer((ARGS + threads * ARG_SLOTS) * 4));
  const gemm = new wasmApi.Instance(module, { env: { memory } }).exports as GemmSharedExports;
  const workers = Array.from({ length: threads - 1 }, (_, i) => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { module, memory, control: control.buffer, index: i + 1 } });
    worker.unref(); // idle threads never keep the process alive
    return worker;
  });
  pool = { memory, control, gemm, workers };
  return pool;
}

/** Stop the pool's threads (the next threaded kernel starts a new pool). */
export function shutdownKernelThreads(): void {
  if (!pool) return;
  const { control, workers } = pool;
  Atomics.store(control, STOP, 1);
  Atomics.add(control, GENERATION, 1);
  Atomics.notify(control, GENERATION);
  for (const worker of workers) void worker.terminate();
  pool = undefined;
}

/**
 * A shared memory of at least `bytes` and its product, or undefined where products run on one thread. Views of
 * `memory.buffer` taken after this call stay valid until the next.
 */
export function sharedGemm(bytes: number): { memory: SharedMemory; packB: GemmSharedExports["packB"]; threads: number } | undefined {
  const p = currentPool();
  if (!p) return undefined;
  const have = p.memory.buffer.byteLength;
  if (bytes > have) {
    const pages = Math.ceil((bytes - have) / PAGE);
    if (have / PAGE + pages > MAX_PAGES) return undefined;
    p.memory.grow(pages);
  }
  return { memory: p.memory, packB: (b, bp, k, n) => p.gemm.packB(b, bp, k, n), threads: p.workers.length + 1 };
}

/**
 * gemmPacked over all of C's rows, split between the threads in blocks of 6 rows (gemm.wat's register tile); returns
 * when every thread is done.
 */
export function threadedGemmPacked(job: PackedGemm): void {
  const p = pool;
  if (!p) throw new Error("threadedGemmPacked: no thread pool (call sharedGemm first)");
  const threads = p.workers.length + 1;
  const share = Math.ceil(job.m / threads / 6) * 6;
  const rows = (t: number): PackedGemm => {
    const first = Math.min(job.m, t * share);
    const m = Math.min(job.m, first + share) - first;
    const a = job.table ? job.a : job.a + first * job.lda;
    const table = job.table ? job.table + first * 4 : 0;
    return { ...job, a, table, c: job.c + first * job.n * 4, m };
  };
  const { control } = p;
  for (let t = 1; t < threads; t++) {
    const r = rows(t);
    control.set([r.a, r.table, r.lda, r.bp, r.c, r.m, r.k, r.n, r.kcMax, r.runLen, r.runStride], ARGS + t * ARG_SLOTS);
  }
  Atomics.store(control, FAILED, 0);
  Atomics.store(control, PENDING, threads - 1);
  Atomics.add(control, GENERATION, 1);
  Atomics.notify(control, GENERATION);
  const own = rows(0);
  try {
    if (own.m > 0) p.gemm.gemmPacked(own.a, own.table, own.lda, own.bp, own.c, own.m, own.k, own.n, own.kcMax, own.runLen, own.runStride);
  } finally {
    for (let left = Atomics.load(control, PENDING); left !== 0; left = Atomics.load(control, PENDING)) Atomics.wait(control, PENDING, left);
  }
  if (Atomics.load(control, FAILED) !== 0) throw new Error("a kernel thread failed in the matrix product (out of bounds in the shared memory)");
}
