import * as tf from "@tensorflow/tfjs-core";
import { Split } from "../data";
import { channelGroups } from "../graph";
import { Model, Params, getWeights } from "../model";
import { MaskOracleOptions, maskOracle } from "./cnn-oracle";
import { FwOracle } from "./frank-wolfe";
import { GroupLayout } from "./groups";

export interface GroupOracle extends FwOracle {
  layout: GroupLayout;
  lossAt(m: Float32Array): number;
  dispose(): void;
}

/**
 * The FW oracle on a model's group mask: F(m) = L(W(m)) on a minibatch, where every parameter slice that computes
 * group g's channels (its filters' kernel columns, biases, BN's scale, shift and moving mean) is θ_g · m_g. Its gradient is
 * ∂F/∂m_g = Σ_{i ∈ g} θᵢ ∂L/∂wᵢ over those slices (for the paper CNN: kernel column and bias): the sum of the
 * weight-level mask gradients over the group, computed by one backward pass with respect to m itself. Same
 * minibatches as the weight-level oracle (same seed, same stream).
 */
export function cnnGroupOracle(model: Model, split: Split, opts: MaskOracleOptions): GroupOracle {
  const graph = model.graph;
  const { families: layout, count: n, params } = channelGroups(graph);
  // BN's moving mean is scaled too (not its variance), so that m_g = 0 zeroes a BN without scale or center as well
  const variances = new Set(graph.params.filter((p) => p.role === "moving-variance").map((p) => p.name));
  const scaled = params.filter((p) => !variances.has(p.param) && p.axes.some((a) => a.produces));
  const weights = getWeights(model);
  const fixed: Params = {};
  for (const [name, v] of Object.entries(model.params)) if (!scaled.some((p) => p.param === name)) fixed[name] = v;
  const thetas = scaled.map((p) => tf.tensor(weights[p.param], p.shape));
  // Each slice's factor: its family's own tensor where the axis is exactly that family's groups, else gathered (1 outside every group).
  const factors = scaled.map((p) =>
    p.axes
      .filter((a) => a.produces)
      .map((a) => ({
        axis: a.axis,
        family: layout.findIndex((g) => g.count === a.group.length && a.group.every((x, c) => x === g.offset + c)),
        indices: Int32Array.from(a.group, (x) => (x < 0 ? n : x)),
      })),
  );
  const paramsWith = (ms: tf.Tensor[]): Params => {
    const p: Params = { ...fixed };
    scaled.forEach((s, l) => {
      p[s.param] = factors[l].reduce((w, f) => {
        const perChannel = f.family >= 0 ? ms[f.family] : tf.gather(tf.concat([...ms, tf.ones([1])]), f.indices);
        // broadcast along the axis: one factor per channel
        return tf.mul(
          w,
          f.axis === s.shape.length - 1
            ? perChannel
            : tf.reshape(
                perChannel,
                s.shape.map((d, i) => (i === f.axis ? d : 1)),
              ),
        );
      }, thetas[l]);
    });
    return p;
  };
  const oracle = maskOracle(model, split, opts, {
    n,
    what: "group mask vector",
    inputs: (m) => layout.map((g) => tf.tensor1d(m.subarray(g.offset, g.offset + g.count))),
    params: paramsWith,
    maskGradient: (grads) => tf.concat(grads),
    dispose: () => tf.dispose(thetas),
  });
  return { ...oracle, layout };
}
