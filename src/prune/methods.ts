import { Split } from "../data";
import { Model, getWeights } from "../model";
import { LossKind } from "../train";
import { cnnMaskOracle } from "./cnn-oracle";
import { FwIteration, frankWolfe, roundMask } from "./frank-wolfe";
import { MagnitudeScope, keptCount, magnitudeMask, magnitudeMaskFlat } from "./magnitude";
import { Mask, unflatten } from "./mask";
import { PruneHooks, PruneResult, registerPruneMethod } from "./registry";
import { DEFAULT_BETA, DEFAULT_GAMMA, MomentumInput, StepSizeInput, describeMomentum, describeStepSize } from "./schedules";

export interface MagnitudeParams {
  /** Target sparsity s: exactly round(s·n) weights are removed. */
  sparsity: number;
  scope: MagnitudeScope;
}

export const MAGNITUDE_DEFAULTS: MagnitudeParams = { sparsity: 0.9, scope: "global" };

/** Frank-Wolfe mask pruning as PAPER.md defines it; "fw" and "fw-momentum" differ only in their default momentum. */
export interface FwParams {
  /** Target sparsity s; the budget is k = n − round(s·n) (the magnitude start mask keeps exactly k). */
  sparsity: number;
  /** T. */
  iterations: number;
  /** Minibatch size of each gradient evaluation. */
  batchSize: number;
  stepSize: StepSizeInput;
  momentum: MomentumInput;
  /** Rounding threshold τ: keep entries with m ≥ τ (at most k). */
  threshold: number;
  /** < 1: the LMO only considers a fresh random subset of this fraction of the weights each iteration. */
  lmoSampleFraction: number;
  loss: LossKind;
  /** Seeds the minibatch order and the LMO's sampling. */
  seed: number;
}

export const FW_DEFAULTS: FwParams = {
  sparsity: 0.9,
  iterations: 200,
  batchSize: 128,
  stepSize: { kind: "constant", gamma: DEFAULT_GAMMA },
  momentum: { kind: "none" },
  threshold: 0.5,
  lmoSampleFraction: 1,
  loss: "crossentropy",
  seed: 0,
};

export const FW_MOMENTUM_DEFAULTS: FwParams = { ...FW_DEFAULTS, momentum: { kind: "constant", beta: DEFAULT_BETA } };

declare module "./registry" {
  interface PruneMethodParams {
    magnitude: MagnitudeParams;
    fw: FwParams;
    "fw-momentum": FwParams;
  }
}

export async function runMagnitude(checkpoint: Model, _data: Split, params: MagnitudeParams, hooks: PruneHooks = {}): Promise<PruneResult> {
  const start = performance.now();
  const mask = magnitudeMask(checkpoint.spec, getWeights(checkpoint), params.sparsity, params.scope);
  await hooks.progress?.(1, 1);
  return { mask, history: [], seconds: (performance.now() - start) / 1000, samplesUsed: 0 };
}

/** What one FW mask-pruning run produced: the start mask, the relaxed mask after T iterations, its rounding. */
export interface FwMaskRun {
  /** θ, the checkpoint's prunable weights, flat in layout order (m, m0 and rounded index the same entries). */
  theta: Float32Array;
  k: number;
  m0: Float32Array;
  m: Float32Array;
  rounded: Float32Array;
  mask: Mask;
  history: FwIteration[];
  samples: number;
}

/** FW mask pruning: m₀ = global magnitude mask, T FW iterations on minibatches, then rounding (τ, at most k). */
export async function fwMaskPrune(checkpoint: Model, data: Split, params: FwParams, onIteration?: (it: FwIteration) => void): Promise<FwMaskRun> {
  if (!(params.threshold > 0 && params.threshold <= 1)) throw new Error(`threshold: expected a number in (0, 1], got ${params.threshold}`);
  const oracle = cnnMaskOracle(checkpoint, data, { batchSize: params.batchSize, seed: params.seed, loss: params.loss });
  try {
    const k = keptCount(oracle.n, params.sparsity);
    const m0 = magnitudeMaskFlat(oracle.theta, params.sparsity);
    const result = await frankWolfe(oracle, m0, {
      k,
      iterations: params.iterations,
      stepSize: params.stepSize,
      momentum: params.momentum,
      lmoSampleFraction: params.lmoSampleFraction,
      seed: params.seed,
      onIteration,
    });
    const rounded = roundMask(result.m, k, params.threshold, oracle.theta);
    const mask = unflatten(rounded, oracle.layout);
    return { theta: oracle.theta, k, m0, m: result.m, rounded, mask, history: result.history, samples: result.samples };
  } finally {
    oracle.dispose();
  }
}

export async function runFrankWolfe(checkpoint: Model, data: Split, params: FwParams, hooks: PruneHooks = {}): Promise<PruneResult> {
  const start = performance.now();
  const run = await fwMaskPrune(checkpoint, data, params, (it) => hooks.progress?.(it.t + 1, params.iterations));
  return { mask: run.mask, history: run.history, seconds: (performance.now() - start) / 1000, samplesUsed: run.samples };
}

function describeFw(p: FwParams): Record<string, unknown> {
  return {
    sparsity: p.sparsity,
    iterations: p.iterations,
    batchSize: p.batchSize,
    stepSize: describeStepSize(p.stepSize),
    momentum: describeMomentum(p.momentum),
    threshold: p.threshold,
    lmoSampleFraction: p.lmoSampleFraction,
    loss: p.loss,
    seed: p.seed,
  };
}

registerPruneMethod<MagnitudeParams>({
  name: "magnitude",
  defaults: MAGNITUDE_DEFAULTS,
  describe: (p) => ({ sparsity: p.sparsity, scope: p.scope }),
  run: runMagnitude,
});
registerPruneMethod<FwParams>({ name: "fw", defaults: FW_DEFAULTS, describe: describeFw, run: runFrankWolfe });
registerPruneMethod<FwParams>({ name: "fw-momentum", defaults: FW_MOMENTUM_DEFAULTS, describe: describeFw, run: runFrankWolfe });
