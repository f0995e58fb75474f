/** One line of `fwprune bench --browser --json`: `bench --sparse --json`'s fields, measured in the demo page, plus what each side downloads. */
export interface BrowserBenchLine {
  backend: string;
  model: string;
  checkpoint: string;
  pruning: string;
  sparsity: number;
  batch: number;
  denseSamplesPerSec: number;
  sparseSamplesPerSec: number;
  speedup: number;
  flopsSpeedup: number;
  maxRelativeError: number;
  /** The runtime's kernel per layer with weights (its timings per layer are not measured in the page). */
  layers: { layer: string; path: string; weights: number; nonzeros: number }[];
  /** Gzipped bytes: the code (tfjs bundle + its wasm binary; the runtime bundle) and the model files, per side. */
  runtimeBytes: { dense: number; sparse: number };
  modelBytes: { dense: number; sparse: number };
  userAgent: string;
}
