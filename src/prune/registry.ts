import { Split } from "../data";
import { Model } from "../model";
import { FwIteration } from "./frank-wolfe";
import { Mask } from "./mask";

export interface PruneResult {
  /** Binary mask over the prunable kernels. */
  mask: Mask;
  /** Per-iteration record of iterative methods (empty for one-shot ones). */
  history: FwIteration[];
  seconds: number;
  /** Training samples the method consumed (FW: T minibatches), for compute-matched comparisons. */
  samplesUsed: number;
}

export interface PruneHooks {
  /** Called as work proceeds: `done` of `total` steps (FW: iteration t+1 of T). */
  progress?: (done: number, total: number) => void | Promise<void>;
}

/** A pruning method: its full default parameters, a canonical description of them, and the method itself. */
export interface PruneMethod<P extends object> {
  name: string;
  defaults: P;
  /** Serialisable, canonical form of fully resolved parameters (functions replaced by their names): the cache identity. */
  describe(params: P): Record<string, unknown>;
  run(checkpoint: Model, data: Split, params: P, hooks: PruneHooks): Promise<PruneResult>;
}

/**
 * Parameter types by method name. Each method file adds its entry by module augmentation:
 * `declare module "./registry" { interface PruneMethodParams { mine: MyParams } }`.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface PruneMethodParams {}

export type PruneMethodName = keyof PruneMethodParams & string;
/** What `prune` takes: the method's name plus any of its parameters (the rest come from its defaults). */
export type PruneParams = { [N in PruneMethodName]: { method: N } & Partial<PruneMethodParams[N]> }[PruneMethodName];

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const methods = new Map<string, PruneMethod<any>>();

export function registerPruneMethod<P extends object>(method: PruneMethod<P>): void {
  if (methods.has(method.name)) throw new Error(`prune method "${method.name}" is already registered`);
  methods.set(method.name, method);
}

export function pruneMethodNames(): string[] {
  return [...methods.keys()];
}

export function getPruneMethod(name: string): PruneMethod<object> {
  const m = methods.get(name);
  if (!m) throw new Error(`prune method "${name}" is not registered; known: ${pruneMethodNames().join(", ")}`);
  return m;
}

/** The method and its full parameters: defaults overridden by the given ones; unknown keys are an error. */
export function resolvePruneParams(params: { method: string } & object): { method: PruneMethod<object>; params: Record<string, unknown> } {
  const method = getPruneMethod(params.method);
  const given = Object.fromEntries(Object.entries(params).filter(([key, value]) => key !== "method" && value !== undefined));
  for (const key of Object.keys(given)) {
    if (!(key in method.defaults)) {
      throw new Error(`prune "${method.name}": unknown parameter "${key}"; expected one of ${Object.keys(method.defaults).join(", ")}`);
    }
  }
  return { method, params: { ...method.defaults, ...given } };
}

/** Canonical description of a prune call's parameters, defaults filled in: what a cache key should hash. */
export function describePruneParams(params: PruneParams | ({ method: string } & object)): Record<string, unknown> {
  const { method, params: full } = resolvePruneParams(params);
  return { method: method.name, ...method.describe(full) };
}

/** Prune a checkpoint with the named method; `data` is the training split iterative methods draw minibatches from. */
export async function prune(checkpoint: Model, data: Split, params: PruneParams, hooks: PruneHooks = {}): Promise<PruneResult> {
  const { method, params: full } = resolvePruneParams(params);
  return method.run(checkpoint, data, full, hooks);
}
