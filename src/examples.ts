import * as tf from "@tensorflow/tfjs-core";
import { Split, formatShape } from "./data";
import { asGraph, classCount, inputShape } from "./graph";
import { ModelLike } from "./model";

/** A split of examples against the model that takes them: checked, then as tensors of the model's input shape. */

/**
 * Check that a split fits a model before any work: as many values per example as the model's input takes, and
 * labels below its class count. Throws naming `what`, the numbers and what was expected.
 */
export function checkSplitFits(model: ModelLike, split: Split, what = "data"): void {
  const graph = asGraph(model);
  const shape = inputShape(graph);
  const size = shape.reduce((a, b) => a * b, 1);
  if (split.shape.length !== shape.length || split.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`${what}: examples of shape ${formatShape(split.shape)}; model "${graph.name}" takes examples of shape [${shape}]`);
  }
  if (split.labels.length !== split.count || split.images.length !== split.count * size) {
    const perExample = split.count ? split.images.length / split.count : 0;
    throw new Error(
      `${what}: the split has ${split.count} examples, ${split.labels.length} labels and ${perExample} values per example; ` +
        `model "${graph.name}" takes examples of shape [${shape}] (${size} values)`,
    );
  }
  const classes = classCount(graph);
  const bad = split.labels.findIndex((l) => !(l >= 0 && l < classes));
  if (bad >= 0)
    throw new Error(`${what}: label ${split.labels[bad]} at example ${bad}; model "${graph.name}" has ${classes} classes (labels 0..${classes - 1})`);
}

/** The split as tensors shaped for this model's input: x [count, ...input shape], y [count]. */
export function splitTensors(model: ModelLike, split: Split, what = "data"): { x: tf.Tensor; y: tf.Tensor1D } {
  checkSplitFits(model, split, what);
  return { x: tf.tensor(split.images, [split.count, ...inputShape(asGraph(model))]), y: tf.tensor1d(split.labels, "int32") };
}
