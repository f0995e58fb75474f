import * as tf from "@tensorflow/tfjs";
import { Split } from "../data";
import { Model, Params, forward, getWeights, specOf } from "../model";
import { lossOf } from "../train";
import { MaskOracleOptions, minibatchStream } from "./cnn-oracle";
import { FwOracle } from "./frank-wolfe";
import { GroupLayout, groupCount, groupLayout } from "./groups";

export interface GroupOracle extends FwOracle {
  layout: GroupLayout;
  lossAt(m: Float32Array): number;
  dispose(): void;
}

/**
 * The FW oracle on a CNN's group mask: F(m) = L(W(m)) on a minibatch, where group g's kernel column and bias are
 * θ_g · m_g. Its gradient is ∂F/∂m_g = Σ_{i ∈ g} θᵢ ∂L/∂wᵢ (kernel column and bias): the sum of the weight-level mask
 * gradients over the group, computed by one backward pass with respect to m itself. Same minibatches as the
 * weight-level oracle (same seed, same stream).
 */
export function cnnGroupOracle(model: Model, split: Split, opts: MaskOracleOptions): GroupOracle {
  const spec = specOf(model);
  const layout = groupLayout(spec);
  const n = groupCount(layout);
  const weights = getWeights(model);
  const fixed: Params = {};
  const grouped = new Set(layout.flatMap((g) => [g.kernel, g.bias]));
  for (const [name, v] of Object.entries(model.params)) if (!grouped.has(name)) fixed[name] = v;
  const kernels = layout.map((g) => tf.tensor(weights[g.kernel], g.kernelShape));
  const biases = layout.map((g) => tf.tensor1d(weights[g.bias]));
  const batches = minibatchStream(split, opts.batchSize, opts.seed);
  const groupTensors = (m: Float32Array) => layout.map((g) => tf.tensor1d(m.subarray(g.offset, g.offset + g.count)));
  const paramsWith = (ms: tf.Tensor[]): Params => {
    const p: Params = { ...fixed };
    layout.forEach((g, l) => {
      p[g.kernel] = tf.mul(kernels[l], ms[l]); // broadcast over the last axis: one factor per filter / neuron
      p[g.bias] = tf.mul(biases[l], ms[l]);
    });
    return p;
  };
  const checkLength = (m: Float32Array) => {
    if (m.length !== n) throw new Error(`group mask vector: expected ${n} entries, got ${m.length}`);
  };
  return {
    n,
    layout,
    evaluate(m, t) {
      checkLength(m);
      const { x, y } = batches.draw(t);
      const [value, g] = tf.tidy(() => {
        const f = (...ms: tf.Tensor[]) => lossOf(forward(spec, paramsWith(ms), x), y, opts.loss);
        const { value, grads } = tf.valueAndGrads(f)(groupTensors(m));
        return [value, tf.concat(grads)];
      });
      const loss = value.dataSync()[0];
      const grad = g.dataSync() as Float32Array;
      tf.dispose([value, g]);
      return { loss, grad, samples: x.shape[0] };
    },
    lossAt(m) {
      checkLength(m);
      const { x, y } = batches.current();
      return tf.tidy(() => lossOf(forward(spec, paramsWith(groupTensors(m)), x), y, opts.loss).dataSync()[0]);
    },
    dispose() {
      tf.dispose([...kernels, ...biases]);
      batches.dispose();
    },
  };
}
