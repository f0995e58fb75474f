import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "./backend";
import { pixelsPerImage } from "./data";
import { datasetFor } from "./datasets";
import { loadConfig } from "./experiment/config";
import { planPretraining, planRuns } from "./experiment/plan";
import { loadCachedCheckpoint, pretrain } from "./experiment/pretrain";
import type { SideBySideLine } from "./inference/bench-line";
import { DenseSparseComparison, SparseBenchLayer, compareDenseSparse, paramTensors } from "./inference/compare";
import { inputShape } from "./graph";
import { loadModel } from "./graph/load";
import { encodeSparseWeights } from "./inference/export";
import { whenInferenceWorkersReady } from "./inference/split-predict";
import { valuesOf } from "./kernels";
import { magnitudePruned, median, msPerCall, roundTo } from "./measure";
import { disposeModel, forward, getWeights, specOf } from "./model";
import { mulberry32 } from "./random";
import { loadSparseModel } from "./runtime";

/** One line of `fwprune bench --sparse --json`. */
export interface SparseBenchLine extends SideBySideLine {
  model: "paper-cnn";
  pruning: "global magnitude";
  /** Per conv/dense layer, milliseconds per batch (its pool and the conversions into it included), medians. */
  layers: SparseBenchLayer[];
}

export interface SparseBenchOptions {
  sparsities?: number[];
  batches?: number[];
  /** Interleaved timing rounds per (sparsity, batch); the median counts. */
  rounds?: number;
  /** Pre-training epochs of the checkpoint (computed and cached in the data folder if missing). */
  budget?: number;
  dataDir: string;
  onLine?: (line: SparseBenchLine) => void;
  onStatus?: (message: string) => void;
}

/**
 * The paper CNN of the quick preset, seed 0, pre-trained `budget` epochs (the sweep's cached checkpoint, computed and
 * cached in dataDir if missing), and the preset's test split.
 */
export async function quickCheckpoint(dataDir: string, budget: number, onStatus?: (message: string) => void) {
  const config = loadConfig("quick");
  const plan = planPretraining(config, planRuns(config)).find((p) => p.inputs.seed === 0);
  if (!plan) throw new Error("the quick preset has no seed 0");
  onStatus?.(`checkpoint: quick preset, seed 0, epoch ${budget} (pre-trained now if not cached in ${dataDir})`);
  await pretrain({ ...plan, epochs: budget }, dataDir);
  const { model } = loadCachedCheckpoint(dataDir, plan.key, budget);
  const weights = getWeights(model);
  const spec = specOf(model);
  disposeModel(model);
  return { spec, weights, test: datasetFor(config.dataset).test };
}

/** A line's fields from a dense-vs-sparse comparison. */
function comparisonFields(compared: DenseSparseComparison, flopsSpeedup: number) {
  const { denseSamplesPerSec, sparseSamplesPerSec, speedup, maxRelativeError, layers } = compared;
  return { denseSamplesPerSec, sparseSamplesPerSec, speedup, flopsSpeedup, maxRelativeError, layers };
}

/**
 * The paper CNN of the quick preset (seed 0, pre-trained `budget` epochs, the sweep's cached checkpoint), pruned by
 * global magnitude to each sparsity, timed on the embedded test digits through tfjs's dense kernels (model.ts's
 * forward) and through the compiled sparse model, interleaved round by round so that load on the machine hits both.
 */
