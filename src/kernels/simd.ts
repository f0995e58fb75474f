import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { setFlagsFromString } from "node:v8";
import { SIMD_WASM_BASE64 } from "./simd-module";
import { importingSharedMemory, isShared } from "./shared-heap";

/** The loops of simd.wat, bound to the memory of one tfjs wasm backend. Pointers are byte offsets. */
export interface SimdLoops {
  maxPoolGrad2x2(x: number, y: number, g: number, dx: number, batch: number, h: number, w: number, c: number, oh: number, ow: number): void;
  maxPool2x2(x: number, y: number, batch: number, h: number, w: number, c: number, oh: number, ow: number): void;
  sumRowsF64(x: number, acc: number, rows: number, cols: number): void;
  /** col2im of the output rows first ≤ b·oh + i < first + rows, added into dx (zeroed by the caller). */
  col2imAdd(
    dcols: number,
    dx: number,
    c: number,
    h: number,
    w: number,
    oh: number,
    ow: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    top: number,
    left: number,
    first: number,
    rows: number,
  ): void;
  /** The transposed im2col matrix of `images` images from xT [c, batch, h, w] (xT: at the first image). */
  im2colRows(
    xT: number,
    cols: number,
    c: number,
    batch: number,
    h: number,
    w: number,
    oh: number,
    ow: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    top: number,
    left: number,
    images: number,
  ): void;
  /** Depthwise (multiplier 1, channels % 4 == 0): x and dy accumulate into dW [kh,kw,c] in float32. */
  depthwiseFilterGrad(
    x: number,
    dy: number,
    dw: number,
    batch: number,
    h: number,
    w: number,
    c: number,
    oh: number,
    ow: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    top: number,
    left: number,
  ): void;
  /** Depthwise (multiplier 1, channels % 4 == 0): filter and dy accumulate into dx (zeroed by the caller). */
  depthwiseInputGrad(
    dx: number,
    dy: number,
    filter: number,
    batch: number,
    h: number,
    w: number,
    c: number,
    oh: number,
    ow: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    top: number,
    left: number,
  ): void;
  /** out[r,:] = a[r,:] ⊙ b[r,:] (likewise add, sub) over rows of cBytes (16s); a and b step aStep / bStep bytes a row. */
  mulRows(a: number, aStep: number, b: number, bStep: number, out: number, rows: number, cBytes: number): void;
  addRows(a: number, aStep: number, b: number, bStep: number, out: number, rows: number, cBytes: number): void;
  subRows(a: number, aStep: number, b: number, bStep: number, out: number, rows: number, cBytes: number): void;
  divRows(a: number, aStep: number, b: number, bStep: number, out: number, rows: number, cBytes: number): void;
  momentumStep(w: number, acc: number, g: number, wOut: number, accOut: number, n: number, negLr: number, momentum: number): void;
  /** dst [cols, rows] = src [rows, cols] transposed (float32). */
  transpose2D(src: number, dst: number, rows: number, cols: number): void;
  conv2DFilterGradDirect(
    x: number,
    dy: number,
    dw: number,
    batch: number,
    h: number,
    w: number,
    c: number,
    oh: number,
    ow: number,
    co: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    top: number,
    left: number,
  ): void;
}

// The compile options leave out the DOM typings, where WebAssembly's live; this is the little used here.
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}
const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface EmscriptenModule {
  asm?: { memory?: object };
  HEAPU8: Uint8Array;
  _malloc(bytes: number): number;
  _free(pointer: number): void;
}

/**
 * A module's loops instantiated once per wasm heap (memory), importing that memory (shared where the heap is, see
 * shared-heap.ts); null for good where the module does not compile or instantiate (no WebAssembly SIMD), so callers
 * fall back to tfjs's kernels.
 */
