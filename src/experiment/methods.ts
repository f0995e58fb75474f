import { Split } from "../data";
import { Model } from "../model";
import { Mask, PruneParams, prune } from "../prune";
import { MethodParams } from "./plan";

export interface PruneOutcome {
  mask: Mask;
  history?: unknown;
  /** Training samples the pruning itself consumed (FW's gradient minibatches). */
  samplesUsed: number;
  seconds: number;
}

/** The parameters src/prune's registry takes, from a run's resolved method parameters (τ is its `threshold`). */
export function toPruneParams(method: string, params: MethodParams, seed: number): PruneParams {
  if (method === "magnitude") {
    const p = params as { sparsity: number; scope: "global" | "per-layer" };
    return { method: "magnitude", sparsity: p.sparsity, scope: p.scope };
  }
  if (method === "fw" || method === "fw-momentum") {
    const { tau, ...rest } = params as Record<string, unknown> & { tau: number };
    return { method, ...rest, threshold: tau, seed } as PruneParams;
  }
  throw new Error(`method ${JSON.stringify(method)} does not prune; expected magnitude, fw or fw-momentum`);
}

/** The pruning step of a run: the method's mask for the checkpoint `model` (not modified). */
export async function pruneWith(method: string, model: Model, train: Split, params: MethodParams, seed: number): Promise<PruneOutcome> {
  const result = await prune(model, train, toPruneParams(method, params, seed));
  return { mask: result.mask, history: result.history, samplesUsed: result.samplesUsed, seconds: result.seconds };
}
