import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import type { GemmExports } from "./gemm-exports";
import { GEMM_WASM_BASE64 } from "./gemm-module";
import { heapBuffer, loopsOnMemory, pointer, withAlignedScratch, withScratch } from "./simd";
import { MIN_THREADED_MACS, poolThreads, threadedGemmPacked } from "./threads";
import { callKernel, dispose } from "./util";

/** k values summed per pass over C: A's 6 rows of a block (6·512 floats) stay in L1 while all panels use them. */
export const KC_MAX = 512;

let enabled = true;
const gemmOnMemory = loopsOnMemory<GemmExports>(GEMM_WASM_BASE64);

/** Switch the relaxed-SIMD product off (tests use it to check the XNNPACK paths it replaces). */
export function enableRelaxedGemm(on: boolean): void {
  enabled = on;
}

/** gemm.wat's exports on this backend's memory, or undefined where relaxed SIMD is unavailable or switched off. */
export function gemmFor(backend: BackendWasm): GemmExports | undefined {
  if (!enabled) return undefined;
  const memory = (backend.wasm as unknown as { asm?: { memory?: object } }).asm?.memory;
  const exports = memory && gemmOnMemory(memory);
  if (!exports) return undefined;
  exports.setTwoRows(twoRows ? 1 : 0);
  return exports;
}

let twoRows = true;

/** Switch gemm.wat's 2-row tiles for a 6-row tile's leftover rows off (tests check them against 1-row tiles). */
export function enableTwoRowTiles(on: boolean): void {
  twoRows = on;
}

/** Whether the relaxed-SIMD product can run on this backend. */
export function hasRelaxedGemm(backend: BackendWasm): boolean {
  return gemmFor(backend) !== undefined;
}

/**
 * a [...batch, m, k] · b [...batch, k, n] (same batch shape, n % 8 == 0) as a new tensor, or undefined where the
 * relaxed-SIMD product is unavailable or the shapes do not fit it (the caller then uses XNNPACK).
 */
