import * as tf from "@tensorflow/tfjs-core";
import { ConvPoolAttrs, MAX_POOL_TILES, SPARSE_CONV_POOL, SPARSE_SPMM, SpmmAttrs, TILES_TO_COLS } from "../kernels/sparse";
import { Csr } from "./csr";

/**
 * The layouts a compiled sparse model moves values in: tfjs's "std" [n, ...shape] (batch first), and the sparse
 * kernels' "tiles" [n/8, c, h, w, 8] (eight images innermost, so one output row of a convolution is a run of floats)
 * and "cols" [features, n] (images innermost). The batch is padded to a multiple of 8 in tiles and cols.
 */
export const TILE = 8;
export type Layout = "std" | "tiles" | "cols";

export interface CsrTensors {
  rowPtr: tf.Tensor1D;
  idx: tf.Tensor1D;
  vals: tf.Tensor1D;
}

export function csrTensors(csr: Csr): CsrTensors {
  return {
    rowPtr: tf.tensor1d(csr.rowPtr, "int32"),
    idx: tf.tensor1d(csr.idx, "int32"),
    vals: tf.tensor1d(csr.vals, "float32"),
  };
}

export const ceilTile = (n: number) => Math.ceil(n / TILE) * TILE;

/** The tensor shape of a value of per-example shape `shape` in `layout` for a batch of n. */
export function layoutShape(layout: Layout, shape: number[], n: number): number[] {
  if (layout === "std") return [n, ...shape];
  if (layout === "tiles") return [ceilTile(n) / TILE, shape[2], shape[0], shape[1], TILE];
  return [shape[0], ceilTile(n)];
}

function toTiles(x: tf.Tensor, n: number): tf.Tensor {
  const [, h, w, c] = x.shape;
  const padded = ceilTile(n);
  const full =
    padded > n
      ? tf.pad(x, [
          [0, padded - n],
          [0, 0],
          [0, 0],
          [0, 0],
        ])
      : x;
  return tf.transpose(tf.reshape(full, [padded / TILE, TILE, h, w, c]), [0, 4, 2, 3, 1]);
}

function fromTiles(x: tf.Tensor, n: number): tf.Tensor {
  const [t, c, h, w] = x.shape;
  const nhwc = tf.reshape(tf.transpose(x, [0, 4, 2, 3, 1]), [t * TILE, h, w, c]);
  return t * TILE > n ? tf.slice(nhwc, [0, 0, 0, 0], [n, -1, -1, -1]) : nhwc;
}

function toCols(x: tf.Tensor, n: number): tf.Tensor {
  const cols = tf.transpose(x);
  const padded = ceilTile(n);
  return padded > n
    ? tf.pad(cols, [
        [0, 0],
        [0, padded - n],
      ])
    : cols;
}

function fromCols(x: tf.Tensor, n: number): tf.Tensor {
  const rows = tf.transpose(x);
  return rows.shape[0] > n ? tf.slice(rows, [0, 0], [n, -1]) : rows;
}

/** The conversion between std and a sparse layout (tiles for images [h, w, c], cols for features). */
export function conversion(from: Layout, to: Layout): (x: tf.Tensor, n: number) => tf.Tensor {
  if (from === "std") return to === "tiles" ? toTiles : toCols;
  if (to !== "std") throw new Error(`no direct conversion ${from}→${to}`);
  return from === "tiles" ? fromTiles : fromCols;
}

/** tiles [t, c, h, w, 8] → cols [h·w·c, 8t]: the features in flatten's (h, w, c) order. */
export function tilesToCols(x: tf.Tensor): tf.Tensor {
  return tf.engine().runKernel(TILES_TO_COLS, { x } as unknown as tf.NamedTensorMap, {}) as tf.Tensor;
}

/** The 2×2 stride-2 valid max pool over tiles. */
export function maxPoolTiles(x: tf.Tensor): tf.Tensor {
  return tf.engine().runKernel(MAX_POOL_TILES, { x } as unknown as tf.NamedTensorMap, {}) as tf.Tensor;
}

/** A sparse layer's weights: the CSR of its kernel over output channels, and its bias. */
export interface SparseWeights {
  csr: CsrTensors;
  bias: tf.Tensor1D;
  relu: boolean;
}

/** A valid stride-1 convolution (square kernel k) and the 2×2 max pool after it, over tiles [c, h, w] in. */
export function convPoolSparse(layer: SparseWeights, input: number[], k: number, channels: number, x: tf.Tensor): tf.Tensor {
  const [h, w, c] = input;
  const attrs: ConvPoolAttrs = { input: [c, h, w], kernel: k, channels, relu: layer.relu };
  const { csr, bias } = layer;
  const inputs = { x, rowPtr: csr.rowPtr, idx: csr.idx, vals: csr.vals, bias } as unknown as tf.NamedTensorMap;
  return tf.engine().runKernel(SPARSE_CONV_POOL, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
}

/** A valid stride-1 convolution over tiles: input [h, w, c] → output [oh, ow, oc]. */
export function convSparse(layer: SparseWeights, input: number[], output: number[], x: tf.Tensor): tf.Tensor {
  const [ih, iw, ic] = input;
  const [oh, ow, oc] = output;
  const t = x.shape[0];
  const bytes = TILE * 4;
  const attrs: SpmmAttrs = {
    outShape: [t, oc, oh, ow, TILE],
    rows: oc,
    inTile: ic * ih * iw * bytes,
    outTile: oc * oh * ow * bytes,
    inSeg: iw * bytes,
    outSeg: ow * bytes,
    outRow: oh * ow * bytes,
    scale: bytes,
    relu: layer.relu,
    passes: [{ inOffset: 0, outOffset: 0, tiles: t, segs: oh, segVecs: (ow * TILE) / 4 }],
  };
  return runSpmm(x, layer, attrs);
}

/** Columns per segment of a dense layer: 8 vectors, the accumulators of spmm's widest chunk. */
const DENSE_BLOCK = 32;

/** A dense layer over cols [inputs, n] → [units, n]. */
export function denseSparse(layer: SparseWeights, units: number, x: tf.Tensor): tf.Tensor {
  const padded = x.shape[1] as number;
  const full = Math.floor(padded / DENSE_BLOCK);
  const rest = padded - full * DENSE_BLOCK;
  const passes = [];
  if (full > 0) passes.push({ inOffset: 0, outOffset: 0, tiles: 1, segs: full, segVecs: DENSE_BLOCK / 4 });
  if (rest > 0) passes.push({ inOffset: full * DENSE_BLOCK * 4, outOffset: full * DENSE_BLOCK * 4, tiles: 1, segs: 1, segVecs: rest / 4 });
  const attrs: SpmmAttrs = {
    outShape: [units, padded],
    rows: units,
    inTile: 0,
    outTile: 0,
    inSeg: DENSE_BLOCK * 4,
    outSeg: DENSE_BLOCK * 4,
    outRow: padded * 4,
    scale: padded * 4,
    relu: layer.relu,
    passes,
  };
  return runSpmm(x, layer, attrs);
}

function runSpmm(x: tf.Tensor, layer: SparseWeights, attrs: SpmmAttrs): tf.Tensor {
  const { csr, bias } = layer;
  const inputs = { x, rowPtr: csr.rowPtr, idx: csr.idx, vals: csr.vals, bias } as unknown as tf.NamedTensorMap;
  return tf.engine().runKernel(SPARSE_SPMM, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
}
