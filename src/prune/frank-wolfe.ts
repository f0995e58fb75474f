import { deriveSeed, shuffledIndices } from "../random";
import { yieldNow } from "../train";
import { DEFAULT_LINE_SEARCH_EVALUATIONS, MomentumInput, StepSizeInput, goldenSectionStep, momentumAt, stepSizeAt, toMomentum, toStepSize } from "./schedules";
import { selectSmallest } from "./select";

/**
 * Frank-Wolfe over C = { m ∈ [0,1]ⁿ : Σ mᵢ ≤ k }, generic over a (stochastic) gradient oracle, so the same loop
 * runs on a convex quadratic in tests and on a CNN's mask.
 */
export interface FwOracle {
  n: number;
  /**
   * F(m) and ∇F(m) at iteration t; a stochastic oracle draws its minibatch from t. `samples`: samples consumed. Where
   * `into` is given, the gradient may be written there (and returned) instead of into a new array.
   */
  evaluate(m: Float32Array, t: number, into?: Float32Array): { loss: number; grad: Float32Array; samples: number };
  /** F at m on the same minibatch as the last evaluate(): needed by the line-search step size. */
  lossAt?(m: Float32Array): number;
}

/** One FW iteration t: the state at mₜ, and what the step did. */
export interface FwIteration {
  t: number;
  /** F(mₜ) on this iteration's minibatch. */
  loss: number;
  /** FW gap ⟨dₜ, mₜ − vₜ⟩ (with the momentum direction dₜ). */
  gap: number;
  /** γₜ actually used. */
  stepSize: number;
  /** βₜ, the weight on dₜ₋₁ (0 for plain FW and at t = 0). */
  beta: number;
  /** Number of ones in the LMO vertex vₜ (≤ k). */
  vertexSize: number;
  /** Non-zero entries of mₜ₊₁ (after the step). */
  nonzero: number;
  /** Training samples consumed so far, this iteration included. */
  samples: number;
}

// The LMO's list of negative entries, kept from call to call: a fresh one of n entries, handed out by the system page by
// page, took 1.5–2.5 ms of each call at n = 225k.
let negativeScratch = new Int32Array(0);

/**
 * Indices of the LMO vertex over C: the k most negative entries of d (only entries < 0), among `candidates`
 * (all coordinates when omitted). Ties: the lower index wins. Expected O(n) (selection, not a sort).
 */
export function lmoIndices(d: Float32Array, k: number, candidates?: Int32Array): Int32Array {
  const length = candidates ? candidates.length : d.length;
  if (negativeScratch.length < length) negativeScratch = new Int32Array(length);
  const all = negativeScratch;
  // Each entry is stored and kept by adding the comparison's 0 or 1, without a branch: a momentum direction's signs
  // change about every other entry, and a branch on them was mispredicted as often (1.1 ms against 0.3 at n = 225k).
  let count = 0;
  if (candidates) {
    for (let j = 0; j < length; j++) {
      const i = candidates[j];
      all[count] = i;
      count += +(d[i] < 0);
    }
  } else {
    for (let i = 0; i < length; i++) {
      all[count] = i;
      count += +(d[i] < 0);
    }
  }
  const idx = all.subarray(0, count);
  if (count <= k) return idx.slice();
  selectSmallest(idx, k, (a, b) => d[a] < d[b] || (d[a] === d[b] && a < b));
  return idx.slice(0, k);
}

/** The LMO vertex v ∈ {0,1}ⁿ: vᵢ = 1 for the k most negative entries of d among `sampleIndices` (or all), else 0. */
export function lmo(d: Float32Array, k: number, sampleIndices?: Int32Array): Float32Array {
  const v = new Float32Array(d.length);
  for (const i of lmoIndices(d, k, sampleIndices)) v[i] = 1;
  return v;
}

/**
 * Round a relaxed mask: keep entries with m ≥ τ, at most k of them (largest m first; ties by larger |θ|, then by
 * lower index). Returns a binary vector.
 */
export function roundMask(m: Float32Array, k: number, tau: number, theta?: Float32Array): Float32Array {
  const all = new Int32Array(m.length);
  let count = 0;
  for (let i = 0; i < m.length; i++) if (m[i] >= tau) all[count++] = i;
  const idx = all.subarray(0, count);
  if (idx.length > k) selectSmallest(idx, k, roundingPrecedes(m, theta));
  const out = new Float32Array(m.length);
  for (let j = 0; j < Math.min(k, idx.length); j++) out[idx[j]] = 1;
  return out;
}

/** Rounding's order: entry a before entry b when its m is larger; ties by larger |θ|, then by lower index. */
export function roundingPrecedes(m: Float32Array, theta?: Float32Array): (a: number, b: number) => boolean {
  const abs = (i: number) => (theta ? Math.abs(theta[i]) : 0);
  return (a, b) => m[a] > m[b] || (m[a] === m[b] && (abs(a) > abs(b) || (abs(a) === abs(b) && a < b)));
}

export interface FrankWolfeOptions {
  /** The kept count: Σ mᵢ ≤ k. */
  k: number;
  iterations: number;
  stepSize: StepSizeInput;
  momentum: MomentumInput;
  /** < 1: the LMO sees only a fresh random subset of round(f·n) coordinates each iteration. */
  lmoSampleFraction?: number;
  /** Seeds the LMO's coordinate sampling. */
  seed?: number;
  /** Called after each iteration with its record and mₜ₊₁ (do not keep a reference: it is updated in place). */
  onIteration?: (it: FwIteration, m: Float32Array) => void | Promise<void>;
}

