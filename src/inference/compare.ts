import * as tf from "@tensorflow/tfjs-core";
import { asGraph } from "../graph";
import { ModelLike, forward, paramShapes } from "../model";
import { valuesOf } from "../kernels/deferred";
import { median, msPerCall, roundTo } from "../measure";
import { LayerPath, SparseModel, StepTiming, compileSparseModel } from "./sparse-model";

export interface SparseBenchLayer {
  layer: string;
  sparsity: number;
  path: LayerPath;
  denseMs: number;
  sparseMs: number;
  /** denseMs × the layer's density: the time if the sparse path kept the dense kernel's speed per multiply-add. */
  flopBoundMs: number;
  /** sparseMs / flopBoundMs: how far the layer is from its FLOP bound (1 = at it). */
  overFlopBound: number;
}

export function paramTensors(spec: ModelLike, weights: Record<string, Float32Array>): Record<string, tf.Tensor> {
  return Object.fromEntries(paramShapes(spec).map((p) => [p.name, tf.tensor(weights[p.name], p.shape)]));
}

export interface DenseSparseComparison {
  denseSamplesPerSec: number;
  sparseSamplesPerSec: number;
  speedup: number;
  maxRelativeError: number;
  layers: SparseBenchLayer[];
}

/**
 * Pruned weights (exact zeros) through tfjs's dense kernels (model.ts's forward) and compiled for the sparse kernels
 * (calibrated at x's batch), timed side by side on x: `rounds` rounds alternating which goes first, each timing
 * covering enough passes (≥ ~20 ms) for the timer; then per-step profiles of both programs, also interleaved, summed
 * per conv/dense layer (its pool and the conversions into it included). Medians throughout. Images: a tensor, or
 * the first `count` images of a split.
 */
export function compareDenseSparse(
  spec: ModelLike,
  weights: Record<string, Float32Array>,
  images: tf.Tensor4D | { images: Float32Array; count: number },
  opts: { rounds?: number; params?: Record<string, tf.Tensor> } = {},
): DenseSparseComparison {
  if (!(images instanceof tf.Tensor)) {
    const shape = asGraph(spec).nodes[0].outputShape;
    const size = shape.reduce((a, b) => a * b, 1);
    const dims: number[] = [images.count, ...shape];
    const x: tf.Tensor = tf.tensor(images.images.subarray(0, images.count * size), dims);
    try {
      return compareDenseSparse(spec, weights, x as tf.Tensor4D, opts);
    } finally {
      x.dispose();
    }
  }
  const x = images;
  const rounds = opts.rounds ?? 15;
  const batch = x.shape[0];
  const params = opts.params ?? paramTensors(spec, weights);
  const sparse = compileSparseModel(spec, weights, { calibrationBatch: batch });
  let denseSteps: SparseModel;
  try {
    denseSteps = compileSparseModel(spec, weights, { paths: "dense" });
  } catch (err) {
    sparse.dispose();
    throw err;
  }
  try {
    const runDense = () => valuesOf(() => forward(spec, params, x));
    const runSparse = () => valuesOf(() => sparse.predict(x));
    const a = runDense();
    const b = runSparse();
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < a.length; i++) {
      diff = Math.max(diff, Math.abs(a[i] - b[i]));
      scale = Math.max(scale, Math.abs(a[i]));
    }
    const passes = Math.max(1, Math.ceil(20 / Math.max(msPerCall(runDense, 1), 1e-3)));
    const timed = (f: () => unknown) => msPerCall(f, passes);
    const dense: number[] = [];
    const sparseMs: number[] = [];
    for (let r = 0; r < rounds; r++) {
      if (r % 2 === 0) {
        dense.push(timed(runDense));
        sparseMs.push(timed(runSparse));
      } else {
        sparseMs.push(timed(runSparse));
        dense.push(timed(runDense));
      }
    }
    const profileRounds = Math.max(3, Math.ceil(rounds / 3));
    const denseProfiles: StepTiming[][] = [];
    const sparseProfiles: StepTiming[][] = [];
    for (let r = 0; r < profileRounds; r++) {
      denseProfiles.push(denseSteps.profile(x));
      sparseProfiles.push(sparse.profile(x));
    }
    const denseLayers = perLayer(denseProfiles);
    const sparseLayers = perLayer(sparseProfiles);
    return {
      denseSamplesPerSec: roundTo((1000 * batch) / median(dense), 1),
      sparseSamplesPerSec: roundTo((1000 * batch) / median(sparseMs), 1),
      speedup: roundTo(median(dense) / median(sparseMs), 2),
      maxRelativeError: Number((diff / Math.max(scale, 1e-12)).toExponential(2)),
      layers: sparse.layers.map((l) => {
        const denseMs = denseLayers.get(l.layer) ?? 0;
        const layerSparseMs = sparseLayers.get(l.layer) ?? 0;
        const flopBoundMs = denseMs * (l.nonzeros / l.weights);
        return {
          layer: l.layer,
          sparsity: roundTo(1 - l.nonzeros / l.weights, 4),
          path: l.path,
          denseMs: roundTo(denseMs, 3),
          sparseMs: roundTo(layerSparseMs, 3),
          flopBoundMs: roundTo(flopBoundMs, 3),
          overFlopBound: roundTo(layerSparseMs / flopBoundMs, 2),
        };
      }),
    };
  } finally {
    sparse.dispose();
    denseSteps.dispose();
    if (!opts.params) tf.dispose(Object.values(params));
  }
}

/** Median over profiles of each layer's summed step times. */
function perLayer(profiles: StepTiming[][]): Map<string, number> {
  const byLayer = new Map<string, number[]>();
  for (const profile of profiles) {
    const sums = new Map<string, number>();
    for (const s of profile) sums.set(s.layer, (sums.get(s.layer) ?? 0) + s.ms);
    for (const [layer, ms] of sums) byLayer.set(layer, [...(byLayer.get(layer) ?? []), ms]);
  }
  return new Map([...byLayer].map(([layer, ms]) => [layer, median(ms)]));
}
