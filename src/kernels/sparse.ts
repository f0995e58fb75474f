import * as tf from "@tensorflow/tfjs-core";
import { guarded } from "./deferred";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { SPARSE_WASM_BASE64 } from "./sparse-module";
import type { SparseLoops } from "../runtime/kernels";
import { loopsOnMemory, pointer } from "./simd";

const sparseOnMemory = loopsOnMemory<SparseLoops>(SPARSE_WASM_BASE64);

/** sparse.wat's loops on this backend's wasm heap, or undefined where WebAssembly SIMD is unavailable. */
function sparseLoops(backend: BackendWasm): SparseLoops | undefined {
  const memory = (backend.wasm as unknown as { asm?: { memory?: object } }).asm?.memory;
  return memory ? sparseOnMemory(memory) : undefined;
}

/** Whether the sparse kernels can run now: the wasm backend is active and WebAssembly SIMD compiles. */
export function sparseKernelsAvailable(): boolean {
  if (tf.getBackend() !== "wasm") return false;
  return sparseLoops(tf.backend() as BackendWasm) !== undefined;
}

export const SPARSE_SPMM = "FwpruneSparseSpmm";
export const MAX_POOL_TILES = "FwpruneMaxPool2x2Tiles";
export const SPARSE_CONV_POOL = "FwpruneSparseConvPool2x2";
export const TILES_TO_COLS = "FwpruneTilesToCols";

/**
 * One pass of sparse.wat's spmm over a block of the input: `inOffset`/`outOffset` (bytes) shift where it starts, the
 * rest is spmm's geometry (see sparse.wat).
 */
export interface SpmmPass {
  inOffset: number;
  outOffset: number;
  tiles: number;
  segs: number;
  segVecs: number;
}

export interface SpmmAttrs {
  outShape: number[];
  rows: number;
  inTile: number;
  outTile: number;
  inSeg: number;
  outSeg: number;
  outRow: number;
  scale: number;
  relu: boolean;
  passes: SpmmPass[];
}

function spmmKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x, rowPtr, idx, vals, bias } = args.inputs as Record<"x" | "rowPtr" | "idx" | "vals" | "bias", tf.TensorInfo>;
  const a = args.attrs as unknown as SpmmAttrs;
  const loops = sparseLoops(backend);
  if (!loops) throw new Error(`${SPARSE_SPMM}: WebAssembly SIMD is unavailable on this backend`);
  const out = backend.makeOutput(a.outShape, "float32");
  const [px, po] = [pointer(backend, x), pointer(backend, out)];
  const [pr, pi, pv, pb] = [pointer(backend, rowPtr), pointer(backend, idx), pointer(backend, vals), pointer(backend, bias)];
  for (const p of a.passes) {
    loops.spmm(
      pr,
      pi,
      pv,
      pb,
      px + p.inOffset,
      po + p.outOffset,
      a.rows,
      p.tiles,
      a.inTile,
      a.outTile,
      p.segs,
      a.inSeg,
      a.outSeg,
      a.outRow,
      p.segVecs,
      a.scale,
      a.relu ? 1 : 0,
    );
  }
  return out;
}

function maxPoolTilesKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x } = args.inputs as { x: tf.TensorInfo };
  const [t, c, h, w, b] = x.shape;
  const loops = sparseLoops(backend);
  if (!loops) throw new Error(`${MAX_POOL_TILES}: WebAssembly SIMD is unavailable on this backend`);
  const out = backend.makeOutput([t, c, Math.floor(h / 2), Math.floor(w / 2), b], "float32");
  loops.maxPool2x2(pointer(backend, x), pointer(backend, out), t * c, h, w, b);
  return out;
}

/** A valid stride-1 convolution and the 2×2 max pool after it, over tiles of 8 images (sparse.wat's spconvPool2x2). */
export interface ConvPoolAttrs {
  /** Input tile geometry [c, h, w], kernel size and output channels. */
  input: [number, number, number];
  kernel: number;
  channels: number;
  relu: boolean;
}

function convPoolKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x, rowPtr, idx, vals, bias } = args.inputs as Record<"x" | "rowPtr" | "idx" | "vals" | "bias", tf.TensorInfo>;
  const a = args.attrs as unknown as ConvPoolAttrs;
  const loops = sparseLoops(backend);
  if (!loops) throw new Error(`${SPARSE_CONV_POOL}: WebAssembly SIMD is unavailable on this backend`);
  const [c, h, w] = a.input;
  const [oh, ow] = [h - a.kernel + 1, w - a.kernel + 1];
  const [ph, pw] = [Math.floor(oh / 2), Math.floor(ow / 2)];
  const tiles = x.shape[0];
  const out = backend.makeOutput([tiles, a.channels, ph, pw, 8], "float32");
  const at = (t: tf.TensorInfo) => pointer(backend, t);
  loops.spconvPool2x2(
    at(rowPtr),
    at(idx),
    at(vals),
    at(bias),
    at(x),
    at(out),
    a.channels,
    tiles,
    c * h * w * 32,
    a.channels * ph * pw * 32,
    ph,
    pw,
    w * 32,
    pw * 32,
    ph * pw * 32,
    32,
    a.relu ? 1 : 0,
  );
  return out;
}

function tilesToColsKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x } = args.inputs as { x: tf.TensorInfo };
  const [t, c, h, w] = x.shape;
  const loops = sparseLoops(backend);
  if (!loops) throw new Error(`${TILES_TO_COLS}: WebAssembly SIMD is unavailable on this backend`);
  const out = backend.makeOutput([h * w * c, t * 8], "float32");
  loops.tilesToCols(pointer(backend, x), pointer(backend, out), t, c, h, w, t * 8 * 4);
  return out;
}

let registered = false;
/** Register the four kernels on wasm (idempotent; they are new kernel names, so nothing of tfjs's is replaced). */
export function registerSparseKernels(): void {
  if (registered) return;
  const kernels = [
    [SPARSE_SPMM, spmmKernel],
    [MAX_POOL_TILES, maxPoolTilesKernel],
    [SPARSE_CONV_POOL, convPoolKernel],
    [TILES_TO_COLS, tilesToColsKernel],
  ] as const;
  // Guarded like every wasm kernel: none may read a deferred job's output before it is done (deferred.ts).
  for (const [kernelName, kernelFunc] of kernels) tf.registerKernel(guarded({ kernelName, backendName: "wasm", kernelFunc: kernelFunc as tf.KernelFunc }));
  registered = true;
}
