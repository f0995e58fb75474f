// Helpers of the inference tests: comparing logits, pruning by magnitude, tfjs's dense forward as the reference.
import * as tf from "@tensorflow/tfjs";
import { magnitudePruned } from "../src/measure";
import { asGraph, inputShape } from "../src/graph";
import { ModelLike, ModelSpec, forward, paramShapes } from "../src/model";

/** max |a − b| / max |b|. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / Math.max(scale, 1e-12);
}

/** The weights with the smallest magnitudes (globally) set to exact zeros. */
export function pruned(spec: ModelSpec, weights: Record<string, Float32Array>, sparsity: number): Record<string, Float32Array> {
  return magnitudePruned(spec, weights, sparsity).pruned;
}

/** Logits of model.ts's dense forward (tfjs ops on the current backend) for n images [n, h, w, c]. */
export function denseLogits(spec: ModelLike, weights: Record<string, Float32Array>, images: Float32Array | tf.Tensor4D, n?: number): Float32Array {
  return tf.tidy(() => {
    const params = Object.fromEntries(paramShapes(spec).map((p) => [p.name, tf.tensor(weights[p.name], p.shape)]));
    const x = images instanceof tf.Tensor ? images : tf.tensor4d(images, [n as number, ...inputShape(asGraph(spec))] as [number, number, number, number]);
    return forward(spec, params, x).dataSync() as Float32Array;
  });
}
