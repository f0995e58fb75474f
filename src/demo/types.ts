// What the demo server, the page and bench --browser share (types only: the page is compiled for the browser).
import type { SideBySideLine } from "../inference/bench-line";

/** What the demo page is told about its model (info.json, less the bytes). */
export interface DemoInfo {
  model: string;
  checkpoint: string;
  pruning: string;
  sparsity: number;
  /** Dense multiply-adds over those left on the non-zero weights. */
  flopsSpeedup: number;
  /** Over the whole test split, through the runtime in Node. */
  testAccuracy: number;
  digits: { count: number; labels: number[] };
}

/** What each side downloads, gzipped (level 9): its code (JS + wasm) and its model files. */
export interface DemoBytes {
  runtime: { dense: number; sparse: number };
  model: { dense: number; sparse: number };
  files: Record<string, number>;
}

/** One line of `fwprune bench --browser --json`: `bench --sparse --json`'s fields, measured in the demo page, plus what each side downloads. */
export interface BrowserBenchLine extends SideBySideLine {
  model: string;
  pruning: string;
  /** The runtime's kernel per layer with weights (its timings per layer are not measured in the page). */
  layers: { layer: string; path: string; weights: number; nonzeros: number }[];
  /** Gzipped bytes: the code (tfjs bundle + its wasm binary; the runtime bundle) and the model files, per side. */
  runtimeBytes: { dense: number; sparse: number };
  modelBytes: { dense: number; sparse: number };
  userAgent: string;
}