export function relaxedMatMul(backend: BackendWasm, a: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo | undefined {
  const gemm = gemmFor(backend);
  const batchShape = a.shape.slice(0, -2);
  if (!gemm || a.dtype !== "float32" || b.dtype !== "float32" || b.shape.length !== a.shape.length) return undefined;
  if (b.shape.slice(0, -2).some((d, i) => d !== batchShape[i])) return undefined;
  const [m, k] = a.shape.slice(-2);
  const n = b.shape[b.shape.length - 1];
  if (n % 8 !== 0 || m * k * n === 0) return undefined;
  const batches = batchShape.reduce((p, d) => p * d, 1);
  const c = backend.makeOutput([...batchShape, m, n], "float32");
  const [pa, pb, pc] = [pointer(backend, a), pointer(backend, b), pointer(backend, c)];
  if (m * k * n >= MIN_THREADED_MACS && threadedMatMul(backend, pa, pb, pc, batches, m, k, n)) return c;
  if (packInBlocks && k > KC_MAX) {
    // Packing all of a long B first walked it n/8 times.
    withScratch(backend, KC_MAX * n * 4, (bp) => {
      for (let i = 0; i < batches; i++) {
        const rowsOfA = pa + i * m * k * 4;
        productInKBlocks(gemm, m, k, n, pb + i * k * n * 4, bp, pc + i * m * n * 4, KC_MAX, (first) => [rowsOfA + first * 4, k * 4]);
        blockedPackings += Math.ceil(k / KC_MAX);
      }
    });
    return c;
  }
  withScratch(backend, k * n * 4, (bp) => {
    for (let i = 0; i < batches; i++) {
      gemm.gemm(pa + i * m * k * 4, 0, k * 4, pb + i * k * n * 4, bp, pc + i * m * n * 4, m, k, n, KC_MAX, KC_MAX, 0);
    }
  });
  return c;
}

let packInBlocks = true;
let blockedPackings = 0;

/** Blocks of B relaxedMatMul has packed one at a time so far (tests check that the path ran). */
export const blockedPackingCount = (): number => blockedPackings;

/** Switch relaxedMatMul's packing of B block by block off (tests use it to check it against packing B whole). */
export function enableBlockedPacking(on: boolean): void {
  packInBlocks = on;
}

/**
 * C = a [m, k] · b [k, n] (n % 8 == 0) in blocks of `blockRows` rows of C, each computed into scratch and handed to
 * `use(c, first, rows)` (C's rows first..first + rows − 1 at byte offset c) before the next: C never lies whole in
 * memory, and each element is relaxedMatMul's. False (nothing computed) where the relaxed-SIMD product is
 * unavailable, the shapes do not fit it, or the whole product would run faster on the kernel threads.
 */
export function relaxedMatMulInBlocks(
  backend: BackendWasm,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  blockRows: number,
  use: (c: number, first: number, rows: number) => void,
): boolean {
  const gemm = gemmFor(backend);
  if (!gemm || a.dtype !== "float32" || b.dtype !== "float32" || a.shape.length !== 2 || b.shape.length !== 2) return false;
  const [m, k] = a.shape;
  const n = b.shape[1];
  if (n % 8 !== 0 || b.shape[0] !== k || m * k * n === 0 || blockRows < 1) return false;
  if (poolThreads(backend) > 1 && m * k * n >= MIN_THREADED_MACS) return false;
  const [pa, pb] = [pointer(backend, a), pointer(backend, b)];
  withScratch(backend, k * n * 4 + blockRows * n * 4, (bp) => {
    const block = bp + k * n * 4;
    gemm.packB(pb, bp, k, n);
    for (let first = 0; first < m; first += blockRows) {
      const rows = Math.min(blockRows, m - first);
      gemm.gemmPacked(pa + first * k * 4, 0, k * 4, bp, block, rows, k, n, KC_MAX, KC_MAX, 0, 0);
      use(block, first, rows);
    }
  });
  return true;
}

/**
 * C [m, n] = A [m, K] · b [K, n] (n % 8 == 0) with A never whole in memory: its columns come in blocks of blockK (the
 * last one shorter), each written by `fillA(first, kc, a)` as a row-major [m, kc] matrix at byte offset a and
 * multiplied while in cache, C's sums going on from block to block in k order: each element is relaxedMatMul's.
 * Undefined (nothing computed) where the relaxed-SIMD product is unavailable, the shapes do not fit it, or the whole
 * product would run faster on the kernel threads.
 */
export function relaxedMatMulOfBlocks(
  backend: BackendWasm,
  m: number,
  b: tf.TensorInfo,
  blockK: number,
  fillA: (first: number, kc: number, a: number) => void,
): tf.TensorInfo | undefined {
  const gemm = gemmFor(backend);
  if (!gemm || b.dtype !== "float32" || b.shape.length !== 2 || blockK < 1) return undefined;
  const [k, n] = b.shape;
  if (n % 8 !== 0 || m * k * n === 0) return undefined;
  if (poolThreads(backend) > 1 && m * k * n >= MIN_THREADED_MACS) return undefined;
  const c = backend.makeOutput([m, n], "float32");
  const [pb, pc] = [pointer(backend, b), pointer(backend, c)];
  const blockBytes = aligned(m * blockK * 4);
  withScratch(backend, blockBytes + blockK * n * 4, (a) => {
    productInKBlocks(gemm, m, k, n, pb, a + blockBytes, pc, blockK, (first, kc) => {
      fillA(first, kc, a);
      return [a, kc * 4];
    });
  });
  return c;
}

/**
 * C [m, n] = A · B [k, n] in blocks of blockK of k: each block's rows of B packed at bp just before its products (the
 * pack reads B once, and its block is still in cache), A's block at aBlock(first, kc) = [address, row stride in
 * bytes]; C's sums go on from block to block in k order, so every element is one product's.
 */
function productInKBlocks(
  gemm: GemmExports,
  m: number,
  k: number,
  n: number,
  pb: number,
  bp: number,
  pc: number,
  blockK: number,
  aBlock: (first: number, kc: number) => [number, number],
): void {
  for (let first = 0; first < k; first += blockK) {
    const kc = Math.min(blockK, k - first);
    const [a, lda] = aBlock(first, kc);
    gemm.packB(pb + first * n * 4, bp, kc, n);
    gemm.gemmPacked(a, 0, lda, bp, pc, m, kc, n, KC_MAX, KC_MAX, 0, first);
  }
}

/**
 * A stride-1 convolution's filter gradient dW [(kh,kw,ci), co] = Σ_b (image b's im2col matrix)ᵀ · dy_b, read in place
 * from xT = x transposed to [ci, batch, h, w], zero-padded: row (kh, kw, ci) of image b's matrix is oh runs of ow
 * floats of it, one padded row apart. The same products in the same order as the im2col matrix's (its zeros
 * included). Undefined where the relaxed-SIMD product is unavailable, the shapes do not fit it (short rows spend
 * their time in calls), or the product would run faster whole on the kernel threads.
 */
export function relaxedConv2DFilterGrad(
  backend: BackendWasm,
  xT: tf.TensorInfo,
  dy: tf.TensorInfo,
  info: tf.backend_util.Conv2DInfo,
): tf.TensorInfo | undefined {
  const gemm = gemmFor(backend);
  const { batchSize, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth, padInfo } = info;
  const m = filterHeight * filterWidth * inChannels;
  const k = outHeight * outWidth; // per image
  if (!gemm || info.strideHeight !== 1 || info.strideWidth !== 1 || outWidth < 16 || outChannels % 8 !== 0) return undefined;
  if (xT.dtype !== "float32" || dy.dtype !== "float32") return undefined;
  if (poolThreads(backend) > 1 && m * k * batchSize * outChannels >= MIN_THREADED_MACS) return undefined;
  const paddings = [
    [0, 0],
    [0, 0],
    [padInfo.top, padInfo.bottom],
    [padInfo.left, padInfo.right],
  ];
  const padded = callKernel("PadV2", backend, { x: xT }, { paddings, constantValue: 0 });
  const [hp, wp] = padded.shape.slice(2);
  const dw = backend.makeOutput([filterHeight, filterWidth, inChannels, outChannels], "float32");
  const [px, pdy, pdw] = [pointer(backend, padded), pointer(backend, dy), pointer(backend, dw)];
  withScratch(backend, k * outChannels * 4 + m * 4, (bp) => {
    const table = bp + k * outChannels * 4;
    const rows = new Int32Array(heapBuffer(backend), table, m);
    for (let kh = 0, i = 0; kh < filterHeight; kh++) {
      for (let kw = 0; kw < filterWidth; kw++) {
        for (let ci = 0; ci < inChannels; ci++) rows[i++] = ((ci * batchSize * hp + kh) * wp + kw) * 4;
      }
    }
    for (let b = 0; b < batchSize; b++) {
      gemm.packB(pdy + b * k * outChannels * 4, bp, k, outChannels);
      gemm.gemmPacked(px + b * hp * wp * 4, table, 0, bp, pdw, m, k, outChannels, k, outWidth, wp * 4, b);
    }
  });
  dispose(backend, padded);
  return dw;
}

/**
 * A valid (unpadded) NHWC convolution with dilation 1 as one product read in place from x: row (b, oh, ow) of the
 * im2col matrix is kh runs of kw·c floats of x, w·c floats apart; filter [kh, kw, c, co] is B as it lies.
 * Undefined where the relaxed-SIMD product is unavailable or the convolution does not fit it.
 */
export function relaxedConv2D(backend: BackendWasm, x: tf.TensorInfo, filter: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo | undefined {
  const gemm = gemmFor(backend);
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, padInfo } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth, dilationHeight, dilationWidth } = info;
  const unpadded = padInfo.top === 0 && padInfo.left === 0 && padInfo.bottom === 0 && padInfo.right === 0;
  // Short runs (a first layer's single input channel) spend their time in calls, not in multiply-adds.
  const runLen = filterWidth * inChannels;
  if (!gemm || !unpadded || dilationHeight !== 1 || dilationWidth !== 1 || outChannels % 8 !== 0 || runLen < 32) return undefined;
  if (x.dtype !== "float32" || filter.dtype !== "float32" || info.dataFormat !== "channelsLast") return undefined;
  const m = batchSize * outHeight * outWidth;
  const k = filterHeight * runLen;
  const out = backend.makeOutput([batchSize, outHeight, outWidth, outChannels], "float32");
  const [px, pf, po] = [pointer(backend, x), pointer(backend, filter), pointer(backend, out)];
  const fillRows = (rows: Int32Array) => {
    let i = 0;
    for (let b = 0; b < batchSize; b++) {
      for (let oh = 0; oh < outHeight; oh++) {
        const rowStart = (b * inHeight + oh * strideHeight) * inWidth;
        for (let ow = 0; ow < outWidth; ow++) rows[i++] = (rowStart + ow * strideWidth) * inChannels * 4;
      }
    }
  };
  const runStride = inWidth * inChannels * 4;
  if (m * k * outChannels >= MIN_THREADED_MACS && threadedConv2D(backend, { px, pf, po, m, k, n: outChannels, runLen, runStride, fillRows })) {
    return out;
  }
  withScratch(backend, k * outChannels * 4 + m * 4, (bp) => {
    const table = bp + k * outChannels * 4;
    fillRows(new Int32Array(heapBuffer(backend), table, m));
    gemm.gemm(px, table, 0, pf, bp, po, m, k, outChannels, k, runLen, runStride);
  });
  return out;
}

