import { Worker } from "node:worker_threads";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { CONV_WASM_BASE64 } from "./conv-module";
import { GEMM_WASM_BASE64 } from "./gemm-module";
import { sharedHeapOf } from "./shared-heap";
import { SpinPolicy } from "./spin";
import { compileRelaxedSimd } from "./simd";
import { SIMD_WASM_BASE64 } from "./simd-module";
import { claimSize, convRowStarts, GEMM_PANELS, GEMM_ROWS, runUnits } from "./thread-jobs";
import { requestThreads, threadsNow } from "./thread-count";
import type { SharedConvExports, SharedGemmExports, SharedSimdExports } from "./thread-jobs";

/**
 * Intra-op threads for gemm.wat's matrix product, simd.wat's loops (im2col, col2im, a first layer's filter gradient, a
 * 2×2 max pool and its gradient) and conv.wat's convolution (a first layer's forward). tfjs's wasm heap is a shared
 * WebAssembly.Memory (shared-heap.ts), so a threaded kernel splits its work, on tfjs's tensors in place, between this
 * thread and a pool of worker_threads running the same modules on that memory: C's rows of a product, whole images, a
 * filter's taps or a convolution's output pixels. Each element sums its products in the same order whichever units a
 * thread covers: results are bit-identical to the single-threaded kernels, whatever the thread count. A job runs at
 * once (runJob) or is left to the pool's threads while this one goes on (deferJob), with work on its output waiting for
 * it (continueDeferred); deferred.ts keeps its data from being read or freed early. The jobs themselves (runUnits and
 * its kinds) are in thread-jobs.ts.
 */

/** The arguments of gemm.wat's gemmPacked, every pointer a byte offset into tfjs's (shared) heap. */
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
  /**
   * Products summed into C one after the other (default 1): product b reads A at a + b·aStride (a table's rows
   * likewise) and B packed at bp + b·bpStride, continuing C's sums from product b − 1.
   */
  batches?: number;
  aStride?: number;
  bpStride?: number;
  /** B [k, n] itself, to be packed into bp first (by the threads that use its panels, where they share C's panels). One product only. */
  b?: number;
  /** b is Bᵀ [n, k]. */
  bTransposed?: boolean;
}

// The compile options leave out the DOM typings, where WebAssembly's live; this is the little used here.
interface SharedMemory {
  buffer: SharedArrayBuffer;
}
interface WasmApi {
  Instance: new (module: object, imports: object) => { exports: unknown };
}
const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** Products with fewer multiply-adds run on one thread: waking the pool costs more than they take. */
export const MIN_THREADED_MACS = 1 << 20;
/** Loops that only move floats (a max pool's gradient) run on one thread below this many. */
export const MIN_THREADED_FLOATS = 1 << 16;
/** Claims take at most 1 / (threads · this) of a job's units, fewer near its end (claimSize): a thread that wakes late takes fewer. */
export const CLAIMS_PER_THREAD = 8;
/** Units per claim of a job of `units` units, at most (claimSize): about CLAIMS_PER_THREAD claims per thread, at least one. */
export const unitsPerClaim = (units: number, threads: number) => Math.max(1, Math.floor(units / (threads * CLAIMS_PER_THREAD)));

// The control block: Int32 slots for the job generation, the units done, a failure flag and the stop flag, one
// BigInt64 slot for the next units to claim (generation << 32 | unit: a thread that read an older job's arguments can
// never claim units of a newer one), then the job's kind, unit count, units per claim, the µs a thread polls before it
// sleeps (spin.ts) and the arguments.
const GENERATION = 0;
const DONE = 1;
const FAILED = 2;
const STOP = 3;
const NEXT64 = 2; // BigInt64 index: Int32 slots 4 and 5
const KIND = 6;
const UNITS = 7;
const CHUNK = 8;
const SPIN = 9;
const ARGS = 10;
const ARG_COUNT = 20;
const CONTROL_BYTES = Math.ceil((ARGS + ARG_COUNT) / 2) * 8; // whole BigInt64 slots
/** A first unit no job reaches: NEXT64 while a job's arguments are written. */
const CLOSED = 0x7fffffff;

