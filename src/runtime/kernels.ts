import { DENSE_TILES_WASM_BASE64 } from "../kernels/dense-tiles-module";
import { SPARSE_WASM_BASE64 } from "../kernels/sparse-module";

/**
 * fwprune's wasm loops on a memory of the runtime's own: sparse.wat (sparse products, the fused sparse convolution
 * + 2×2 pool, tiles → columns) and dense-tiles.wat (dense convolution and max pool of any size). Pointers are bytes.
 */
/** The loops of sparse.wat (the Node side binds them to the memory of a tfjs wasm backend). */
export interface SparseLoops {
  spmm(
    rowPtr: number,
    idx: number,
    vals: number,
    bias: number,
    x: number,
    out: number,
    rows: number,
    tiles: number,
    inTile: number,
    outTile: number,
    segs: number,
    inSeg: number,
    outSeg: number,
    outRow: number,
    segVecs: number,
    scale: number,
    relu: number,
  ): void;
  maxPool2x2(x: number, out: number, planes: number, h: number, w: number, b: number): void;
  spconvPool2x2(
    rowPtr: number,
    idx: number,
    vals: number,
    bias: number,
    x: number,
    out: number,
    rows: number,
    tiles: number,
    inTile: number,
    outTile: number,
    pooledRows: number,
    pooledCols: number,
    inRowBytes: number,
    outSeg: number,
    outRow: number,
    scale: number,
    relu: number,
  ): void;
  tilesToCols(x: number, out: number, tiles: number, c: number, h: number, w: number, colBytes: number): void;
}

export interface RuntimeLoops extends SparseLoops {
  convTiles(
    x: number,
    out: number,
    kernel: number,
    bias: number,
    tiles: number,
    c: number,
    h: number,
    w: number,
    co: number,
    k: number,
    stride: number,
    top: number,
    left: number,
    oh: number,
    ow: number,
    relu: number,
  ): void;
  maxPoolTiles(x: number, out: number, planes: number, h: number, w: number, size: number): void;
}

// The runtime is compiled without the DOM typings and without Node's: these are the few globals it uses.
interface WasmMemory {
  buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Memory: new (descriptor: { initial: number }) => WasmMemory;
  instantiate(bytes: Uint8Array, imports: object): Promise<{ instance: { exports: object } }>;
}
const runtimeGlobals = globalThis as unknown as { WebAssembly?: WasmApi; atob?: (s: string) => string };

function base64Bytes(text: string): Uint8Array {
  const binary = (runtimeGlobals.atob as (s: string) => string)(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

const PAGE = 65536;

/** A wasm memory with a bump allocator (16-byte aligned) and the loops bound to it. */
export class RuntimeMemory {
  private constructor(
    readonly memory: WasmMemory,
    readonly loops: RuntimeLoops,
    private top: number,
  ) {}

  static async create(): Promise<RuntimeMemory> {
    const wasm = runtimeGlobals.WebAssembly;
    if (!wasm) throw new Error("fwprune runtime: this engine has no WebAssembly");
    const memory = new wasm.Memory({ initial: 1 });
    try {
      const [sparse, dense] = await Promise.all([
        wasm.instantiate(base64Bytes(SPARSE_WASM_BASE64), { env: { memory } }),
        wasm.instantiate(base64Bytes(DENSE_TILES_WASM_BASE64), { env: { memory } }),
      ]);
      return new RuntimeMemory(memory, { ...sparse.instance.exports, ...dense.instance.exports } as RuntimeLoops, 16);
    } catch (err) {
      throw new Error(`fwprune runtime: the wasm kernels need WebAssembly SIMD, which this engine refused (${(err as Error).message})`);
    }
  }

  /** Room for `bytes` bytes; grows the memory (views made before a growth are then stale: allocate before viewing). */
  alloc(bytes: number): number {
    const at = this.top;
    this.top = Math.ceil((at + bytes) / 16) * 16;
    const pages = Math.ceil(this.top / PAGE) - this.memory.buffer.byteLength / PAGE;
    if (pages > 0) this.memory.grow(pages);
    return at;
  }

  /** A copy of typed values into new memory; returns the pointer. */
  put(values: Float32Array | Int32Array): number {
    const at = this.alloc(values.byteLength);
    new Uint8Array(this.memory.buffer, at, values.byteLength).set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    return at;
  }

  floats(at: number, count: number): Float32Array {
    return new Float32Array(this.memory.buffer, at, count);
  }
}