/**
 * C [m, n] = a [m, k] · bT [n, k]ᵀ on the kernel threads, B's panels packed from bT by the threads that use them (a
 * dense layer's input gradient dy·Wᵀ, without transposing W or C). Each element is relaxedMatMul's of a and bTᵀ, and
 * of bT and aᵀ transposed: the same products (a·b = b·a, in a fused multiply-add too) summed in the same order.
 * Undefined where products run on one thread, the shapes do not fit (n % 8 ≠ 0) or C has as many rows as columns.
 */
export function threadedMatMulTransposedB(backend: BackendWasm, a: tf.TensorInfo, bT: tf.TensorInfo): tf.TensorInfo | undefined {
  if (!gemmFor(backend) || a.dtype !== "float32" || bT.dtype !== "float32" || a.shape.length !== 2 || bT.shape.length !== 2) return undefined;
  const [m, k] = a.shape;
  const n = bT.shape[0];
  if (n % 8 !== 0 || bT.shape[1] !== k || m >= n || m * k * n < MIN_THREADED_MACS || poolThreads(backend) <= 1) return undefined;
  const c = backend.makeOutput([m, n], "float32");
  const [pa, pb, pc] = [pointer(backend, a), pointer(backend, bT), pointer(backend, c)];
  withAlignedScratch(backend, k * n * 4, (bp) => {
    const product = { a: pa, table: 0, lda: k * 4, bp, c: pc, m, k, n, kcMax: KC_MAX, runLen: KC_MAX, runStride: 0, accumulate: 0 };
    threadedGemmPacked({ ...product, b: pb, bTransposed: true });
  });
  return c;
}