export function loopsOnMemory<T>(base64: string): (memory: object) => T | undefined {
  const instances = new WeakMap<object, T | null>();
  return (memory) => {
    let loops = instances.get(memory);
    if (loops === undefined) {
      const module = compileRelaxedSimd(base64, isShared(memory));
      try {
        loops = module ? (new wasmApi.Instance(module, { env: { memory } }).exports as T) : null;
      } catch {
        loops = null;
      }
      instances.set(memory, loops);
    }
    return loops ?? undefined;
  };
}

/** A kernel module's bytes, importing a shared memory where `shared`. */
export function moduleBytes(base64: string, shared: boolean): Uint8Array {
  const bytes = Buffer.from(base64, "base64");
  return shared ? importingSharedMemory(bytes) : bytes;
}

const simdOnMemory = loopsOnMemory<SimdLoops>(SIMD_WASM_BASE64);

let enabled = true;
/** Switch the SIMD loops off (tests use it to check the fallback paths against cpu). */
export function enableSimdLoops(on: boolean): void {
  enabled = on;
}

/** The SIMD loops for this backend's memory, or undefined where WebAssembly SIMD is unavailable. */
export function simdLoops(backend: BackendWasm): SimdLoops | undefined {
  if (!enabled) return undefined;
  const memory = (backend.wasm as unknown as EmscriptenModule).asm?.memory;
  return memory ? simdOnMemory(memory) : undefined;
}

/** The wasm heap's current buffer (it changes when the heap grows: take views after the last allocation). */
export function heapBuffer(backend: BackendWasm): ArrayBuffer {
  return (backend.wasm as unknown as EmscriptenModule).HEAPU8.buffer as ArrayBuffer;
}

export function pointer(backend: BackendWasm, info: { dataId: object }): number {
  return backend.getMemoryOffset(info.dataId);
}

/** Scratch memory on the wasm heap, freed after `use` (a heap view taken inside stays valid until it returns). */
export function withScratch<T>(backend: BackendWasm, bytes: number, use: (at: number) => T): T {
  const wasm = backend.wasm as unknown as EmscriptenModule;
  const at = wasm._malloc(bytes) >>> 0;
  try {
    return use(at);
  } finally {
    wasm._free(at);
  }
}

/** `bytes` of scratch on tfjs's heap at a multiple of 16 bytes, kept until `free` (withAlignedScratch's, unscoped). */
export function alignedScratch(backend: BackendWasm, bytes: number): { at: number; free: () => void } {
  const wasm = backend.wasm as unknown as EmscriptenModule;
  const raw = wasm._malloc(bytes + 16) >>> 0;
  return { at: Math.ceil(raw / 16) * 16, free: () => wasm._free(raw) };
}

/** withScratch at a multiple of 16 bytes, where SIMD loads of regions laid out from it (gemm.ts's aligned) stay aligned. */
export function withAlignedScratch<T>(backend: BackendWasm, bytes: number, use: (at: number) => T): T {
  const { at, free } = alignedScratch(backend, bytes);
  try {
    return use(at);
  } finally {
    free();
  }
}

/**
 * A module using relaxed SIMD, or null where that is unavailable. Node 20's V8 has it behind a flag, which is set (only
 * if a first compile fails) before compiling again; newer engines have it on by default.
 */
export function compileRelaxedSimd(base64: string, shared = false): object | null {
  let modules = compiledModules.get(base64);
  if (!modules) compiledModules.set(base64, (modules = new Map()));
  if (!modules.has(shared)) modules.set(shared, compile(moduleBytes(base64, shared)));
  return modules.get(shared) ?? null;
}

/** Each kernel module compiled once, for a plain heap and for a shared one (the kernel threads' workers get the same). */
const compiledModules = new Map<string, Map<boolean, object | null>>();

function compile(bytes: Uint8Array): object | null {
  try {
    return new wasmApi.Module(bytes);
  } catch {
    try {
      setFlagsFromString("--experimental-wasm-relaxed-simd");
      return new wasmApi.Module(bytes);
    } catch {
      return null;
    }
  }
}
