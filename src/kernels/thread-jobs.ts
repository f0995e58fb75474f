import type { ConvLoops } from "./fused-conv2d";
import type { GemmExports } from "./gemm-exports";
import type { SimdLoops } from "./simd";

/**
 * The jobs the kernel threads run (threads.ts): runUnits, which every thread of the pool runs on its own instances of
 * the shared modules, and the job kinds it knows.
 */

/** gemm.wat and simd.wat importing a shared memory (moduleBytes) export the same functions as on a plain one. */
export type SharedGemmExports = Pick<GemmExports, "packB" | "packPanels" | "packPanelsTransposed" | "gemmPacked" | "gemmPanels" | "gemmCol2im">;
export type SharedSimdExports = Pick<SimdLoops, "im2colRows" | "col2imAdd" | "transpose2D" | "conv2DFilterGradDirect" | "maxPoolGrad2x2" | "maxPool2x2">;
/** conv.wat, likewise. */
export type SharedConvExports = Pick<ConvLoops, "convProduct">;

/** The kinds of job the pool runs (runUnits). */
export const GEMM_ROWS = 0;
export const IM2COL_IMAGES = 1;
export const COL2IM_IMAGES = 2;
export const FILTER_TAPS = 3;
export const POOL_GRAD_IMAGES = 4;
export const CONV_ROWS = 5;
export const POOL_IMAGES = 6;
export const GEMM_PANELS = 7;

/**
 * How many units the claim starting at unit `first` takes: `chunk` while much is left, then a share of what is left
 * (half of it split between the threads), so that the last claims are small and the threads finish close together.
 * Claims of GEMM_ROWS and CONV_ROWS stay in multiples of their modules' row tiles (6 and 5). Which thread claims a unit
 * never changes its bits, so neither does this. Like runUnits, it uses nothing but its arguments (the workers run a copy).
 */
export function claimSize(kind: number, first: number, units: number, chunk: number, threads: number): number {
  const grain = kind === 0 ? 6 : kind === 5 ? 5 : 1;
  return Math.min(chunk, Math.max(grain, Math.ceil((units - first) / (2 * threads) / grain) * grain));
}

/**
 * rows[j] = where the im2col row of output pixel first + j starts (bytes from the padded input [b, hp, wp, c]): pixel
 * (b, i, j) of an oh × ow output reads from input pixel (b, i·sh, j·sw). Like runUnits, it uses nothing but its
 * arguments (the workers run a copy of it).
 */
export function convRowStarts(rows: Int32Array, first: number, oh: number, ow: number, hp: number, wp: number, sh: number, sw: number, c: number): void {
  let b = Math.floor(first / (oh * ow));
  let i = Math.floor(first / ow) % oh;
  let j = first % ow;
  for (let r = 0; r < rows.length; r++) {
    rows[r] = ((b * hp + i * sh) * wp + j * sw) * c * 4;
    if (++j === ow) {
      j = 0;
      if (++i === oh) {
        i = 0;
        b++;
      }
    }
  }
}

/**
 * Runs units first..first + count − 1 of a job on this thread's instances of the shared modules (the workers run this
 * very function, its source copied into theirs: it uses nothing but its arguments). `slot`: this thread's index, 0 on
 * the main thread, for its own scratch. The kinds, a's layout for each:
 * - GEMM_ROWS, units rows of C: gemmPacked's 12 arguments (m unused), then batches, aStride, bpStride: product b
 *   reads A at a + b·aStride (a table's rows likewise) and B packed at bp + b·bpStride, continuing C's sums.
 * - IM2COL_IMAGES, units blocks of images: x (NHWC), cols, c, scratch, h, w, oh, ow, kh, kw, sh, sw, top, left
 *   (im2colRows'), then dy, bp, n, images per block, scratch bytes per thread: block b of x transposed to
 *   [c, images, h, w] into the thread's scratch, then block b's transposed im2col matrix [kh·kw·c, images·oh·ow] built
 *   from it at cols + b·its size, and its rows of dy [images·oh·ow, n] packed at bp + b·their size.
 * - COL2IM_IMAGES, units images: dy, bp, scratch, scratch bytes per thread, dx, k, kcMax, then col2imAdd's c, h, w, oh,
 *   ow, kh, kw, sh, sw, top, left, fused: image b's column gradients dy_b [oh·ow, k] · B (packed at bp) into the thread's
 *   scratch, then scatter-added into dx in their rows' order; fused ≠ 0: both at once by gemmCol2im (input-grad.ts).
 *   Image b's part of dx is zeroed first, by the thread that computes it.
 * - FILTER_TAPS, units taps (fh, fw) of a filter: conv2DFilterGradDirect's 16 arguments: tap u's gradient dW[fh, fw]
 *   by conv2DFilterGradDirect for a 1×1 filter with top − fh and left − fw (the same sums over b, i, j in the same
 *   order as for the whole filter: its loops read fh only through top − fh and h − 1 − fh + top).
 * - POOL_GRAD_IMAGES, units images: maxPoolGrad2x2's x, y, g, dx, then h, w, c, oh, ow, and zero ≠ 0 where the windows
 *   leave part of dx uncovered: image b's part of dx zeroed first, then image b's maxPoolGrad2x2.
 * - CONV_ROWS, units output pixels (rows of the im2col matrix): convProduct's 9 arguments (m unused), then
 *   convRowStarts' oh, ow, hp, wp, sh, sw, c: the table's entries first..first + count − 1 (convRowStarts), then
 *   convProduct over those rows, each output's sum alone (fused-conv2d.ts).
 * - POOL_IMAGES, units images: maxPool2x2's x, y, then h, w, c, oh, ow.
 * - GEMM_PANELS, units panels of 8 of C's columns: GEMM_ROWS's arguments, then b and transposed: each of C's rows
 *   computed over the panels first..first + count − 1 (gemmPanels), those panels first packed from B [k, n] at b where
 *   b ≠ 0 (one product only), or from Bᵀ [n, k] at b where transposed ≠ 0: a product with fewer rows of C than
 *   columns, where a block of rows would read all of B.
 * `memory`: tfjs's heap, shared, that the modules run on.
 */