/** Bytes rounded up to 16 (SIMD loads), so that consecutive regions of scratch stay aligned. */
export const aligned = (bytes: number) => Math.ceil(bytes / 16) * 16;

/**
 * relaxedMatMul's product on the kernel threads (threads.ts), on tfjs's heap in place: C's rows or panels split
 * between the threads (threadedGemmPacked). False where products run on one thread.
 */
function threadedMatMul(backend: BackendWasm, pa: number, pb: number, pc: number, batches: number, m: number, k: number, n: number): boolean {
  const gemm = gemmFor(backend);
  if (!gemm || poolThreads(backend) <= 1) return false;
  const [aBytes, bBytes, cBytes] = [m * k * 4, k * n * 4, m * n * 4];
  withAlignedScratch(backend, bBytes, (bp) => {
    for (let i = 0; i < batches; i++) {
      threadedGemmPacked({
        a: pa + i * aBytes,
        table: 0,
        lda: k * 4,
        bp,
        c: pc + i * cBytes,
        m,
        k,
        n,
        kcMax: KC_MAX,
        runLen: KC_MAX,
        runStride: 0,
        accumulate: 0,
        b: pb + i * bBytes,
      });
    }
  });
  return true;
}

/** relaxedConv2D's product on the kernel threads, on tfjs's heap in place. */
function threadedConv2D(
  backend: BackendWasm,
  conv: {
    px: number;
    pf: number;
    po: number;
    m: number;
    k: number;
    n: number;
    runLen: number;
    runStride: number;
    fillRows: (rows: Int32Array) => void;
  },
): boolean {
  const gemm = gemmFor(backend);
  if (!gemm || poolThreads(backend) <= 1) return false;
  const { px, pf, po, m, k, n } = conv;
  withAlignedScratch(backend, aligned(k * n * 4) + m * 4, (bp) => {
    const table = bp + aligned(k * n * 4);
    conv.fillRows(new Int32Array(heapBuffer(backend), table, m));
    gemm.packB(pf, bp, k, n);
    threadedGemmPacked({ a: px, table, lda: 0, bp, c: po, m, k, n, kcMax: k, runLen: conv.runLen, runStride: conv.runStride, accumulate: 0 });
  });
  return true;
}
