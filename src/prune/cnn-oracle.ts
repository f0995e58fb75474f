import * as tf from "@tensorflow/tfjs-core";
import { Split } from "../data";
import { checkSplitFits } from "../examples";
import { readFloatsInto } from "../kernels/deferred";
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
 * How a mask vector becomes the model's parameters: all that differs between the weight-level and the group oracle.
 * The functions run inside the oracle's tidy.
 */
export interface MaskToWeights {
  /** The mask's length. */
  n: number;
  /** What the mask is called in errors ("mask vector", "group mask vector"). */
  what: string;
  /** The tensors the gradient is taken with respect to, at mask m. */
  inputs(m: Float32Array): tf.Tensor[];
  /** The parameters the forward pass takes, from those tensors (the others: the model's own). */
  params(inputs: tf.Tensor[]): Params;
  /** ∂F/∂m, flat, from the gradients with respect to the inputs. */
  maskGradient(grads: tf.Tensor[]): tf.Tensor;
  /** Frees what the mapping holds. */
  dispose(): void;
}

/**
 * The FW oracle on a mask: F(m) = L(W(m)) on a minibatch (inference mode: BN uses its moving statistics), with its
 * gradient from one backward pass. Minibatch t is slice t of seeded shuffles of the split (without replacement within
 * a pass), so every method with the same seed sees the same minibatches.
 */
export function maskOracle(
  model: Model,
  split: Split,
  opts: MaskOracleOptions,
  map: MaskToWeights,
): FwOracle & { lossAt(m: Float32Array): number; dispose(): void } {
  const graph = model.graph;
  checkSplitFits(graph, split, "FW minibatches");
  const batches = minibatchStream(split, opts.batchSize, opts.seed);
  const checkLength = (m: Float32Array) => {
    if (m.length !== map.n) throw new Error(`${map.what}: expected ${map.n} entries, got ${m.length}`);
  };
  return {
    n: map.n,
    evaluate(m, t, into) {
      checkLength(m);
      const { x, y } = batches.draw(t);
      const [value, g] = tf.tidy(() => {
        const f = (...inputs: tf.Tensor[]) => lossOf(forward(graph, map.params(inputs), x), y, opts.loss);
        const { value, grads } = tf.valueAndGrads(f)(map.inputs(m));
        return [value, map.maskGradient(grads)];
      });
      // read back outside tidy: tidy walks a returned typed array entry by entry (~50 ms for 225k entries)
      const loss = value.dataSync()[0];
      const grad = into ? readFloatsInto(g, into) : (g.dataSync() as Float32Array);
      tf.dispose([value, g]);
      return { loss, grad, samples: x.shape[0] };
    },
    lossAt(m) {
      checkLength(m);
      const { x, y } = batches.current();
      return tf.tidy(() => lossOf(forward(graph, map.params(map.inputs(m)), x), y, opts.loss).dataSync()[0]);
    },
    dispose() {
      map.dispose();
      batches.dispose();
    },
  };
}

/**
 * The FW oracle on a model's weight mask: F(m) = L(θ ⊙ m); gradient gₜ = θ ⊙ ∇_w L(w) at w = θ ⊙ mₜ (the gradient is
 * taken with respect to the masked weights w themselves).
 */
export function cnnMaskOracle(model: Model, split: Split, opts: MaskOracleOptions): MaskOracle {
  const layout = prunableLayout(model.graph);
  const theta = flatten(getWeights(model), layout, "checkpoint weights");
  const thetaTensors = layout.map((e) => tf.tensor(theta.subarray(e.offset, e.offset + e.length), e.shape));
  const fixed: Params = {};
  for (const [name, v] of Object.entries(model.params)) if (!layout.some((e) => e.name === name)) fixed[name] = v;
  const oracle = maskOracle(model, split, opts, {
    n: theta.length,
    what: "mask vector",
    inputs: (m) => layout.map((e, l) => tf.mul(thetaTensors[l], tf.tensor(m.subarray(e.offset, e.offset + e.length), e.shape))),
    params: (ws) => {
      const p: Params = { ...fixed };
      layout.forEach((e, l) => (p[e.name] = ws[l]));
      return p;
    },
    maskGradient: (grads) => tf.concat(layout.map((_, l) => tf.reshape(tf.mul(thetaTensors[l], grads[l]), [-1]))),
    dispose: () => tf.dispose(thetaTensors),
  });
  return { ...oracle, theta, layout };
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
