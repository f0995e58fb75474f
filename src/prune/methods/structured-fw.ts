import { z } from "zod";
import { Split } from "../../data";
import { Model, getWeights } from "../../model";
import { FwIteration, frankWolfe } from "../frank-wolfe";
import { cnnGroupOracle } from "../group-oracle";
import { expandGroupMask, flopBudget, groupL1, groupLayout, roundGroupMask, selectGroups, summarizeStructure } from "../groups";
import { PruneContext, PruneOutcome, registerMethod } from "../method";
import { Momentum, StepSize } from "../schedules";
import { FwMaskRun, FwParamsSchema, describeFw, summarizeRelaxedMask } from "./fw";
import { StructuredFields } from "./structured-magnitude";

/** FW's parameters (T, batch, step size, τ, …) plus the structured budget and the scope of the L1 start mask. */
export const StructuredFwParamsSchema = FwParamsSchema.extend(StructuredFields);
export type StructuredFwParams = z.infer<typeof StructuredFwParamsSchema> & { momentum?: Momentum };

/**
 * Structured FW: the relaxed mask lives on groups (filters, hidden neurons), C = { m ∈ [0,1]^G : Σ m_g ≤ k_G }.
 * m₀ = the L1 group mask at the target (structured-magnitude's, so k_G = its kept groups), T FW iterations of the same
 * loop as the weight-level methods (frank-wolfe.ts: LMO = the k_G most negative groups, step, momentum, history),
 * then rounding: m_g ≥ τ, at most k_G, ≥ 1 per layer, and with the FLOP budget the smallest m_g removed until the
 * surgered model's FLOPs fit.
 */
export async function structuredFwMaskPrune(
  checkpoint: Model,
  train: Split,
  params: StructuredFwParams,
  run: { reduction: number; seed: number; onIteration?: (it: FwIteration) => void },
): Promise<FwMaskRun & { groups: Float32Array }> {
  const { spec } = checkpoint;
  const layout = groupLayout(spec);
  const score = groupL1(layout, getWeights(checkpoint), true);
  const m0 = selectGroups(spec, layout, score, run.reduction, params.budget, params.scope);
  const k = m0.reduce((a, b) => a + b, 0);
  const oracle = cnnGroupOracle(checkpoint, train, { batchSize: params.batchSize, seed: run.seed, loss: params.loss });
  try {
    const result = await frankWolfe(oracle, m0, {
      k,
      iterations: params.iterations,
      stepSize: params.stepSize as StepSize,
      momentum: params.momentum ?? { kind: "none" },
      lmoSampleFraction: params.lmoSampleFraction,
      seed: run.seed,
      onIteration: run.onIteration,
    });
    const maxFlops = params.budget === "flops" ? flopBudget(spec, run.reduction) : undefined;
    const groups = roundGroupMask(spec, layout, result.m, { k, tau: params.tau, tieScore: score, maxFlops });
    const mask = expandGroupMask(spec, groups);
    return { theta: score, k, m0, m: result.m, rounded: groups, groups, mask, history: result.history, samples: result.samples };
  } finally {
    oracle.dispose();
  }
}

export async function structuredFwPrune(checkpoint: Model, params: StructuredFwParams, ctx: PruneContext): Promise<PruneOutcome> {
  const run = await structuredFwMaskPrune(checkpoint, ctx.train, params, {
    reduction: ctx.sparsity,
    seed: ctx.seed,
    onIteration: (it) => ctx.progress?.(it.t + 1, params.iterations),
  });
  return {
    mask: run.mask,
    groups: run.groups,
    history: run.history,
    details: { relaxedMask: summarizeRelaxedMask(run, params.tau), structure: summarizeStructure(checkpoint.spec, run.groups, params.budget, ctx.sparsity) },
    samplesUsed: run.samples,
  };
}

/** Structured Frank-Wolfe (no momentum). */
export const structuredFw = registerMethod<StructuredFwParams>({
  name: "structured-fw",
  summary: "Frank-Wolfe on a relaxed filter/neuron mask from the L1 mask, to a FLOP (or group) target; the smaller model is retrained",
  params: StructuredFwParamsSchema,
  describe: describeFw,
  retrain: () => "surgered",
  prune: structuredFwPrune,
});
