import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs-core";

/**
 * tfjs's wasm heap as a shared WebAssembly.Memory, so that the kernel threads (threads.ts) work on tfjs's tensors in
 * place instead of on copies. tfjs's SIMD build declares one memory of its own, with a maximum; a memory that is
 * declared shared differs from it in one byte, the flags of its limits (0x01 → 0x03). Nothing else changes: the same
 * code runs on the same bytes and gives the same bits, and a SharedArrayBuffer is an ArrayBuffer to every reader of
 * the heap. The patched binary reaches tfjs through its own loader (setWasmPaths with the platform's fetch), served
 * from memory. tfjs's threaded build (which does declare a shared heap) needs blob-URL workers that Node lacks.
 */

const BINARIES = ["tfjs-backend-wasm.wasm", "tfjs-backend-wasm-simd.wasm", "tfjs-backend-wasm-threaded-simd.wasm"];
const SHARED = "tfjs-backend-wasm-simd.wasm";
const PREFIX = "fwprune-wasm:";
const IMPORT_SECTION = 2;
const MEMORY_SECTION = 5;
/** The pages a shared memory may grow to: tfjs's SIMD build declares 65536 (4 GiB); modules importing it must agree. */
export const HEAP_MAX_PAGES = 65536;

function readLeb(bytes: Uint8Array, at: number): [value: number, next: number] {
  let [value, shift] = [0, 0];
  for (;;) {
    const byte = bytes[at++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if (byte < 0x80) return [value, at];
  }
}

function writeLeb(value: number): number[] {
  const out: number[] = [];
  do {
    const byte = value % 128;
    value = Math.floor(value / 128);
    out.push(value > 0 ? byte | 0x80 : byte);
  } while (value > 0);
  return out;
}

/** A module's sections after its 8-byte header: each one's id, where it starts, where its body starts, where it ends. */
function* sections(wasm: Uint8Array): Generator<{ id: number; start: number; body: number; end: number }> {
  for (let start = 8; start < wasm.length;) {
    const [size, body] = readLeb(wasm, start + 1);
    yield { id: wasm[start], start, body, end: body + size };
    start = body + size;
  }
}

/** The name at `at` (a length, then that many bytes of UTF-8) and the byte after it. */
function readName(wasm: Uint8Array, at: number): [name: string, next: number] {
  const [length, start] = readLeb(wasm, at);
  return [new TextDecoder().decode(wasm.subarray(start, start + length)), start + length];
}

/** The byte after the limits at `at` (flags, minimum, and a maximum where flags has bit 0). */
const afterLimits = (wasm: Uint8Array, at: number) => {
  const [, next] = readLeb(wasm, at + 1);
  return wasm[at] & 1 ? readLeb(wasm, next)[1] : next;
};

/**
 * `wasm`, a module importing "env" "memory", importing it shared instead (maximum HEAP_MAX_PAGES), to run on tfjs's
 * heap once shareWasmHeap made it shared: the same code, one import's limits re-encoded.
 */
export function importingSharedMemory(wasm: Uint8Array): Uint8Array {
  for (const { id, start, body, end } of sections(wasm)) {
    if (id === IMPORT_SECTION) {
      let [count, entry] = readLeb(wasm, body);
      for (; count > 0; count--) {
        const [module, field] = readName(wasm, entry);
        const [name, kind] = readName(wasm, field);
        const desc = kind + 1;
        if (wasm[kind] === 2 && module === "env" && name === "memory") {
          const limits = desc;
          const [minimum] = readLeb(wasm, limits + 1);
          const replaced = [0x03, ...writeLeb(minimum), ...writeLeb(HEAP_MAX_PAGES)];
          const after = afterLimits(wasm, limits);
          const newBody = [...wasm.subarray(body, limits), ...replaced, ...wasm.subarray(after, end)];
          return Uint8Array.from([...wasm.subarray(0, start), IMPORT_SECTION, ...writeLeb(newBody.length), ...newBody, ...wasm.subarray(end)]);
        }
        if (wasm[kind] === 0) entry = readLeb(wasm, desc)[1];
        else if (wasm[kind] === 1) entry = afterLimits(wasm, desc + 1);
        else if (wasm[kind] === 2) entry = afterLimits(wasm, desc);
        else entry = desc + 2; // a global: its type and mutability
      }
    }
  }
  throw new Error('a kernel module without an "env" "memory" import');
}

/** Whether a WebAssembly.Memory is shared. */
export const isShared = (memory: object) => (memory as { buffer: object }).buffer instanceof SharedArrayBuffer;

/**
 * `wasm` with its one memory declared shared, or an error naming what was found instead: the sections are walked,
 * and the memory section must hold exactly one memory with a maximum (flags 0x01), not already shared.
 */
export function withSharedMemory(wasm: Uint8Array, file: string): Uint8Array {
  const magic = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  if (wasm.length < 8 || magic.some((b, i) => wasm[i] !== b)) throw new Error(`${file}: not a WebAssembly binary (version 1)`);
  for (const { id, body } of sections(wasm)) {
    if (id === MEMORY_SECTION) {
      const [count, limits] = readLeb(wasm, body);
      if (count !== 1 || wasm[limits] !== 0x01)
        throw new Error(
          `${file}: memory section with ${count} memories, limits flags 0x${wasm[limits].toString(16)}; expected one memory with a maximum (flags 0x01)`,
        );
      const shared = wasm.slice();
      shared[limits] = 0x03;
      return shared;
    }
  }
  throw new Error(`${file}: no memory section (a memory imported instead of declared?); expected tfjs's SIMD build`);
}

let prepared: boolean | undefined;

/**
 * Have the wasm backend, when it first starts, load its SIMD build with a shared heap. True where that is arranged;
 * false where the binary is not as expected (a warning says why). Where the backend started before, its heap stays
 * as it is, and the kernels run on this thread alone.
 */
export function shareWasmHeap(): boolean {
  if (prepared !== undefined) return prepared;
  prepared = false;
  const dist = path.dirname(require.resolve("@tensorflow/tfjs-backend-wasm"));
  const files = new Map<string, Uint8Array>();
  try {
    for (const name of BINARIES) {
      const file = path.join(dist, name);
      const bytes = new Uint8Array(fs.readFileSync(file));
      files.set(PREFIX + name, name === SHARED ? withSharedMemory(bytes, file) : bytes);
    }
  } catch (err) {
    process.emitWarning(`fwprune: kernels on one thread: ${(err as Error).message}`);
    return prepared;
  }
  const platform = tf.env().platform;
  const fetchOther = platform.fetch.bind(platform);
  platform.fetch = (where: string, init?: RequestInit) => {
    const bytes = files.get(where);
    return bytes ? Promise.resolve(new Response(bytes)) : fetchOther(where, init);
  };
  // Required here, not imported: importing the package registers the wasm backend, which only its users want.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { setWasmPaths } = require("@tensorflow/tfjs-backend-wasm") as typeof import("@tensorflow/tfjs-backend-wasm");
  setWasmPaths(Object.fromEntries(BINARIES.map((name) => [name, PREFIX + name])), true);
  prepared = true;
  return prepared;
}

interface EmscriptenExports {
  asm: { memory: { buffer: ArrayBuffer | SharedArrayBuffer } };
}

/** The wasm backend's heap, where it is a shared WebAssembly.Memory (shareWasmHeap ran before it started). */
export function sharedHeapOf(backend: { wasm: unknown }): EmscriptenExports["asm"]["memory"] | undefined {
  const memory = (backend.wasm as EmscriptenExports).asm?.memory;
  return memory && isShared(memory) ? memory : undefined;
}
