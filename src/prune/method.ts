import { z } from "zod";
import { Split } from "../data";
import { Model } from "../model";
import { Mask } from "./mask";
import type { StructureSummary } from "./groups";
import type { RelaxedMaskSummary } from "./methods/fw";

/** What a method reports beside its mask, kept in the run's record as `details` (records' JSON unchanged). */
export interface PruneDetails {
  /** FW methods: the relaxed mask before rounding, and the rounding. */
  relaxedMask?: RelaxedMaskSummary;
  /** Structured methods: the groups kept per layer and the FLOPs left. */
  structure?: StructureSummary;
}

/** What a method's `prune` gets besides the checkpoint and its parameters. */
export interface PruneContext {
  /** The training split: iterative methods draw their minibatches from it. */
  train: Split;
  /** The run's seed (minibatch order, random masks). */
  seed: number;
  /**
   * The fraction to remove: of the prunable weights for a weight-mask method (its sparsity); of the FLOPs, or of the
   * groups (the method's `budget`), for a structured one (its FLOP reduction). Configs, run keys and records call
   * both `sparsity`.
   */
  target: number;
  /** Called as work proceeds: `done` of `total` steps (FW: iteration t+1 of T). */
  progress?: (done: number, total: number) => void;
}

export interface PruneOutcome {
  /** Binary mask over the prunable kernels. */
  mask: Mask;
  /** Per-iteration record of iterative methods (FW: gap, loss, step size, …). */
  history?: unknown[];
  /** What else the method wants kept in the run's record (FW: a summary of the relaxed mask and its rounding). */
  details?: PruneDetails;
  /**
   * Structured methods: the 0/1 group mask (groups.ts: conv filters and hidden neurons, in spec order) that `mask`
   * expands; a "surgered" retraining cuts the model down to it.
   */
  groups?: Float32Array;
  /** Training samples the pruning itself consumed (FW: T minibatches), for compute-matched comparisons. */
  samplesUsed: number;
}

/**
 * How a run retrains after the method: not at all, with the mask held fixed, freely (pruned weights may regrow),
 * or "surgered": the group mask's smaller model (groups.ts `surgery`), trained densely.
 */
export type RetrainMode = "none" | "masked" | "free" | "surgered";

/**
 * A method of the experiments: its parameters (a strict zod object whose fields all have defaults, so `{}` parses
 * to the full defaults), whether it prunes to a target sparsity, how the run retrains after it, and the pruning.
 * A method is one file that calls `registerMethod`; the config, the run key and the CLI find it by name.
 */
export interface Method<P extends Record<string, unknown> = Record<string, unknown>> {
  name: string;
  /** One line for `--help` and the README. */
  summary: string;
  params: z.ZodType<P, z.ZodTypeDef, unknown>;
  /**
   * The canonical, JSON-serialisable form of parsed parameters: exactly what the run key hashes. Default: the
   * parameters themselves. Methods whose parameters hold functions (custom schedules) say how to name them.
   */
  describe?: (params: P) => Record<string, unknown>;
  retrain: (params: P) => RetrainMode;
  /** Present for methods that prune: they run once per target sparsity. Absent: the run keeps the checkpoint's weights. */
  prune?: (checkpoint: Model, params: P, ctx: PruneContext) => Promise<PruneOutcome>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const methods = new Map<string, Method<any>>();

export function registerMethod<P extends Record<string, unknown>>(method: Method<P>): Method<P> {
  if (methods.has(method.name)) throw new Error(`method "${method.name}" is already registered`);
  if (!/^[a-z0-9][a-z0-9-]*$/.test(method.name)) throw new Error(`method name ${JSON.stringify(method.name)}: expected lower-case letters, digits and dashes`);
  methods.set(method.name, method);
  return method;
}

export function methodNames(): string[] {
  return [...methods.keys()];
}

export function getMethod(name: string): Method {
  const m = methods.get(name);
  if (!m) throw new Error(`method ${JSON.stringify(name)} is not registered; expected one of ${methodNames().join(", ")}`);
  return m;
}

/** Full parameters of a method from partial ones (defaults filled in); throws a zod error naming the field. */
export function parseParams(method: Method, params: unknown = {}): Record<string, unknown> {
  return method.params.parse(params ?? {});
}

export function describeParams(method: Method, params: Record<string, unknown>): Record<string, unknown> {
  return method.describe ? method.describe(params) : params;
}

/**
 * Prune a checkpoint (not modified) with a registered method: its parameters parsed (defaults filled in, unknown
 * keys rejected), then its `prune`. Throws for a method that does not prune.
 */
export async function prune(checkpoint: Model, name: string, params: unknown, ctx: PruneContext): Promise<PruneOutcome> {
  const method = getMethod(name);
  if (!method.prune)
    throw new Error(
      `method "${name}" does not prune; expected one of ${methodNames()
        .filter((n) => getMethod(n).prune)
        .join(", ")}`,
    );
  return method.prune(checkpoint, parseParams(method, params), ctx);
}
