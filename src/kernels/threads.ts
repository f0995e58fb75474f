import * as os from "node:os";
import { Worker } from "node:worker_threads";
import { compileRelaxedSimd } from "./simd";
import type { GemmExports } from "./gemm";
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
  /** ≠ 0: C += A·B, continuing C's sums. */
  accumulate: number;
}

/** gemm.wat built on a shared memory exports the same packB and gemmPacked as the single-threaded module. */
type GemmSharedExports = Pick<GemmExports, "packB" | "gemmPacked">;

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

// The control block: Int32 slots for the job generation, the rows done and a failure flag, one BigInt64 slot for the
// next rows to claim (generation << 32 | row: a thread that read an older job's arguments can never claim rows of a
// newer one), then the job's arguments.
const GENERATION = 0;
const DONE = 1;
const FAILED = 2;
const STOP = 3;
const NEXT64 = 2; // BigInt64 index: Int32 slots 4 and 5
const ARGS = 8;
const ARG_COUNT = 13; // gemmPacked's 12 arguments, then the rows per claim
const CONTROL_BYTES = Math.ceil((ARGS + ARG_COUNT) / 2) * 8; // whole BigInt64 slots

// Each thread claims blocks of rows until none is left: on a busy machine a thread that wakes late takes fewer.
const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { module, memory, control } = workerData;
const ctrl = new Int32Array(control);
const next = new BigInt64Array(control);
let gemm = null;
try {
  gemm = new WebAssembly.Instance(module, { env: { memory } }).exports;
} catch (err) {
  gemm = null; // reported at each claimed block as a failure: the main thread must never wait for rows left undone
}
let seen = 0;
for (;;) {
  Atomics.wait(ctrl, ${GENERATION}, seen);
  seen = Atomics.load(ctrl, ${GENERATION});
  if (Atomics.load(ctrl, ${STOP}) !== 0) break;
  const a = ctrl.slice(${ARGS}, ${ARGS + ARG_COUNT});
  const [m, lda, table, chunk] = [a[5], a[2], a[1], a[12]];
  for (;;) {
    const claim = Atomics.load(next, ${NEXT64});
    if (Number(claim >> 32n) !== seen) break;
    const first = Number(claim & 0xffffffffn);
    if (first >= m) break;
    if (Atomics.compareExchange(next, ${NEXT64}, claim, claim + BigInt(chunk)) !== claim) continue;
    const rows = Math.min(chunk, m - first);
    try {
      if (gemm === null) throw new Error("no module");
      gemm.gemmPacked(table ? a[0] : a[0] + first * lda, table ? table + first * 4 : 0, lda, a[3], a[4] + first * a[7] * 4, rows, a[6], a[7], a[8], a[9], a[10], a[11]);
    } catch (err) {
      Atomics.store(ctrl, ${FAILED}, 1);
    }
    if (Atomics.add(ctrl, ${DONE}, rows) + rows === m) Atomics.notify(ctrl, ${DONE});
  }
}
`;

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
  if (compiled === undefined) compiled = compileRelaxedSimd(GEMM_SHARED_WASM_BASE64);
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
  const control = new Int32Array(new SharedArrayBuffer(CONTROL_BYTES));
  const gemm = new wasmApi.Instance(module, { env: { memory } }).exports as GemmSharedExports;
  const workers = Array.from({ length: threads - 1 }, () => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { module, memory, control: control.buffer } });
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

let productsThreaded = 0;
/** How many products ran on the pool so far (tests check that the threaded path did run). */
export function threadedProducts(): number {
  return productsThreaded;
}

/**
 * gemmPacked over all of C's rows, claimed in blocks of 6s (gemm.wat's register tile) by this thread and the pool's;
 * returns when every row is done.
 */
export function threadedGemmPacked(job: PackedGemm): void {
  const p = pool;
  if (!p) throw new Error("threadedGemmPacked: no thread pool (call sharedGemm first)");
  const threads = p.workers.length + 1;
  productsThreaded++;
  const chunk = Math.max(6, Math.ceil(job.m / (threads * 4) / 6) * 6);
  const { control } = p;
  const next = new BigInt64Array(control.buffer);
  const generation = (Atomics.load(control, GENERATION) + 1) | 0;
  control.set([job.a, job.table, job.lda, job.bp, job.c, job.m, job.k, job.n, job.kcMax, job.runLen, job.runStride, job.accumulate, chunk], ARGS);
  Atomics.store(control, DONE, 0);
  Atomics.store(control, FAILED, 0);
  Atomics.store(next, NEXT64, BigInt(generation) << 32n);
  Atomics.store(control, GENERATION, generation);
  Atomics.notify(control, GENERATION);
  for (;;) {
    const claim = Atomics.load(next, NEXT64);
    const first = Number(claim & 0xffffffffn);
    if (first >= job.m) break;
    if (Atomics.compareExchange(next, NEXT64, claim, claim + BigInt(chunk)) !== claim) continue;
    const rows = Math.min(chunk, job.m - first);
    try {
      const a = job.table ? job.a : job.a + first * job.lda;
      const table = job.table ? job.table + first * 4 : 0;
      p.gemm.gemmPacked(a, table, job.lda, job.bp, job.c + first * job.n * 4, rows, job.k, job.n, job.kcMax, job.runLen, job.runStride, job.accumulate);
    } catch {
      Atomics.store(control, FAILED, 1);
    }
    Atomics.add(control, DONE, rows);
  }
  for (let done = Atomics.load(control, DONE); done < job.m; done = Atomics.load(control, DONE)) Atomics.wait(control, DONE, done);
  if (Atomics.load(control, FAILED) !== 0) throw new Error("the threaded matrix product failed (out of bounds in the shared memory)");
}
