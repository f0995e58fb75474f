import { Split } from "../data";
import { Model } from "../model";
import { Mask } from "../prune/mask";
import { magnitudeMask } from "../prune/magnitude";
import { MethodParams } from "./plan";

export interface PruneOutcome {
  mask: Mask;
  history?: unknown;
  /** Training samples the pruning itself consumed (FW's gradient minibatches). */
  samplesUsed: number;
  seconds: number;
}

/** The pruning step of a run: the method's mask for the checkpoint `model` (not modified). */
export async function pruneWith(method: string, model: Model, train: Split, params: MethodParams, seed: number): Promise<PruneOutcome> {
  void train;
  void seed;
  const start = performance.now();
  if (method === "magnitude") {
    const p = params as { sparsity: number; scope: "global" | "per-layer" };
    const weights: Record<string, Float32Array> = {};
    for (const [name, v] of Object.entries(model.params)) weights[name] = v.dataSync() as Float32Array;
    return { mask: magnitudeMask(model.spec, weights, p.sparsity, p.scope), samplesUsed: 0, seconds: (performance.now() - start) / 1000 };
  }
  throw new Error(`method "${method}": the pruning registry (src/prune/index.ts) is not available yet`);
}
