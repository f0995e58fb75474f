import { z } from "zod";
import { assertSelfContained } from "./function-source";

/**
 * Step-size and momentum schedules for Frank-Wolfe. Each has a canonical, serialisable description (what a run key
 * hashes); a custom function is described by its name and its source text, so editing its body recomputes.
 */

/** γₜ: 2/(t+2) ("open-loop"), constant, minibatch line search, or a named custom function of t (t = 0, 1, …). */
export type StepSize =
  | { kind: "open-loop" }
  | { kind: "constant"; gamma: number }
  | { kind: "line-search"; evaluations?: number }
  | { kind: "custom"; name: string; fn: (t: number) => number };

/**
 * dₜ = βₜ·dₜ₋₁ + (1−βₜ)·gₜ for t ≥ 1, d₀ = g₀. "none" is plain FW (dₜ = gₜ); "constant" is βₜ = β; "mokhtari" is
 * βₜ = 1 − ρₜ with ρₜ = 4/(t+8)^(2/3) (Mokhtari et al.); "custom" gives βₜ by a named function of t.
 */
export type Momentum =
  { kind: "none" } | { kind: "constant"; beta: number } | { kind: "mokhtari" } | { kind: "custom"; name: string; fn: (t: number) => number };

export const DEFAULT_GAMMA = 0.02;
export const DEFAULT_BETA = 0.9;
export const DEFAULT_LINE_SEARCH_EVALUATIONS = 8;

/** Shorthands a caller may pass: a number is a constant γ (or β), "2/(t+2)" the open-loop rule, {name, fn} a custom one. */
export type StepSizeInput = StepSize | number | "2/(t+2)" | "open-loop" | "line-search" | { name: string; fn: (t: number) => number };
export type MomentumInput = Momentum | number | "none" | "mokhtari" | { name: string; fn: (t: number) => number };

const STEP_SIZE_KINDS = 'a number γ, "2/(t+2)", "line-search", {"kind":"constant","gamma":γ}, {"kind":"open-loop"}, {"kind":"line-search"} or {name, fn}';
const MOMENTUM_KINDS = 'a number β, "mokhtari", {"kind":"constant","beta":β}, {"kind":"mokhtari"} or {name, fn}';

function checkKeys(input: object, allowed: string[], where: string): void {
  const extra = Object.keys(input).filter((k) => !allowed.includes(k));
  if (extra.length)
    throw new Error(
      `${where}: unknown key${extra.length > 1 ? "s" : ""} ${extra.map((k) => JSON.stringify(k)).join(", ")}; expected only ${allowed.join(", ")}`,
    );
}

function checkName(name: unknown, where: string): string {
  if (typeof name !== "string" || name.trim() === "")
    throw new Error(`${where}: a custom schedule needs a non-empty name (its cache identity), got ${JSON.stringify(name)}`);
  return name;
}

export function toStepSize(input: StepSizeInput): StepSize {
  if (typeof input === "number") return toStepSize({ kind: "constant", gamma: input });
  if (input === "2/(t+2)" || input === "open-loop") return { kind: "open-loop" };
  if (input === "line-search") return { kind: "line-search" };
  if (typeof input !== "object" || input === null) throw new Error(`stepSize: unknown schedule ${JSON.stringify(input)}; expected ${STEP_SIZE_KINDS}`);
  if (!("kind" in input)) return toStepSize({ kind: "custom", ...input });
  switch (input.kind) {
    case "open-loop":
      checkKeys(input, ["kind"], "stepSize");
      return input;
    case "constant":
      checkKeys(input, ["kind", "gamma"], "stepSize");
      if (!(input.gamma > 0 && input.gamma <= 1)) throw new Error(`stepSize.gamma: expected a number in (0, 1], got ${input.gamma}`);
      return input;
    case "line-search":
      checkKeys(input, ["kind", "evaluations"], "stepSize");
      if (input.evaluations !== undefined && !(Number.isInteger(input.evaluations) && input.evaluations >= 2)) {
        throw new Error(`stepSize.evaluations: expected an integer ≥ 2, got ${input.evaluations}`);
      }
      return input;
    case "custom":
      checkKeys(input, ["kind", "name", "fn"], "stepSize");
      checkName(input.name, "stepSize");
      if (typeof input.fn !== "function") throw new Error(`stepSize "${input.name}": fn must be a function (t) => γ`);
      assertSelfContained(input.fn, `stepSize "${input.name}"`);
      return input;
    default:
      throw new Error(`stepSize.kind: expected open-loop, constant, line-search or custom, got ${JSON.stringify((input as { kind: unknown }).kind)}`);
  }
}

