import { z } from "zod";
import { Split } from "../../data";
import { Model } from "../../model";
import { cnnMaskOracle } from "../cnn-oracle";
import { FwIteration, FrankWolfeOptions, frankWolfe, roundMask } from "../frank-wolfe";
import { keptCount, magnitudeMaskFlat } from "../magnitude";
import { Mask, unflatten } from "../mask";
import { PruneContext, PruneOutcome, registerMethod } from "../method";
import { Momentum, StepSize, StepSizeSchema, describeStepSize } from "../schedules";

/** Frank-Wolfe mask pruning's parameters; FW-momentum adds `momentum` (fw-momentum.ts). */
export const FwParamsSchema = z
  .object({
    /** T. */
    iterations: z.number().int().positive().max(100_000).default(200),
    /** Minibatch size of each gradient evaluation. */
    batchSize: z.number().int().positive().max(60_000).default(128),
    /** γₜ: constant 0.02 by default (2/(t+2)'s first step replaces the start mask by one noisy LMO vertex). */
    stepSize: StepSizeSchema.default({ kind: "constant", gamma: 0.02 }),
    /** Rounding threshold τ: keep entries with m ≥ τ, at most k of them. */
    tau: z.number().gt(0).max(1).default(0.5),
    /** < 1: the LMO only considers a fresh random subset of this fraction of the weights each iteration. */
    lmoSampleFraction: z.number().gt(0).max(1).default(1),
    loss: z.enum(["crossentropy", "mse"]).default("crossentropy"),
  })
  .strict();
export type FwParams = z.infer<typeof FwParamsSchema> & { momentum?: Momentum };

export function describeFw(p: FwParams): Record<string, unknown> {
  return { ...p, stepSize: describeStepSize(p.stepSize as StepSize) };
}

/** frankWolfe's options from a FW method's parameters (shared by the weight-level and the structured methods). */
export function frankWolfeOptions(params: FwParams, k: number, run: { seed: number; onIteration?: (it: FwIteration) => void }): FrankWolfeOptions {
  return {
    k,
    iterations: params.iterations,
    stepSize: params.stepSize as StepSize,
    momentum: params.momentum ?? { kind: "none" },
    lmoSampleFraction: params.lmoSampleFraction,
    seed: run.seed,
    onIteration: run.onIteration,
  };
}

/** What one FW mask pruning produced: the start mask, the relaxed mask after T iterations, its rounding. */
export interface FwMaskRun {
  /** θ, the checkpoint's prunable weights, flat in layout order (m, m0 and rounded index the same entries). */
  theta: Float32Array;
  /** Kept count: Σ m ≤ k = n − round(s·n). */
  k: number;
  m0: Float32Array;
  m: Float32Array;
  rounded: Float32Array;
  mask: Mask;
  history: FwIteration[];
  samples: number;
}

/**
 * FW mask pruning: m₀ = the global magnitude mask (exactly k ones), T FW iterations on minibatches of the training
 * split minimising L(θ ⊙ m) over { m ∈ [0,1]ⁿ : Σ m ≤ k }, then rounding (m ≥ τ, at most k).
 */
export async function fwMaskPrune(
  checkpoint: Model,
  train: Split,
  params: FwParams,
  run: { sparsity: number; seed: number; onIteration?: (it: FwIteration) => void },
): Promise<FwMaskRun> {
  const oracle = cnnMaskOracle(checkpoint, train, { batchSize: params.batchSize, seed: run.seed, loss: params.loss });
  try {
    const k = keptCount(oracle.n, run.sparsity);
    const m0 = magnitudeMaskFlat(oracle.theta, run.sparsity);
    const result = await frankWolfe(oracle, m0, frankWolfeOptions(params, k, run));
    const rounded = roundMask(result.m, k, params.tau, oracle.theta);
    return { theta: oracle.theta, k, m0, m: result.m, rounded, mask: unflatten(rounded, oracle.layout), history: result.history, samples: result.samples };
  } finally {
    oracle.dispose();
  }
}

/** How the relaxed mask m_T looks and how rounding turned it into a binary mask (kept in the run's record). */
export interface RelaxedMaskSummary {
  n: number;
  k: number;
  tau: number;
  /** Entries of m_T exactly 0, and a 20-bin histogram of the others over (0, 1]. */
  zeros: number;
  bins: { from: number; to: number; count: number }[];
  aboveTau: number;
  /** Ones of the rounded mask, and how many of them the magnitude start mask m₀ had too. */
  kept: number;
  keptFromStart: number;
}

export function summarizeRelaxedMask(run: FwMaskRun, tau: number): RelaxedMaskSummary {
  const bins = Array.from({ length: 20 }, (_, i) => ({ from: i / 20, to: (i + 1) / 20, count: 0 }));
  let zeros = 0;
  let aboveTau = 0;
  let kept = 0;
  let keptFromStart = 0;
  for (let i = 0; i < run.m.length; i++) {
    const v = run.m[i];
    if (v === 0) zeros++;
    else bins[Math.min(19, Math.ceil(v * 20) - 1)].count++;
    if (v >= tau) aboveTau++;
    if (run.rounded[i] === 1) {
      kept++;
      if (run.m0[i] === 1) keptFromStart++;
    }
  }
  return { n: run.m.length, k: run.k, tau, zeros, bins, aboveTau, kept, keptFromStart };
}

export async function fwPrune(checkpoint: Model, params: FwParams, ctx: PruneContext): Promise<PruneOutcome> {
  const run = await fwMaskPrune(checkpoint, ctx.train, params, {
    sparsity: ctx.target,
    seed: ctx.seed,
    onIteration: (it) => ctx.progress?.(it.t + 1, params.iterations),
  });
  return { mask: run.mask, history: run.history, details: { relaxedMask: summarizeRelaxedMask(run, params.tau) }, samplesUsed: run.samples };
}

/** Plain Frank-Wolfe on the relaxed mask (no momentum). */
export const fw = registerMethod<FwParams>({
  name: "fw",
  summary: "Frank-Wolfe on a relaxed mask from the magnitude mask, T minibatch steps, rounded at τ, then retrained",
  params: FwParamsSchema,
  describe: describeFw,
  retrain: () => "masked",
  prune: fwPrune,
});