export interface FrankWolfeResult {
  /** The relaxed mask after the last iteration. */
  m: Float32Array;
  history: FwIteration[];
  samples: number;
}

/** Run T Frank-Wolfe iterations from m₀ (which must lie in C); plain FW or with a momentum direction. */
export async function frankWolfe(oracle: FwOracle, m0: Float32Array, opts: FrankWolfeOptions): Promise<FrankWolfeResult> {
  const n = oracle.n;
  if (m0.length !== n) throw new Error(`m0: expected ${n} entries, got ${m0.length}`);
  if (!(Number.isInteger(opts.k) && opts.k >= 0 && opts.k <= n)) throw new Error(`k: expected an integer in [0, ${n}], got ${opts.k}`);
  if (!(Number.isInteger(opts.iterations) && opts.iterations >= 0)) throw new Error(`iterations: expected an integer ≥ 0, got ${opts.iterations}`);
  const fraction = opts.lmoSampleFraction ?? 1;
  if (!(fraction > 0 && fraction <= 1)) throw new Error(`lmoSampleFraction: expected a number in (0, 1], got ${fraction}`);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    if (!(m0[i] >= 0 && m0[i] <= 1)) throw new Error(`m0[${i}] = ${m0[i]}; expected a value in [0, 1]`);
    sum += m0[i];
  }
  if (sum > opts.k + 1e-6 * Math.max(1, opts.k)) throw new Error(`m0 sums to ${sum}, more than the kept count k = ${opts.k}`);
  const stepSize = toStepSize(opts.stepSize);
  const momentum = toMomentum(opts.momentum);
  if (stepSize.kind === "line-search" && !oracle.lossAt) throw new Error("stepSize line-search: the oracle has no lossAt()");
  const sampleSize = Math.max(1, Math.round(fraction * n));
  const seed = opts.seed ?? 0;

  const m = m0.slice();
  const d = new Float32Array(n);
  const gradient = new Float32Array(n); // each iteration's, read into the same array
  const lineSearch = stepSize.kind === "line-search" ? { trial: new Float32Array(n), v: new Float32Array(n) } : undefined;
  const history: FwIteration[] = [];
  let samples = 0;
  for (let t = 0; t < opts.iterations; t++) {
    const { loss, grad, samples: used } = oracle.evaluate(m, t, gradient);
    samples += used;
    const beta = t === 0 ? 0 : momentumAt(momentum, t);
    let gap = direction(d, grad, t === 0 || momentum.kind === "none" ? undefined : beta, m);

    const candidates = fraction < 1 ? shuffledIndices(n, deriveSeed(seed, `fw/lmo-sample/${t}`)).subarray(0, sampleSize) : undefined;
    const chosen = lmoIndices(d, opts.k, candidates);
    for (let j = 0; j < chosen.length; j++) gap -= d[chosen[j]];

    let gamma: number;
    if (stepSize.kind === "line-search" && lineSearch) {
      const { trial, v } = lineSearch;
      v.fill(0);
      for (const i of chosen) v[i] = 1;
      const phi = (g: number) => {
        for (let i = 0; i < n; i++) trial[i] = m[i] + g * (v[i] - m[i]);
        return oracle.lossAt!(trial);
      };
      gamma = goldenSectionStep(phi, loss, stepSize.evaluations ?? DEFAULT_LINE_SEARCH_EVALUATIONS).gamma;
    } else {
      gamma = stepSizeAt(stepSize, t);
    }
    const nonzero = stepTowards(m, chosen, gamma);
    const it: FwIteration = { t, loss, gap, stepSize: gamma, beta, vertexSize: chosen.length, nonzero, samples };
    history.push(it);
    await opts.onIteration?.(it, m);
    await yieldNow();
  }
  return { m, history, samples };
}

// The loops of an iteration, each a module-level function over typed arrays, with loads and stores fused: written
// inline in the async frankWolfe they took 3 ms of each iteration at n = 225k. Same operations, same order, same bits.

/** dₜ = gₜ (beta undefined) or β·dₜ₋₁ + (1 − β)·gₜ, in place; returns ⟨dₜ, m⟩ summed in index order. */
function direction(d: Float32Array, grad: Float32Array, beta: number | undefined, m: Float32Array): number {
  let dot = 0;
  if (beta === undefined) {
    d.set(grad);
    for (let i = 0; i < d.length; i++) dot += d[i] * m[i];
    return dot;
  }
  const rest = 1 - beta;
  for (let i = 0; i < d.length; i++) {
    const di = Math.fround(beta * d[i] + rest * grad[i]);
    d[i] = di;
    dot += di * m[i];
  }
  return dot;
}

/** m ← (1 − γ)·m + γ·v, v the vertex of `chosen`, in place (nothing when γ = 0); returns the non-zero entries of m. */
function stepTowards(m: Float32Array, chosen: Int32Array, gamma: number): number {
  // The counts add a comparison's 0 or 1 instead of branching on it: where m is zero at random places (most of it,
  // after the first iterations) a branch was mispredicted about every other entry (1.9 ms against 0.5 at n = 225k).
  let nonzero = 0;
  if (gamma === 0) {
    for (let i = 0; i < m.length; i++) nonzero += +(m[i] !== 0);
    return nonzero;
  }
  const keep = 1 - gamma;
  for (let i = 0; i < m.length; i++) {
    const mi = Math.fround(m[i] * keep);
    m[i] = mi;
    nonzero += +(mi !== 0);
  }
  for (let j = 0; j < chosen.length; j++) {
    const i = chosen[j];
    const before = m[i];
    const after = Math.fround(before + gamma);
    m[i] = after;
    nonzero += +(after !== 0) - +(before !== 0);
  }
  return nonzero;
}
