import * as tf from "@tensorflow/tfjs-core";
import { Identity, readContainer, writeContainer } from "../container";
import { asGraph, prunableParams } from "../graph";
import { Model, ModelLike, getWeights, modelFromWeights } from "../model";

/** One binary mask per prunable kernel (1 = kept, 0 = pruned), keyed by kernel name, same length as the kernel. */
export type Mask = Record<string, Float32Array>;
export type Weights = Record<string, Float32Array>;

/** Where each prunable kernel sits in the flat vector of all prunable weights (graph order). */
export interface LayoutEntry {
  name: string;
  offset: number;
  length: number;
  shape: number[];
}
export type Layout = LayoutEntry[];

/** The graph's prunable kernels (conv, depthwise, pointwise, dense), laid end to end. */
export function prunableLayout(model: ModelLike): Layout {
  const out: Layout = [];
  let offset = 0;
  for (const p of prunableParams(asGraph(model))) {
    out.push({ name: p.name, offset, length: p.size, shape: p.shape });
    offset += p.size;
  }
  return out;
}

export function layoutSize(layout: Layout): number {
  return layout.reduce((n, e) => n + e.length, 0);
}

/** Concatenate per-kernel arrays (a mask or weights) into one flat vector, in layout order. */
export function flatten(record: Record<string, Float32Array>, layout: Layout, what = "record"): Float32Array {
  const out = new Float32Array(layoutSize(layout));
  for (const e of layout) {
    const values = record[e.name];
    if (!values || values.length !== e.length) {
      throw new Error(`${what}["${e.name}"]: expected ${e.length} values, got ${values ? values.length : "none"}`);
    }
    out.set(values, e.offset);
  }
  return out;
}

/** Split a flat vector back into per-kernel arrays (copies). */
export function unflatten(flat: Float32Array, layout: Layout): Record<string, Float32Array> {
  if (flat.length !== layoutSize(layout)) throw new Error(`flat vector has ${flat.length} entries; layout expects ${layoutSize(layout)}`);
  const out: Record<string, Float32Array> = {};
  for (const e of layout) out[e.name] = flat.slice(e.offset, e.offset + e.length);
  return out;
}

/** Keep everything. */
export function fullMask(spec: ModelLike): Mask {
  const out: Mask = {};
  for (const e of prunableLayout(spec)) out[e.name] = new Float32Array(e.length).fill(1);
  return out;
}

/** 1 where the weight is non-zero, 0 where it is exactly zero, for every prunable kernel. */
export function maskFromWeights(spec: ModelLike, weights: Weights): Mask {
  const out: Mask = {};
  for (const e of prunableLayout(spec)) {
    const w = weights[e.name];
    if (!w || w.length !== e.length) throw new Error(`weights["${e.name}"]: expected ${e.length} values, got ${w ? w.length : "none"}`);
    out[e.name] = w.map((x) => (x !== 0 ? 1 : 0));
  }
  return out;
}

function checkMask(mask: Mask, weights: Weights): void {
  for (const [name, m] of Object.entries(mask)) {
    const w = weights[name];
    if (!w) throw new Error(`mask names "${name}", which is not among the weights (${Object.keys(weights).join(", ")})`);
    if (w.length !== m.length) throw new Error(`mask["${name}"] has ${m.length} entries; expected ${w.length}`);
  }
}

/** w ⊙ mask for every kernel the mask names; other weights are copied unchanged. */
export function applyMaskToWeights(weights: Weights, mask: Mask): Weights {
  checkMask(mask, weights);
  const out: Weights = {};
  for (const [name, w] of Object.entries(weights)) {
    const m = mask[name];
    out[name] = m ? w.map((x, i) => (m[i] !== 0 ? x * m[i] : 0)) : w.slice();
  }
  return out;
}

/** A new model whose weights are the checkpoint's with the mask folded in (pruned entries exactly 0). */
export function applyMask(model: Model, mask: Mask): Model {
  return modelFromWeights(model.spec ?? model.graph, applyMaskToWeights(getWeights(model), mask));
}

export interface SparsityReport {
  /** Fraction of exact zeros over all prunable entries. */
  global: number;
  perLayer: Record<string, number>;
  zeros: number;
  total: number;
}

function sparsityOf(arrays: [string, Float32Array][]): SparsityReport {
  const perLayer: Record<string, number> = {};
  let zeros = 0;
  let total = 0;
  for (const [name, a] of arrays) {
    let z = 0;
    for (let i = 0; i < a.length; i++) if (a[i] === 0) z++;
    perLayer[name] = a.length ? z / a.length : 0;
    zeros += z;
    total += a.length;
  }
  return { global: total ? zeros / total : 0, perLayer, zeros, total };
}

/** Sparsity measured on the WEIGHTS (exact zeros in conv/dense kernels; biases excluded): what a model really is. */
export function weightSparsity(model: Model): SparsityReport {
  return sparsityOfWeights(model.graph, getWeights(model));
}

export function sparsityOfWeights(spec: ModelLike, weights: Weights): SparsityReport {
  return sparsityOf(
    prunableLayout(spec).map((e) => {
      const w = weights[e.name];
      if (!w || w.length !== e.length) throw new Error(`weights["${e.name}"]: expected ${e.length} values, got ${w ? w.length : "none"}`);
      return [e.name, w];
    }),
  );
}

/** Sparsity of a mask: the fraction of its entries that are 0. */
export function maskSparsity(mask: Mask): SparsityReport {
  return sparsityOf(Object.entries(mask));
}

/** The mask file that belongs to a checkpoint file. */
export function maskFileFor(checkpointFile: string): string {
  return `${checkpointFile}.mask`;
}

/**
 * A mask file: a container file (src/container.ts) of kind "mask", one bool tensor (a byte, 0 or 1) per kernel, its
 * identity (what it belongs to, e.g. {pretrainKey, epoch, method}) and `meta` in the header. Written atomically.
 * Only binary masks can be saved.
 */
export async function saveMask(file: string, mask: Mask, identity: Identity = {}, meta: Record<string, unknown> = {}): Promise<void> {
  const tensors: tf.NamedTensorMap = {};
  try {
    for (const [name, m] of Object.entries(mask)) {
      const bad = m.findIndex((v) => v !== 0 && v !== 1);
      if (bad >= 0) throw new Error(`saveMask ${file}: mask["${name}"][${bad}] = ${m[bad]}; expected 0 or 1`);
      tensors[name] = tf.tensor1d(Uint8Array.from(m), "bool");
    }
    await writeContainer(file, "mask", identity, tensors, { meta });
  } finally {
    tf.dispose(Object.values(tensors));
  }
}

/** A mask file, verified; with `identity`, it must say it belongs to that. Throws naming the file. */
export function loadMask(file: string, identity?: Identity): { mask: Mask; meta: Record<string, unknown>; identity: Identity } {
  const { header, arrays } = readContainer(file, { kind: "mask", identity });
  const mask: Mask = {};
  for (const [name, values] of Object.entries(arrays)) mask[name] = Float32Array.from(values);
  return { mask, meta: (header.info as { meta: Record<string, unknown> }).meta, identity: header.identity };
}