export function runUnits(
  kind: number,
  a: Int32Array,
  first: number,
  count: number,
  gemm: SharedGemmExports,
  simd: SharedSimdExports,
  conv: SharedConvExports,
  slot: number,
  memory: { readonly buffer: SharedArrayBuffer },
): void {
  if (kind === 0) {
    const rowA = a[1] ? a[0] : a[0] + first * a[2];
    for (let b = 0; b < a[12]; b++) {
      gemm.gemmPacked(
        rowA + b * a[13],
        a[1] ? a[1] + first * 4 : 0,
        a[2],
        a[3] + b * a[14],
        a[4] + first * a[7] * 4,
        count,
        a[6],
        a[7],
        a[8],
        a[9],
        a[10],
        a[11] || b,
      );
    }
  } else if (kind === 1) {
    const images = a[17];
    const rows = a[8] * a[9] * a[2];
    const perBlock = a[6] * a[7] * images;
    const pixels = images * a[4] * a[5];
    const xT = a[3] + slot * a[18];
    for (let b = first; b < first + count; b++) {
      simd.transpose2D(a[0] + b * pixels * a[2] * 4, xT, pixels, a[2]);
      const cols = a[1] + b * rows * perBlock * 4;
      simd.im2colRows(xT, cols, a[2], images, a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], images);
      gemm.packB(a[14] + b * perBlock * a[16] * 4, a[15] + b * perBlock * a[16] * 4, perBlock, a[16]);
    }
  } else if (kind === 2) {
    const perImage = a[10] * a[11];
    const n = a[12] * a[13] * a[7];
    const scratch = a[2] + slot * a[3];
    const dxFloats = a[8] * a[9] * a[7];
    for (let b = first; b < first + count; b++) {
      const dx = a[4] + b * dxFloats * 4;
      new Float32Array(memory.buffer, dx, dxFloats).fill(0); // image b's part of dx, zeroed by the thread that sums into it
      if (a[18]) {
        gemm.gemmCol2im(
          a[0] + b * perImage * a[5] * 4,
          a[1],
          dx,
          scratch,
          perImage,
          a[5],
          a[7],
          a[8],
          a[9],
          a[10],
          a[11],
          a[12],
          a[13],
          a[14],
          a[15],
          a[16],
          a[17],
        );
        continue;
      }
      gemm.gemmPacked(a[0] + b * perImage * a[5] * 4, 0, a[5] * 4, a[1], scratch, perImage, a[5], n, a[6], a[6], 0, 0);
      simd.col2imAdd(scratch, a[4], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15], a[16], a[17], b * a[10], a[10]);
    }
  } else if (kind === 3) {
    const c = a[6];
    const co = a[9];
    const kw = a[11];
    for (let u = first; u < first + count; u++) {
      const fh = Math.floor(u / kw);
      const fw = u % kw;
      simd.conv2DFilterGradDirect(a[0], a[1], a[2] + u * c * co * 4, a[3], a[4], a[5], c, a[7], a[8], co, 1, 1, a[12], a[13], a[14] - fh, a[15] - fw);
    }
  } else if (kind === 4) {
    const inFloats = a[4] * a[5] * a[6];
    const outFloats = a[7] * a[8] * a[6];
    if (a[9]) new Float32Array(memory.buffer, a[3] + first * inFloats * 4, count * inFloats).fill(0);
    simd.maxPoolGrad2x2(
      a[0] + first * inFloats * 4,
      a[1] + first * outFloats * 4,
      a[2] + first * outFloats * 4,
      a[3] + first * inFloats * 4,
      count,
      a[4],
      a[5],
      a[6],
      a[7],
      a[8],
    );
  } else if (kind === 5) {
    convRowStarts(new Int32Array(memory.buffer, a[1] + first * 4, count), first, a[9], a[10], a[11], a[12], a[13], a[14], a[15]);
    conv.convProduct(a[0], a[1] + first * 4, a[2], a[3] + first * a[6] * 4, count, a[5], a[6], a[7], a[8]);
  } else if (kind === 6) {
    const inFloats = a[2] * a[3] * a[4];
    const outFloats = a[5] * a[6] * a[4];
    simd.maxPool2x2(a[0] + first * inFloats * 4, a[1] + first * outFloats * 4, count, a[2], a[3], a[4], a[5], a[6]);
  } else if (kind === 7) {
    const k = a[6];
    const n = a[7];
    for (let b = 0; b < a[12]; b++) {
      const bp = a[3] + b * a[14] + first * 8 * k * 4;
      if (a[15] && a[16]) gemm.packPanelsTransposed(a[15] + first * 8 * k * 4, bp, k, count * 8, k);
      else if (a[15]) gemm.packPanels(a[15] + first * 8 * 4, bp, k, count * 8, n);
      gemm.gemmPanels(a[0] + b * a[13], a[1], a[2], bp, a[4] + first * 8 * 4, a[5], k, count * 8, n, a[8], a[9], a[10], a[11] || b);
    }
  } else {
    throw new Error(`no job kind ${kind}`);
  }
}