export async function runSparseBench(opts: SparseBenchOptions): Promise<SparseBenchLine[]> {
  const sparsities = opts.sparsities ?? [0.9, 0.95, 0.98];
  const batches = opts.batches ?? [1000, 1];
  const rounds = opts.rounds ?? 15;
  const budget = opts.budget ?? 2;
  for (const s of sparsities) if (!(s >= 0 && s < 1)) throw new Error(`--sparsities: expected numbers in [0, 1), got ${s}`);
  for (const b of batches) if (!Number.isInteger(b) || b < 1 || b > 2000) throw new Error(`--batches: expected integers in 1..2000, got ${b}`);
  if (!Number.isInteger(rounds) || rounds < 3) throw new Error(`--rounds: expected an integer ≥ 3, got ${rounds}`);
  if (!Number.isInteger(budget) || budget < 1 || budget > 10)
    throw new Error(`--budget: expected an integer in 1..10 (the quick preset's checkpoints), got ${budget}`);
  const backend = await initBackend(undefined, { quiet: true });
  if (backend !== "wasm") throw new Error(`bench --sparse times fwprune's wasm kernels; the backend is ${backend} (set FWPRUNE_BACKEND=wasm)`);
  await whenInferenceWorkersReady();

  const { spec, weights, test } = await quickCheckpoint(opts.dataDir, budget, opts.onStatus);
  const maxBatch = Math.max(...batches);
  if (test.count < maxBatch) throw new Error(`the quick preset's test split has ${test.count} images; batch ${maxBatch} needs more`);
  const images = tf.tensor4d(test.images.subarray(0, maxBatch * pixelsPerImage(test.shape)), [maxBatch, ...test.shape]);

  const lines: SparseBenchLine[] = [];
  try {
    for (const sparsity of sparsities) {
      const { pruned, flops } = magnitudePruned(spec, weights, sparsity);
      const flopsSpeedup = roundTo(flops.speedup, 2);
      const params = paramTensors(spec, pruned);
      try {
        for (const batch of batches) {
          opts.onStatus?.(`sparsity ${sparsity}, batch ${batch}: calibrating and timing`);
          const x = batch === maxBatch ? images : tf.slice(images, [0, 0, 0, 0], [batch, -1, -1, -1]);
          try {
            const compared = compareDenseSparse(spec, pruned, x, { rounds, params });
            const out: SparseBenchLine = {
              backend,
              model: "paper-cnn",
              checkpoint: `quick preset, seed 0, epoch ${budget}`,
              pruning: "global magnitude",
              sparsity,
              batch,
              ...comparisonFields(compared, flopsSpeedup),
            };
            lines.push(out);
            opts.onLine?.(out);
          } finally {
            if (x !== images) x.dispose();
          }
        }
      } finally {
        tf.dispose(Object.values(params));
      }
    }
  } finally {
    images.dispose();
  }
  return lines;
}

/** The readable summary `fwprune bench --sparse` prints without --json. */
export function formatSparseBenchLine(l: SparseBenchLine): string {
  const head = `sparsity ${l.sparsity}, batch ${l.batch}: dense ${l.denseSamplesPerSec.toFixed(0)} samples/s, sparse ${l.sparseSamplesPerSec.toFixed(0)} samples/s, ×${l.speedup.toFixed(2)} (FLOP bound ×${l.flopsSpeedup.toFixed(2)}; max relative error ${l.maxRelativeError})`;
  const rows = l.layers.map(
    (y) =>
      `  ${y.layer.padEnd(7)} ${(100 * y.sparsity).toFixed(1).padStart(5)}% sparse, ${y.path.padEnd(6)} dense ${y.denseMs.toFixed(2).padStart(7)} ms, sparse ${y.sparseMs.toFixed(2).padStart(7)} ms, FLOP bound ${y.flopBoundMs.toFixed(2).padStart(7)} ms (×${y.overFlopBound.toFixed(2)})`,
  );
  return [head, ...rows].join("\n");
}

/** One line of `fwprune bench --model M --sparse --json`: bench --sparse's fields, and the standalone runtime's. */
export interface ModelSparseBenchLine extends SideBySideLine {
  model: string;
  pruning: "global magnitude";
  layers: SparseBenchLayer[];
  /** The standalone runtime (src/runtime) on the model's .fwsparse, timed in rounds interleaved with the dense forward. */
  runtimeSamplesPerSec: number;
  runtimeSpeedup: number;
  runtimeMaxRelativeError: number;
}

/** max |a − b| / max |b|, rounded to 3 digits. */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let [diff, scale] = [0, 0];
  for (let i = 0; i < b.length; i++) [diff, scale] = [Math.max(diff, Math.abs(a[i] - b[i])), Math.max(scale, Math.abs(b[i]))];
  return Number((diff / Math.max(scale, 1e-12)).toExponential(2));
}

