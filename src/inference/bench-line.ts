/**
 * What a dense-vs-sparse timing line says, wherever it is measured: `fwprune bench --sparse` in Node and
 * `fwprune bench --browser` in the demo page (types only, so that the page, compiled for the browser, can share it).
 */
export interface SideBySideLine {
  backend: string;
  /** The checkpoint pruned: the quick preset's dense pre-training, seed 0, after `budget` epochs. */
  checkpoint: string;
  sparsity: number;
  batch: number;
  denseSamplesPerSec: number;
  sparseSamplesPerSec: number;
  /** sparse / dense samples per second, measured side by side (interleaved rounds, medians). */
  speedup: number;
  /** Dense multiply-adds / those left on the non-zero weights: what a perfect sparse kernel would give. */
  flopsSpeedup: number;
  /** max |sparse − dense| / max |dense| over the timed logits. */
  maxRelativeError: number;
}