export function toMomentum(input: MomentumInput): Momentum {
  if (typeof input === "number") return toMomentum({ kind: "constant", beta: input });
  if (input === "none") return { kind: "none" };
  if (input === "mokhtari") return { kind: "mokhtari" };
  if (typeof input !== "object" || input === null) throw new Error(`momentum: unknown schedule ${JSON.stringify(input)}; expected ${MOMENTUM_KINDS}`);
  if (!("kind" in input)) return toMomentum({ kind: "custom", ...input });
  switch (input.kind) {
    case "none":
    case "mokhtari":
      checkKeys(input, ["kind"], "momentum");
      return input;
    case "constant":
      checkKeys(input, ["kind", "beta"], "momentum");
      if (!(input.beta >= 0 && input.beta < 1)) throw new Error(`momentum.beta: expected a number in [0, 1), got ${input.beta}`);
      return input;
    case "custom":
      checkKeys(input, ["kind", "name", "fn"], "momentum");
      checkName(input.name, "momentum");
      if (typeof input.fn !== "function") throw new Error(`momentum "${input.name}": fn must be a function (t) => β`);
      assertSelfContained(input.fn, `momentum "${input.name}"`);
      return input;
    default:
      throw new Error(`momentum.kind: expected none, constant, mokhtari or custom, got ${JSON.stringify((input as { kind: unknown }).kind)}`);
  }
}

/** The canonical serialisable description (defaults filled in, functions replaced by their names). */
export function describeStepSize(input: StepSizeInput): Record<string, unknown> {
  const s = toStepSize(input);
  switch (s.kind) {
    case "open-loop":
      return { kind: "open-loop" };
    case "constant":
      return { kind: "constant", gamma: s.gamma };
    case "line-search":
      return { kind: "line-search", evaluations: s.evaluations ?? DEFAULT_LINE_SEARCH_EVALUATIONS };
    case "custom":
      return { kind: "custom", name: s.name, source: String(s.fn) };
  }
}

export function describeMomentum(input: MomentumInput): Record<string, unknown> {
  const m = toMomentum(input);
  switch (m.kind) {
    case "none":
    case "mokhtari":
      return { kind: m.kind };
    case "constant":
      return { kind: "constant", beta: m.beta };
    case "custom":
      return { kind: "custom", name: m.name, source: String(m.fn) };
  }
}

/** A zod schema that accepts what `normalize` accepts (shorthands included) and reports its error at the field. */
function scheduleSchema<T>(normalize: (v: never) => T) {
  return z.unknown().transform((v, ctx): T => {
    try {
      return normalize(v as never);
    } catch (err) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: (err as Error).message });
      return z.NEVER;
    }
  });
}

export const StepSizeSchema = scheduleSchema(toStepSize);
/** FW-momentum's β: a constant, Mokhtari's schedule, or a named function (plain FW has no momentum parameter). */
export const MomentumSchema = scheduleSchema((v: MomentumInput) => {
  const m = toMomentum(v);
  if (m.kind === "none") throw new Error(`momentum: "none" is plain FW (use method "fw"); expected ${MOMENTUM_KINDS}`);
  return m;
});

/** γₜ for the open-loop, constant and custom rules (line search is solved by the FW loop itself). */
export function stepSizeAt(s: StepSize, t: number): number {
  switch (s.kind) {
    case "open-loop":
      return 2 / (t + 2);
    case "constant":
      return s.gamma;
    case "custom": {
      const g = s.fn(t);
      if (!(g >= 0 && g <= 1)) throw new Error(`stepSize "${s.name}" gave γ(${t}) = ${g}; expected a number in [0, 1]`);
      return g;
    }
    case "line-search":
      throw new Error("stepSizeAt: a line-search step size depends on the loss; the FW loop computes it");
  }
}

/** ρₜ of Mokhtari et al.: 4/(t+8)^(2/3). */
export function mokhtariRho(t: number): number {
  return 4 / Math.pow(t + 8, 2 / 3);
}

/** βₜ, the weight on dₜ₋₁ (used for t ≥ 1; d₀ = g₀ always). */
export function momentumAt(m: Momentum, t: number): number {
  switch (m.kind) {
    case "none":
      return 0;
    case "constant":
      return m.beta;
    case "mokhtari":
      return 1 - mokhtariRho(t);
    case "custom": {
      const b = m.fn(t);
      if (!(b >= 0 && b <= 1)) throw new Error(`momentum "${m.name}" gave β(${t}) = ${b}; expected a number in [0, 1]`);
      return b;
    }
  }
}

/**
 * Minimise φ on [0, 1] by golden-section search with `evaluations` calls of φ; returns the best point evaluated,
 * counting φ(0) = phi0 (already known: the loss at the current mask), so the step never makes the minibatch loss worse.
 */
export function goldenSectionStep(phi: (gamma: number) => number, phi0: number, evaluations: number): { gamma: number; value: number } {
  const r = (Math.sqrt(5) - 1) / 2;
  let best = { gamma: 0, value: phi0 };
  const consider = (gamma: number, value: number) => {
    if (value < best.value) best = { gamma, value };
  };
  let a = 0;
  let b = 1;
  let c = b - r * (b - a);
  let d = a + r * (b - a);
  let fc = phi(c);
  let fd = phi(d);
  consider(c, fc);
  consider(d, fd);
  for (let used = 2; used < evaluations; used++) {
    if (fc < fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - r * (b - a);
      fc = phi(c);
      consider(c, fc);
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + r * (b - a);
      fd = phi(d);
      consider(d, fd);
    }
  }
  return best;
}