/**
 * `fwprune bench --model M --sparse`: the saved model's weights pruned by global magnitude to each sparsity, timed on
 * uniform random inputs of its shape through tfjs's dense kernels, fwprune's compiled sparse model (as bench --sparse)
 * and the standalone runtime on its .fwsparse, interleaved round by round.
 */
export async function runModelSparseBench(
  opts: Omit<SparseBenchOptions, "dataDir" | "budget" | "onLine"> & { modelFile: string; onLine?: (line: ModelSparseBenchLine) => void },
) {
  const sparsities = opts.sparsities ?? [0.9, 0.95, 0.98];
  const batches = opts.batches ?? [1000, 1];
  const rounds = opts.rounds ?? 15;
  for (const s of sparsities) if (!(s >= 0 && s < 1)) throw new Error(`--sparsities: expected numbers in [0, 1), got ${s}`);
  for (const b of batches) if (!Number.isInteger(b) || b < 1 || b > 2000) throw new Error(`--batches: expected integers in 1..2000, got ${b}`);
  if (!Number.isInteger(rounds) || rounds < 3) throw new Error(`--rounds: expected an integer ≥ 3, got ${rounds}`);
  const backend = await initBackend(undefined, { quiet: true });
  if (backend !== "wasm") throw new Error(`bench --sparse times fwprune's wasm kernels; the backend is ${backend} (set FWPRUNE_BACKEND=wasm)`);
  await whenInferenceWorkersReady();
  const model = loadModel(opts.modelFile);
  const { graph } = model;
  const weights = getWeights(model);
  disposeModel(model);
  const shape = inputShape(graph);
  const size = shape.reduce((a, b) => a * b, 1);
  const rand = mulberry32(0);
  const lines: ModelSparseBenchLine[] = [];
  for (const sparsity of sparsities) {
    const { pruned, flops } = magnitudePruned(graph, weights, sparsity);
    const flopsSpeedup = roundTo(flops.speedup, 2);
    const runtime = await loadSparseModel(encodeSparseWeights(graph, pruned));
    const params = paramTensors(graph, pruned);
    try {
      for (const batch of batches) {
        opts.onStatus?.(`sparsity ${sparsity}, batch ${batch}: calibrating and timing`);
        const examples = Float32Array.from({ length: batch * size }, () => rand());
        const x: tf.Tensor = tf.tensor(examples, [batch, ...shape]);
        try {
          const compared = compareDenseSparse(graph, pruned, x as tf.Tensor4D, { rounds, params });
          const runDense = () => valuesOf(() => forward(graph, params, x, { output: "output" }));
          const runRuntime = () => runtime.predict(examples, batch);
          const passes = Math.max(1, Math.ceil(20 / Math.max(msPerCall(runDense, 1), 1e-3)));
          const [dense, ours] = [[] as number[], [] as number[]];
          for (let r = 0; r < rounds; r++) {
            if (r % 2) ours.push(msPerCall(runRuntime, passes));
            dense.push(msPerCall(runDense, passes));
            if (!(r % 2)) ours.push(msPerCall(runRuntime, passes));
          }
          const line: ModelSparseBenchLine = {
            backend,
            model: graph.name,
            checkpoint: opts.modelFile,
            pruning: "global magnitude",
            sparsity,
            batch,
            ...comparisonFields(compared, flopsSpeedup),
            runtimeSamplesPerSec: roundTo((1000 * batch) / median(ours), 1),
            runtimeSpeedup: roundTo(median(dense) / median(ours), 2),
            runtimeMaxRelativeError: relativeError(runRuntime(), runDense()),
          };
          lines.push(line);
          opts.onLine?.(line);
        } finally {
          x.dispose();
        }
      }
    } finally {
      tf.dispose(Object.values(params));
    }
  }
  return lines;
}

export function formatModelSparseBenchLine(l: ModelSparseBenchLine): string {
  return (
    formatSparseBenchLine(l as unknown as SparseBenchLine) +
    `\n  runtime (the model's .fwsparse): ${l.runtimeSamplesPerSec.toFixed(0)} samples/s, ×${l.runtimeSpeedup.toFixed(2)} (max relative error ${l.runtimeMaxRelativeError})`
  );
}