// Each thread claims blocks of units until none is left: on a busy machine a thread that wakes late takes fewer.
const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { gemmModule, simdModule, convModule, memory, control, slot, threads } = workerData;
const ctrl = new Int32Array(control);
const next = new BigInt64Array(control);
const convRowStarts = ${convRowStarts.toString()};
const runUnits = ${runUnits.toString()};
const claimSize = ${claimSize.toString()};
let gemm = null;
let simd = null;
let conv = null;
try {
  gemm = new WebAssembly.Instance(gemmModule, { env: { memory } }).exports;
  simd = new WebAssembly.Instance(simdModule, { env: { memory } }).exports;
  conv = new WebAssembly.Instance(convModule, { env: { memory } }).exports;
} catch (err) {
  gemm = null; // reported at each claimed block as a failure: the main thread must never wait for units left undone
}
let seen = 0;
for (;;) {
  const pollUntil = performance.now() + Atomics.load(ctrl, ${SPIN}) / 1000;
  while (Atomics.load(ctrl, ${GENERATION}) === seen && performance.now() < pollUntil);
  Atomics.wait(ctrl, ${GENERATION}, seen);
  seen = Atomics.load(ctrl, ${GENERATION});
  if (Atomics.load(ctrl, ${STOP}) !== 0) break;
  const [kind, units, chunk] = [Atomics.load(ctrl, ${KIND}), Atomics.load(ctrl, ${UNITS}), Atomics.load(ctrl, ${CHUNK})];
  const a = new Int32Array(${ARG_COUNT});
  for (let i = 0; i < ${ARG_COUNT}; i++) a[i] = Atomics.load(ctrl, ${ARGS} + i);
  for (;;) {
    const claim = Atomics.load(next, ${NEXT64});
    if (Number(claim >> 32n) !== seen) break;
    const first = Number(claim & 0xffffffffn);
    if (first >= units) break;
    const size = claimSize(kind, first, units, chunk, threads);
    if (Atomics.compareExchange(next, ${NEXT64}, claim, claim + BigInt(size)) !== claim) continue;
    const count = Math.min(size, units - first);
    try {
      if (gemm === null) throw new Error("no module");
      runUnits(kind, a, first, count, gemm, simd, conv, slot, memory);
    } catch (err) {
      Atomics.store(ctrl, ${FAILED}, 1);
    }
    if (Atomics.add(ctrl, ${DONE}, count) + count === units) Atomics.notify(ctrl, ${DONE});
  }
}
`;

export { coreCount, kernelThreads, onThisThreadAlone, parseThreads, THREADS_HELP, threadsFlag, threadsNow } from "./thread-count";

/** Use `n` threads from the next kernel on (1: the single-threaded products on tfjs's heap, no pool). */
export function setKernelThreads(n: number): void {
  requestThreads(n);
  if (pool && pool.workers.length !== n - 1) shutdownKernelThreads();
}

interface Pool {
  memory: SharedMemory;
  control: Int32Array;
  gemm: SharedGemmExports;
  simd: SharedSimdExports;
  conv: SharedConvExports;
  workers: Worker[];
  spin: SpinPolicy;
}
let pool: Pool | undefined;
/** The kernel modules importing a shared memory, compiled once (simd.ts) for this thread's kernels and the pool's. */
function sharedModules(): { gemmModule: object; simdModule: object; convModule: object } | null {
  const [gemmModule, simdModule, convModule] = [GEMM_WASM_BASE64, SIMD_WASM_BASE64, CONV_WASM_BASE64].map((m) => compileRelaxedSimd(m, true));
  return gemmModule && simdModule && convModule ? { gemmModule, simdModule, convModule } : null;
}

/**
 * The pool on this backend's heap for the current thread count, started on first use; undefined with one thread,
 * without relaxed SIMD, or where tfjs's heap is not shared.
 */
function currentPool(backend: BackendWasm): Pool | undefined {
  const threads = threadsNow();
  if (threads <= 1) return undefined;
  const memory = sharedHeapOf(backend) as SharedMemory | undefined;
  if (!memory) return undefined;
  if (pool && pool.memory === memory) return pool;
  if (pool) shutdownKernelThreads(); // a new backend, a new heap
  const modules = sharedModules();
  if (!modules) return undefined;
  const control = new Int32Array(new SharedArrayBuffer(CONTROL_BYTES));
  const gemm = new wasmApi.Instance(modules.gemmModule, { env: { memory } }).exports as SharedGemmExports;
  const simd = new wasmApi.Instance(modules.simdModule, { env: { memory } }).exports as SharedSimdExports;
  const conv = new wasmApi.Instance(modules.convModule, { env: { memory } }).exports as SharedConvExports;
  const workers = Array.from({ length: threads - 1 }, (_, i) => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ...modules, memory, control: control.buffer, slot: i + 1, threads } });
    worker.unref(); // idle threads never keep the process alive
    return worker;
  });
  pool = { memory, control, gemm, simd, conv, workers, spin: new SpinPolicy() };
  return pool;
}

const shutdownHooks: (() => void)[] = [];
/** Run `stop` at every shutdownKernelThreads (other pools of kernel threads stop with this one). */
export function onKernelThreadsShutdown(stop: () => void): void {
  shutdownHooks.push(stop);
}

/** Stop the pools' threads (the next threaded kernel starts a new pool). */
export function shutdownKernelThreads(): void {
  try {
    finishDeferred(); // a failed job throws here: the threads stop all the same
  } finally {
    for (const stop of shutdownHooks) stop();
    if (pool) {
      const { control, workers } = pool;
      Atomics.store(control, STOP, 1);
      Atomics.add(control, GENERATION, 1);
      Atomics.notify(control, GENERATION);
      for (const worker of workers) void worker.terminate();
      pool = undefined;
    }
  }
}

/**
 * The threads that share the kernel about to run on this backend (this one included): 1 inside onThisThreadAlone, with
 * one thread asked for, without relaxed SIMD, or where tfjs's heap is not shared; else the pool's, started on first use.
 */
export function poolThreads(backend: BackendWasm): number {
  const p = currentPool(backend);
  if (!p) return 1;
  if (deferred) {
    // Busy with a deferred job: the kernel runs on this thread alone, unless the job is done already.
    if (Atomics.load(p.control, DONE) < deferred.units) return 1;
    finishDeferred();
  }
  return p.workers.length + 1;
}

let productsThreaded = 0;
/** How many products ran on the pool so far (tests check that the threaded path did run). */
export function threadedProducts(): number {
  return productsThreaded;
}

/**
 * gemmPacked over all of C, by this thread and the pool's; returns when every element is done. The threads claim
 * blocks of C's rows in 6s (gemm.wat's register tile), about CLAIMS_PER_THREAD per thread; where C has fewer rows than
 * columns they claim blocks of its 8-column panels instead (a block of rows reads all of B, a block of panels all of A).
 */
export function threadedGemmPacked(job: PackedGemm): void {
  const [kind, units, chunk] = gemmJob(job);
  if (job.b !== undefined) {
    if ((job.batches ?? 1) !== 1) throw new Error("threadedGemmPacked: B to pack with more than one product");
    if (!pool) throw new Error("threadedGemmPacked: no thread pool (call poolThreads first)");
    if (kind === GEMM_ROWS && job.bTransposed) pool.gemm.packPanelsTransposed(job.b, job.bp, job.k, job.n, job.k);
    else if (kind === GEMM_ROWS) pool.gemm.packB(job.b, job.bp, job.k, job.n);
  }
  runJob(kind, units, chunk, gemmArgs(job));
}

/** threadedGemmPacked's product as a deferred job (deferJob): C is `data`[0]'s, `release` frees A and B's scratch. */
export function deferGemmPacked(job: PackedGemm, data: object[], release: () => void): void {
  deferJob(...gemmJob(job), gemmArgs(job), data, release);
}

/** The job kind, units and units per claim of a product: about CLAIMS_PER_THREAD claims per thread. */
function gemmJob({ m, n }: PackedGemm): [number, number, number] {
  const threads = pool ? pool.workers.length + 1 : 1;
  if (m < n) return [GEMM_PANELS, n / 8, unitsPerClaim(n / 8, threads)];
  return [GEMM_ROWS, m, Math.max(6, Math.ceil(m / (threads * CLAIMS_PER_THREAD) / 6) * 6)];
}

const gemmArgs = (job: PackedGemm) => [
  ...[job.a, job.table, job.lda, job.bp, job.c, job.m, job.k, job.n, job.kcMax, job.runLen, job.runStride, job.accumulate],
  ...[job.batches ?? 1, job.aStride ?? 0, job.bpStride ?? 0, job.b ?? 0, job.bTransposed ? 1 : 0],
];

/** A job of `units` units of `kind` (runUnits) on this thread and the pool's, in claims of `chunk`; returns when all are done. */
export function runJob(kind: number, units: number, chunk: number, args: number[]): void {
  finishDeferred();
  claimAndWait(postJob(kind, units, chunk, args), units, chunk);
}

/** The job's arguments written to the control block and the pool's threads woken; returns the pool. */
function postJob(kind: number, units: number, chunk: number, args: number[]): Pool {
  const p = pool;
  if (!p) throw new Error("runJob: no thread pool (call poolThreads first)");
  if (args.length > ARG_COUNT) throw new Error(`runJob: ${args.length} arguments; at most ${ARG_COUNT}`);
  productsThreaded++;
  const { control } = p;
  const next = new BigInt64Array(control.buffer);
  const generation = (Atomics.load(control, GENERATION) + 1) | 0;
  // Closed first: a late thread of the last job that reads half-written arguments then sees the new generation, and
  // claims nothing. Atomic writes and reads of the arguments keep that order on every CPU, not only on x86's.
  Atomics.store(next, NEXT64, (BigInt(generation) << 32n) | BigInt(CLOSED));
  [kind, units, chunk].forEach((v, i) => Atomics.store(control, KIND + i, v));
  args.forEach((v, i) => Atomics.store(control, ARGS + i, v));
  Atomics.store(control, DONE, 0);
  Atomics.store(control, FAILED, 0);
  Atomics.store(control, SPIN, p.spin.spinMicroseconds());
  Atomics.store(next, NEXT64, BigInt(generation) << 32n);
  Atomics.store(control, GENERATION, generation);
  Atomics.notify(control, GENERATION);
  return p;
}

/** This thread claims the posted job's units until none is left, then waits for the pool's threads to finish theirs. */
function claimAndWait(p: Pool, units: number, chunk: number): void {
  const { control } = p;
  const next = new BigInt64Array(control.buffer);
  const kind = Atomics.load(control, KIND);
  const a = control.slice(ARGS, ARGS + ARG_COUNT);
  for (;;) {
    const claim = Atomics.load(next, NEXT64);
    const first = Number(claim & 0xffffffffn);
    if (first >= units) break;
    const size = claimSize(kind, first, units, chunk, p.workers.length + 1);
    if (Atomics.compareExchange(next, NEXT64, claim, claim + BigInt(size)) !== claim) continue;
    const count = Math.min(size, units - first);
    try {
      runUnits(kind, a, first, count, p.gemm, p.simd, p.conv, 0, p.memory);
    } catch {
      Atomics.store(control, FAILED, 1);
    }
    Atomics.add(control, DONE, count);
  }
  const pollUntil = performance.now() + Atomics.load(control, SPIN) / 1000;
  while (Atomics.load(control, DONE) < units && performance.now() < pollUntil);
  for (let done = Atomics.load(control, DONE); done < units; done = Atomics.load(control, DONE)) Atomics.wait(control, DONE, done);
  if (Atomics.load(control, FAILED) !== 0) throw new Error("a threaded kernel failed (out of bounds on the wasm heap)");
}

/**
 * A job left to the pool's threads (deferJob) while this thread goes on with other kernels, on its own: the data it
 * reads or writes, and what frees its scratch once it is done.
 */
interface Deferred {
  pool: Pool;
  units: number;
  chunk: number;
  data: Set<object>;
  release: () => void;
  /** Work on the job's output that waits for it (continueDeferred), run on this thread in order once it is done. */
  after: (() => void)[];
  /** Disposals of its data (postponeDisposal), run after `after`. */
  disposals: (() => void)[];
}
let deferred: Deferred | undefined;

/**
 * Post a job to the pool's threads and return at once: this thread goes on with the kernels that follow, each on its
 * own (poolThreads is 1 meanwhile), and joins the job, claiming what is left of it, when a kernel takes one of `data`
 * (tfjs data ids: its output, any tensor it reads) as an input, when one of them is read or disposed, or when the
 * pool is wanted again (finishDeferred). `release` runs once every unit is done. The job's bits are runJob's: every
 * unit is computed alone, whichever thread claims it.
 */
export function deferJob(kind: number, units: number, chunk: number, args: number[], data: object[], release: () => void): void {
  finishDeferred();
  deferred = { pool: postJob(kind, units, chunk, args), units, chunk, data: new Set(data), release, after: [], disposals: [] };
  deferredJobs++;
}

/**
 * Leave `work` (on this thread, no kernels) until the deferred job is done, where one is running: it runs when the job
 * is joined, before anything reads or takes `data` (tfjs data ids: what `work` reads or writes), which join the job as
 * the job's own data does. False (nothing left) where no job is running.
 */
export function continueDeferred(work: () => void, data: object[]): boolean {
  if (!deferred) return false;
  deferred.after.push(work);
  for (const d of data) deferred.data.add(d);
  continuedJobs++;
  return true;
}

let continuedJobs = 0;
/** How many pieces of work waited for a deferred job so far (tests check that the path ran). */
export const continuedWorkCount = (): number => continuedJobs;

/** Leave the disposal of a deferred job's data until the job is done; false where `dataId` is not its data. */
export function postponeDisposal(dataId: object, dispose: () => void): boolean {
  if (!deferred || !deferred.data.has(dataId)) return false;
  deferred.disposals.push(dispose);
  return true;
}

let deferredJobs = 0;
/** How many jobs were deferred so far (tests check that the path ran). */
export const deferredJobCount = (): number => deferredJobs;

/** Whether a deferred job is running. */
export const anyDeferred = (): boolean => deferred !== undefined;

/** Whether a deferred job is running that reads or writes `dataId`. */
export const isDeferred = (dataId: object): boolean => deferred !== undefined && deferred.data.has(dataId);

/**
 * Join the deferred job, if any: claim what is left of it, wait for the rest, run the work that waited for it, then the
 * disposals left until it was done, and free its scratch.
 */
export function finishDeferred(): void {
  const d = deferred;
  if (!d) return;
  deferred = undefined;
  try {
    claimAndWait(d.pool, d.units, d.chunk);
    for (const work of d.after) work();
  } finally {
    for (const dispose of d.disposals) dispose();
    d.release();
  }
}
