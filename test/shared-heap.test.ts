import { test } from "node:test";
import * as assert from "node:assert/strict";
import { HEAP_MAX_PAGES, importingSharedMemory, withSharedMemory } from "../src/kernels/shared-heap";

// Tiny modules assembled by hand, byte by byte, so that each patch is checked against a module WebAssembly itself
// accepts or rejects.
const HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
const name = (text: string) => [text.length, ...Buffer.from(text)];
const section = (id: number, body: number[]) => [id, body.length, ...body];
const TYPES = section(1, [1, 0x60, 0, 0]); // one type: () → ()
const EXPORT_MEMORY = section(7, [1, ...name("memory"), 2, 0]);

interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, { buffer: object }> };
  Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => { buffer: object };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
const instantiate = (bytes: Uint8Array, imports: object = {}) => new wasm.Instance(new wasm.Module(bytes), imports);

test("importingSharedMemory: a module importing env.memory (after a function import) then runs on a shared memory, and only then", () => {
  const imports = [2, ...name("env"), ...name("f"), 0, 0, ...name("env"), ...name("memory"), 2, 0x00, 1];
  const plain = Uint8Array.from([...HEADER, ...TYPES, ...section(2, imports)]);
  const memory = new wasm.Memory({ initial: 1, maximum: HEAP_MAX_PAGES, shared: true });
  const env = { env: { f: () => undefined, memory } };
  assert.throws(() => instantiate(plain, env), /shared/);
  const shared = importingSharedMemory(plain);
  assert.equal(shared.length, plain.length + 3, "limits 0x00 1 → 0x03 1 and a maximum of three bytes");
  instantiate(shared, env);
  assert.throws(() => instantiate(shared, { env: { f: () => undefined, memory: new wasm.Memory({ initial: 1 }) } }), /memory import/);
  assert.throws(() => importingSharedMemory(Uint8Array.from([...HEADER, ...TYPES])), /without an "env" "memory" import/);
});

test("withSharedMemory: a module's own memory declared shared, the same length; errors name the file and what was found", () => {
  const own = (limits: number[]) => Uint8Array.from([...HEADER, ...section(5, [1, ...limits]), ...EXPORT_MEMORY]);
  const plain = own([0x01, 1, 2]);
  assert.equal(instantiate(plain).exports.memory.buffer instanceof SharedArrayBuffer, false);
  const shared = withSharedMemory(plain, "tiny.wasm");
  assert.equal(shared.length, plain.length);
  assert.equal(instantiate(shared).exports.memory.buffer instanceof SharedArrayBuffer, true);
  assert.throws(() => withSharedMemory(own([0x00, 1]), "tiny.wasm"), /tiny\.wasm: .*flags 0x0; expected one memory with a maximum/);
  assert.throws(() => withSharedMemory(Uint8Array.from([...HEADER, ...TYPES]), "tiny.wasm"), /tiny\.wasm: no memory section/);
  assert.throws(() => withSharedMemory(Uint8Array.from([1, 2, 3]), "tiny.wasm"), /tiny\.wasm: not a WebAssembly binary/);
});
