import * as tf from "@tensorflow/tfjs";
import { Split } from "../data";
import { checkSplitFits } from "../examples";
import { Model, Params, forward, getWeights } from "../model";
import { deriveSeed, shuffledIndices } from "../random";
import { LossKind, lossOf, minibatch } from "../train";
import { FwOracle } from "./frank-wolfe";
import { Layout, flatten, prunableLayout } from "./mask";

export interface MaskOracleOptions {
  batchSize: number;
  seed: number;
  loss: LossKind;
}

export interface MaskOracle extends FwOracle {
  /** The checkpoint's prunable weights θ, flat, in layout order. */
  theta: Float32Array;
  layout: Layout;
  lossAt(m: Float32Array): number;
  dispose(): void;
}

/**
 * The FW oracle on a model's mask: F(m) = L(θ ⊙ m) on a minibatch (inference mode: BN uses its moving statistics); gradient gₜ = θ ⊙ ∇_w L(w) at w = θ ⊙ mₜ (one
 * backward pass). Minibatch t is slice t of seeded shuffles of the split (without replacement within a pass),
 * so every method with the same seed sees the same minibatches.
 */
export function cnnMaskOracle(model: Model, split: Split, opts: MaskOracleOptions): MaskOracle {
  const spec = model.graph;
  checkSplitFits(spec, split, "FW minibatches");
  const layout = prunableLayout(spec);
  const theta = flatten(getWeights(model), layout, "checkpoint weights");
  const thetaTensors = layout.map((e) => tf.tensor(theta.subarray(e.offset, e.offset + e.length), e.shape));
  const fixed: Params = {};
  for (const [name, v] of Object.entries(model.params)) if (!layout.some((e) => e.name === name)) fixed[name] = v;
  const batches = minibatchStream(split, opts.batchSize, opts.seed);
  const maskedWeights = (m: Float32Array) =>
    layout.map((e, l) => tf.mul(thetaTensors[l], tf.tensor(m.subarray(e.offset, e.offset + e.length), e.shape)));
  const paramsWith = (ws: tf.Tensor[]): Params => {
    const p: Params = { ...fixed };
    layout.forEach((e, l) => (p[e.name] = ws[l]));
    return p;
  };
  const checkLength = (m: Float32Array) => {
    if (m.length !== theta.length) throw new Error(`mask vector: expected ${theta.length} entries, got ${m.length}`);
  };

  return {
    n: theta.length,
    theta,
    layout,
    evaluate(m, t) {
      checkLength(m);
      const { x, y } = batches.draw(t);
      const [value, g] = tf.tidy(() => {
        const f = (...ws: tf.Tensor[]) => lossOf(forward(spec, paramsWith(ws), x), y, opts.loss);
        const { value, grads } = tf.valueAndGrads(f)(maskedWeights(m));
        return [value, tf.concat(layout.map((_, l) => tf.reshape(tf.mul(thetaTensors[l], grads[l]), [-1])))];
      });
      // read back outside tidy: tidy walks a returned typed array entry by entry (~50 ms for 225k entries)
      const loss = value.dataSync()[0];
      const grad = g.dataSync() as Float32Array;
      tf.dispose([value, g]);
      return { loss, grad, samples: x.shape[0] };
    },
    lossAt(m) {
      checkLength(m);
      const { x, y } = batches.current();
      return tf.tidy(() => lossOf(forward(spec, paramsWith(maskedWeights(m)), x), y, opts.loss).dataSync()[0]);
    },
    dispose() {
      tf.dispose(thetaTensors);
      batches.dispose();
    },
  };
}

export interface MinibatchStream {
  /** Minibatch t (the previous one is disposed). */
  draw(t: number): { x: tf.Tensor4D; y: tf.Tensor1D };
  /** The last minibatch drawn. */
  current(): { x: tf.Tensor4D; y: tf.Tensor1D };
  dispose(): void;
}

/**
 * The FW oracles' minibatches: minibatch t is slice t of seeded shuffles of the split (without replacement within a
 * pass), so every method with the same seed sees the same minibatches.
 */
export function minibatchStream(split: Split, requestedBatchSize: number, seed: number): MinibatchStream {
  const batchSize = Math.min(requestedBatchSize, split.count);
  if (!(batchSize >= 1)) throw new Error(`batchSize: expected ≥ 1 (and a non-empty split), got ${requestedBatchSize} with ${split.count} samples`);
  const batchesPerPass = Math.floor(split.count / batchSize);
  let pass = -1;
  let order = new Int32Array(0);
  let batch: { x: tf.Tensor4D; y: tf.Tensor1D } | undefined;
  return {
    draw(t) {
      const p = Math.floor(t / batchesPerPass);
      if (p !== pass) {
        pass = p;
        order = shuffledIndices(split.count, deriveSeed(seed, `fw/minibatch/${p}`));
      }
      const j = t % batchesPerPass;
      const idx = order.subarray(j * batchSize, (j + 1) * batchSize);
      if (batch) tf.dispose([batch.x, batch.y]);
      const [x, y] = minibatch(split, idx);
      batch = { x, y };
      return batch;
    },
    current() {
      if (!batch) throw new Error("lossAt: call evaluate() first (it draws the minibatch)");
      return batch;
    },
    dispose() {
      if (batch) tf.dispose([batch.x, batch.y]);
      batch = undefined;
    },
  };
}
