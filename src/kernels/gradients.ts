import * as tf from "@tensorflow/tfjs-core";
import { makeBatchNormGradient, makeElementwiseGradient } from "./batch-norm-grad";

/**
 * tfjs-core's gradients of Mean and Sum broadcast the incoming gradient by multiplying it with a tensor of ones the
 * size of the input, filled element by element in JavaScript and copied into the backend (Mean then divides the
 * whole product by the reduced size): batch norm's statistics take two Means of every activation, so this was the
 * largest single cost of a training step with batch norm. x·1 = x exactly, and a division of equal numbers gives
 * equal quotients, so dividing the small gradient first and then broadcasting it (Tile) gives the same bits.
 */
function expandedGradient(dy: tf.Tensor, x: tf.Tensor, axis: number | number[]): tf.Tensor {
  const axes = tf.util.parseAxisParam(axis, x.shape);
  const expandedShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  return tf.reshape(dy, expandedShape);
}

const meanGradient: tf.GradConfig = {
  kernelName: tf.Mean,
  inputsToSave: ["x"],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved;
    const { axis } = attrs as unknown as tf.MeanAttrs;
    const axes = tf.util.parseAxisParam(axis, x.shape);
    const reduceSize = axes.reduce((n, a) => n * x.shape[a], 1);
    return { x: () => tf.broadcastTo(tf.div(expandedGradient(dy as tf.Tensor, x, axis), reduceSize), x.shape) };
  },
};

const sumGradient: tf.GradConfig = {
  kernelName: tf.Sum,
  inputsToSave: ["x"],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved;
    const { axis } = attrs as unknown as tf.SumAttrs;
    const derX = tf.broadcastTo(tf.cast(expandedGradient(dy as tf.Tensor, x, axis), "float32"), x.shape);
    return { x: () => derX };
  },
};

let tfjsGradients: tf.GradConfig[] | undefined;
let fastGradients: tf.GradConfig[] | undefined;

/**
 * Register tfjs-core's gradients of every kernel. Its Node build leaves them out; tfjs-layers' registers them all when
 * loaded (so does the tfjs package, which loads four packages more, 0.1 s of every start). Loaded here, on first use,
 * not with this module: the threads that only infer never load it.
 */
export function registerTfjsGradients(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- for its side effect, and only where gradients are taken
  require("@tensorflow/tfjs-layers");
}

/**
 * Register the gradients above and those of batch norm, Relu and Square (batch-norm-grad.ts) in place of tfjs-core's, for every backend (the
 * values are the same), or (`on` false: tests compare the two) put tfjs-core's back.
 */
export function useFastGradients(on = true): void {
  registerTfjsGradients();
  tfjsGradients ??= [tf.Mean, tf.Sum, tf.FusedBatchNorm, tf.Relu, tf.Square].map((name) => tf.getGradient(name));
  const [, , batchNorm, relu, square] = tfjsGradients;
  fastGradients ??= [meanGradient, sumGradient, makeBatchNormGradient(batchNorm), makeElementwiseGradient(relu), makeElementwiseGradient(square)];
  for (const config of on ? fastGradients : tfjsGradients) tf.registerGradient(config);
}
