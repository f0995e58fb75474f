import { z } from "zod";
import { Split } from "../../data";
import { Model, getWeights } from "../../model";
import { FwIteration, frankWolfe } from "../frank-wolfe";
import { cnnGroupOracle } from "../group-oracle";
import { expandGroupMask, flopBudget, groupLayout, l1GroupMask, roundGroupMask, summarizeStructure } from "../groups";
import { PruneContext, PruneOutcome, registerMethod } from "../method";
import { Momentum } from "../schedules";
import { FwMaskRun, FwParamsSchema, describeFw, frankWolfeOptions, summarizeRelaxedMask } from "./fw";
import { StructuredFields } from "./structured-magnitude";

/**
 * FW's parameters (T, batch, step size, τ, …) plus the structured budget, the scope of the L1 mask, and where FW
 * starts: at the L1 mask (absent or "l1"), or at the uniform point m_g = k_G / G ("uniform"), which keeps every group
 * alive. (A group outside the L1 mask has its kernel column and bias scaled by 0, so its pre-activation is exactly
 * 0, where the ReLU's gradient is 0: its group gradient is 0 and the LMO, which takes only negative entries, never
 * picks it. From the L1 mask FW can drop groups but never add one.) Absent rather than defaulted, so that the runs
 * from the L1 mask keep their keys.
 */
export const StructuredFwParamsSchema = FwParamsSchema.extend({ ...StructuredFields, start: z.enum(["l1", "uniform"]).optional() });
export type StructuredFwParams = z.infer<typeof StructuredFwParamsSchema> & { momentum?: Momentum };

/**
 * Structured FW: the relaxed mask lives on groups (filters, hidden neurons), C = { m ∈ [0,1]^G : Σ m_g ≤ k_G }.
 * k_G = the kept groups of the L1 group mask at the target (structured-magnitude's); m₀ = that mask (or the uniform
 * point k_G / G, `start: "uniform"`), T FW iterations of the same
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
  const model = checkpoint.graph;
  const { groups: l1, score } = l1GroupMask(model, getWeights(checkpoint), run.reduction, params.budget, params.scope);
  const k = l1.reduce((a, b) => a + b, 0);
  const m0 = (params.start ?? "l1") === "l1" ? l1 : new Float32Array(l1.length).fill(k / l1.length);
  const oracle = cnnGroupOracle(checkpoint, train, { batchSize: params.batchSize, seed: run.seed, loss: params.loss });
  try {
    const result = await frankWolfe(oracle, m0, frankWolfeOptions(params, k, run));
    const maxFlops = params.budget === "flops" ? flopBudget(model, run.reduction) : undefined;
    const groups = roundGroupMask(model, groupLayout(model), result.m, { k, tau: params.tau, tieScore: score, maxFlops });
    const mask = expandGroupMask(model, groups);
    // m0 in the summary: the L1 mask, so that keptFromStart counts the kept groups L1 pruning keeps too, whatever the start.
    return { theta: score, k, m0: l1, m: result.m, rounded: groups, groups, mask, history: result.history, samples: result.samples };
  } finally {
    oracle.dispose();
  }
}

export async function structuredFwPrune(checkpoint: Model, params: StructuredFwParams, ctx: PruneContext): Promise<PruneOutcome> {
  const run = await structuredFwMaskPrune(checkpoint, ctx.train, params, {
    reduction: ctx.target,
    seed: ctx.seed,
    onIteration: (it) => ctx.progress?.(it.t + 1, params.iterations),
  });
  return {
    mask: run.mask,
    groups: run.groups,
    history: run.history,
    details: { relaxedMask: summarizeRelaxedMask(run, params.tau), structure: summarizeStructure(checkpoint.graph, run.groups, params.budget, ctx.target) },
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
