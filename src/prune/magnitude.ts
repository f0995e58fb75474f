import { ModelLike } from "../model";
import { Mask, Weights, flatten, prunableLayout, unflatten } from "./mask";
import { range, selectSmallest } from "./select";

export type MagnitudeScope = "global" | "per-layer";

function checkSparsity(sparsity: number): void {
  if (!(sparsity >= 0 && sparsity <= 1)) throw new Error(`sparsity: expected a number in [0, 1], got ${sparsity}`);
}

/** round(s·n), with s·n first rounded to 12 significant digits so that e.g. 0.35·10 counts as 3.5, not 3.4999…. */
export function removedCount(n: number, sparsity: number): number {
  checkSparsity(sparsity);
  return Math.round(Number((sparsity * n).toPrecision(12)));
}

/** k = n − round(s·n): the number of weights a mask at sparsity s keeps (FW's kept count, so m₀ has exactly k ones). */
export function keptCount(n: number, sparsity: number): number {
  return n - removedCount(n, sparsity);
}

/**
 * Binary mask over a flat vector removing exactly round(s·n) entries: the smallest by |w|, ties by lower index
 * first. Expected O(n).
 */
export function magnitudeMaskFlat(weights: Float32Array, sparsity: number): Float32Array {
  const remove = removedCount(weights.length, sparsity);
  const idx = range(weights.length);
  selectSmallest(idx, remove, (a, b) => {
    const wa = Math.abs(weights[a]);
    const wb = Math.abs(weights[b]);
    return wa < wb || (wa === wb && a < b);
  });
  const mask = new Float32Array(weights.length).fill(1);
  for (let i = 0; i < remove; i++) mask[idx[i]] = 0;
  return mask;
}

/**
 * Magnitude pruning to sparsity s. "global" ranks all prunable weights together (flat index = spec order, then
 * row-major within a kernel) and removes exactly round(s·n); "per-layer" removes round(s·nₗ) from each kernel.
 */
export function magnitudeMask(spec: ModelLike, weights: Weights, sparsity: number, scope: MagnitudeScope = "global"): Mask {
  const layout = prunableLayout(spec);
  if (scope === "global") return unflatten(magnitudeMaskFlat(flatten(weights, layout, "weights"), sparsity), layout);
  if (scope !== "per-layer") throw new Error(`scope: expected "global" or "per-layer", got "${scope}"`);
  const out: Mask = {};
  for (const e of layout) {
    const w = weights[e.name];
    if (!w || w.length !== e.length) throw new Error(`weights["${e.name}"]: expected ${e.length} values, got ${w ? w.length : "none"}`);
    out[e.name] = magnitudeMaskFlat(w, sparsity);
  }
  return out;
}
