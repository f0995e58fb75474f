import { ChannelFamily, ModelGraph, ParamGroups, asGraph, channelGroups, prunableParams, totalFlops } from "../graph";
import type { ModelLike } from "../model";
import { roundMask, roundingPrecedes } from "./frank-wolfe";
import { Mask, Weights } from "./mask";

/**
 * Structured pruning's unit: a group is a set of coupled channels (src/graph/channels.ts), for the paper CNN one
 * output channel of a conv layer (its filter and its bias) or one neuron of a hidden dense layer. The group mask m_g
 * scales every parameter slice that computes the group's channels, so a removed group outputs exactly zero and its
 * layers can be made physically smaller (surgery, src/prune/surgery.ts). The logits' channels are never groups.
 * Groups come in families (GroupLayer): the groups made by the same layers, e.g. conv1's filters.
 */
export type GroupLayer = ChannelFamily;
export type GroupLayout = GroupLayer[];

/** The model's group families, in graph order (the paper CNN: conv1's 32 filters, conv2's 64, dense1's 128 neurons). */
export function groupLayout(model: ModelLike): GroupLayout {
  return channelGroups(asGraph(model)).families;
}

export function groupCount(layout: GroupLayout): number {
  return layout.reduce((n, g) => n + g.count, 0);
}

/** Multiply-adds per example of the model's prunable kernels (the FLOPs of `RunMetrics.flops`). */
export function specFlops(model: ModelLike): number {
  return totalFlops(asGraph(model));
}

/** Kept groups per family of a 0/1 group vector. */
export function keptPerLayer(layout: GroupLayout, groups: Float32Array): number[] {
  return layout.map((g) => {
    let n = 0;
    for (let i = 0; i < g.count; i++) if (groups[g.offset + i] !== 0) n++;
    return n;
  });
}

/** Kept groups of each family, by family name, beside its count (what records and benches report). */
export function keptGroups(layout: GroupLayout, groups: Float32Array): Record<string, { kept: number; of: number }> {
  const kept = keptPerLayer(layout, groups);
  return Object.fromEntries(layout.map((g, l) => [g.name, { kept: kept[l], of: g.count }]));
}

/** Kept indices along each axis of a parameter (null: the whole axis). */
export function keptIndices(p: ParamGroups, groups: Float32Array): (number[] | null)[] {
  return p.shape.map((size, axis) => {
    const slices = p.axes.filter((a) => a.axis === axis);
    if (!slices.length) return null;
    return Array.from({ length: size }, (_, k) => k).filter((k) => slices.every((a) => a.group[k] < 0 || groups[a.group[k]] !== 0));
  });
}

/** FLOPs of the model a 0/1 group vector leaves (the surgered model's): each kernel's kept entries × its uses. */
export function groupMaskFlops(model: ModelLike, layout: GroupLayout, groups: Float32Array): number {
  const graph = asGraph(model);
  checkLayout(graph, layout);
  const byParam = new Map(channelGroups(graph).params.map((p) => [p.param, p]));
  let flops = 0;
  for (const p of prunableParams(graph)) {
    const g = byParam.get(p.name);
    const kept = g ? keptIndices(g, groups).reduce((n: number, idx, axis) => n * (idx ? idx.length : p.shape[axis]), 1) : p.size;
    flops += kept * p.uses;
  }
  return flops;
}

function checkLayout(graph: ModelGraph, layout: GroupLayout): void {
  const own = channelGroups(graph).families;
  const describe = (l: GroupLayout) => l.map((g) => `${g.name} ${g.count}`).join(", ");
  if (describe(layout) !== describe(own)) throw new Error(`group layout [${describe(layout)}]: expected model "${graph.name}"'s, [${describe(own)}]`);
}

/** Throws unless `groups` is a 0/1 vector over the model's groups that keeps at least one group of every family. */
export function checkGroups(layout: GroupLayout, groups: Float32Array): void {
  const n = groupCount(layout);
  if (groups.length !== n) throw new Error(`group mask: expected ${n} entries (${layout.map((g) => `${g.name} ${g.count}`).join(", ")}), got ${groups.length}`);
  for (let i = 0; i < n; i++) if (groups[i] !== 0 && groups[i] !== 1) throw new Error(`group mask[${i}] = ${groups[i]}; expected 0 or 1`);
  const kept = keptPerLayer(layout, groups);
  const empty = layout.find((_, l) => kept[l] === 0);
  if (empty) throw new Error(`group mask removes every group of ${empty.name}; expected at least one kept (the network would be cut)`);
}

const SCORED_ROLES = /\/(kernel|depthwise_kernel|pointwise_kernel|bias)$/;

/**
 * L1 norm of each group's weights (the kernel entries and biases that compute its channels), as in Li et al. 2017,
 * "Pruning Filters for Efficient ConvNets"; `normalized` divides by the mean over the group's family, so that groups
 * of different layers (a conv1 filter has 10 weights, a dense1 neuron 1,601) can be ranked together.
 */
export function groupL1(model: ModelLike, weights: Weights, normalized = false): Float32Array {
  const { families, count, params } = channelGroups(asGraph(model));
  const out = new Float32Array(count);
  for (const p of params) {
    if (!SCORED_ROLES.test(p.param)) continue;
    const w = weights[p.param];
    const size = p.shape.reduce((a, b) => a * b, 1);
    if (!w || w.length !== size) throw new Error(`weights["${p.param}"]: expected ${size} values, got ${w ? w.length : "none"}`);
    for (const a of p.axes) {
      if (!a.produces) continue;
      const stride = p.shape.slice(a.axis + 1).reduce((x, y) => x * y, 1);
      const len = p.shape[a.axis];
      for (let i = 0; i < w.length; i++) {
        const g = a.group[Math.floor(i / stride) % len];
        if (g >= 0) out[g] += Math.abs(w[i]);
      }
    }
  }
  if (normalized) {
    for (const f of families) {
      let sum = 0;
      for (let c = 0; c < f.count; c++) sum += out[f.offset + c];
      const mean = sum / f.count;
      if (mean > 0) for (let c = 0; c < f.count; c++) out[f.offset + c] /= mean;
    }
  }
  return out;
}

/** What a structured target reduces: the FLOPs, or the number of groups (configs call it the method's `budget`). */
export type ReductionUnit = "flops" | "groups";

/**
 * Remove kept groups (1s of `start`, changed in place), lowest `score` first (ties: lower index), never the last of
 * a family, until `done` says the mask is small enough. Returns the mask.
 */
function removeLowestUntil(layout: GroupLayout, start: Float32Array, score: Float32Array, done: (groups: Float32Array) => boolean): Float32Array {
  const familyOf = new Int32Array(start.length);
  layout.forEach((g, l) => familyOf.fill(l, g.offset, g.offset + g.count));
  const kept = keptPerLayer(layout, start);
  const order = Array.from(start.keys())
    .filter((i) => start[i] === 1)
    .sort((a, b) => score[a] - score[b] || a - b);
  for (const i of order) {
    if (done(start)) break;
    if (kept[familyOf[i]] <= 1) continue;
    start[i] = 0;
    kept[familyOf[i]]--;
  }
  return start;
}

/** The kept FLOPs a FLOP reduction `reduction` allows: (1 − reduction) × the dense model's. */
export function flopBudget(model: ModelLike, reduction: number): number {
  if (!(reduction >= 0 && reduction < 1)) throw new Error(`FLOP reduction: expected a number in [0, 1), got ${reduction}`);
  return (1 - reduction) * specFlops(model);
}

/**
 * A 0/1 group mask from scores (higher = more worth keeping), at a target `reduction` of its unit:
 * - unit "flops": the surgered model keeps at most (1 − reduction) of the dense FLOPs;
 * - unit "groups": round(reduction · G) groups are removed (round(reduction · G_l) per family with scope "per-layer").
 * Scope "global" ranks all groups together and removes the lowest first; "per-layer" removes the same fraction of
 * each family's groups (with the FLOP budget: the smallest fraction that meets it). Every family keeps ≥ 1 group.
 */
export function selectGroups(
  model: ModelLike,
  layout: GroupLayout,
  score: Float32Array,
  reduction: number,
  unit: ReductionUnit,
  scope: "global" | "per-layer",
): Float32Array {
  const n = groupCount(layout);
  if (n === 0) throw new Error(`model "${asGraph(model).name}" has no channel groups to prune (every channel reaches its input, its logits or a softmax)`);
  if (score.length !== n) throw new Error(`scores: expected ${n} entries, got ${score.length}`);
  const maxFlops = unit === "flops" ? flopBudget(model, reduction) : Infinity;
  if (unit === "groups" && !(reduction >= 0 && reduction < 1)) throw new Error(`group reduction: expected a number in [0, 1), got ${reduction}`);
  const flopsOf = (g: Float32Array) => groupMaskFlops(model, layout, g);
  const unreachable = () => new Error(`FLOP reduction ${reduction}: not reachable while every family keeps one group`);
  if (scope === "global") {
    const removeTarget = unit === "groups" ? Math.round(reduction * n) : 0;
    const all = new Float32Array(n).fill(1);
    const out = removeLowestUntil(layout, all, score, (g) => (unit === "flops" ? flopsOf(g) <= maxFlops : n - g.reduce((a, b) => a + b, 0) >= removeTarget));
    if (flopsOf(out) > maxFlops) throw unreachable();
    return out;
  }
  const perLayer = (fraction: number) => {
    const out = new Float32Array(n).fill(1);
    for (const g of layout) {
      const remove = Math.min(g.count - 1, Math.round(fraction * g.count));
      const idx = Array.from({ length: g.count }, (_, c) => g.offset + c).sort((a, b) => score[a] - score[b] || a - b);
      for (let j = 0; j < remove; j++) out[idx[j]] = 0;
    }
    return out;
  };
  if (unit === "groups") return perLayer(reduction);
  // FLOPs fall (weakly) as the fraction grows: bisect for the smallest fraction that meets the budget.
  if (flopsOf(perLayer(0)) <= maxFlops) return perLayer(0);
  let lo = 0;
  let hi = 1;
  if (flopsOf(perLayer(hi)) > maxFlops) throw unreachable();
  for (let it = 0; it < 40; it++) {
    const mid = (lo + hi) / 2;
    if (flopsOf(perLayer(mid)) <= maxFlops) hi = mid;
    else lo = mid;
  }
  return perLayer(hi);
}

/**
 * The L1 group mask (structured-magnitude's, and structured FW's start): groups scored by `groupL1` (normalized per
 * family) and selected at the target. Returns the mask and the scores.
 */
export function l1GroupMask(
  model: ModelLike,
  weights: Weights,
  reduction: number,
  unit: ReductionUnit,
  scope: "global" | "per-layer",
): { groups: Float32Array; score: Float32Array } {
  const score = groupL1(model, weights, true);
  return { groups: selectGroups(model, groupLayout(model), score, reduction, unit, scope), score };
}

/**
 * Round a relaxed group mask m to a 0/1 one inside the budget: roundMask's selection (m ≥ τ, at most k, largest m
 * first, ties by larger |tieScore|, then lower index), then at least one group per family (its first in that order),
 * then, with a FLOP budget, the kept groups last in that order removed until the FLOPs fit.
 */
export function roundGroupMask(
  model: ModelLike,
  layout: GroupLayout,
  m: Float32Array,
  opts: { k: number; tau: number; tieScore: Float32Array; maxFlops?: number },
): Float32Array {
  const n = groupCount(layout);
  if (m.length !== n) throw new Error(`relaxed group mask: expected ${n} entries, got ${m.length}`);
  const out = roundMask(m, opts.k, opts.tau, opts.tieScore);
  const precedes = roundingPrecedes(m, opts.tieScore);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (precedes(a, b) ? -1 : precedes(b, a) ? 1 : 0));
  for (const g of layout) {
    let any = false;
    for (let c = 0; c < g.count; c++) any ||= out[g.offset + c] === 1;
    if (!any) out[order.find((i) => i >= g.offset && i < g.offset + g.count) as number] = 1;
  }
  if (opts.maxFlops === undefined) return out;
  const score = new Float32Array(n);
  order.forEach((i, rank) => (score[i] = n - rank));
  const maxFlops = opts.maxFlops;
  return removeLowestUntil(layout, out, score, (g) => groupMaskFlops(model, layout, g) <= maxFlops);
}

/** For every entry of a parameter with entries in groups: whether it survives the group mask. */
function entryKept(p: ParamGroups, groups: Float32Array): Uint8Array {
  const size = p.shape.reduce((a, b) => a * b, 1);
  const keep = new Uint8Array(size).fill(1);
  for (const a of p.axes) {
    const stride = p.shape.slice(a.axis + 1).reduce((x, y) => x * y, 1);
    const len = p.shape[a.axis];
    for (let i = 0; i < size; i++) {
      const g = a.group[Math.floor(i / stride) % len];
      if (g >= 0 && groups[g] === 0) keep[i] = 0;
    }
  }
  return keep;
}

/**
 * The weight-level mask of a group mask: every prunable kernel entry that computes or reads a removed group's
 * channels is 0 (a removed filter's column, and the rows of the next layers that read it, through pools, BN,
 * depthwise convs, Adds, Concatenates and Flattens). (Biases and BN parameters are not prunable weights:
 * `applyGroupMask` zeroes them, surgery removes them.)
 */
export function expandGroupMask(model: ModelLike, groups: Float32Array): Mask {
  const graph = asGraph(model);
  const { families, params } = channelGroups(graph);
  checkGroups(families, groups);
  const byParam = new Map(params.map((p) => [p.param, p]));
  const mask: Mask = {};
  for (const p of prunableParams(graph)) {
    const g = byParam.get(p.name);
    mask[p.name] = g ? Float32Array.from(entryKept(g, groups)) : new Float32Array(p.size).fill(1);
  }
  return mask;
}

/** The weights with every entry of a removed group (kernels, biases, BN's parameters and statistics) set to 0 (same shapes). */
export function applyGroupMask(model: ModelLike, weights: Weights, groups: Float32Array): Weights {
  const { families, params } = channelGroups(asGraph(model));
  checkGroups(families, groups);
  const out: Weights = {};
  for (const [name, w] of Object.entries(weights)) out[name] = w.slice();
  for (const p of params) {
    const w = out[p.param];
    const keep = entryKept(p, groups);
    if (!w || w.length !== keep.length) throw new Error(`weights["${p.param}"]: expected ${keep.length} values, got ${w ? w.length : "none"}`);
    for (let i = 0; i < w.length; i++) if (!keep[i]) w[i] = 0;
  }
  return out;
}

/** What a structured mask leaves, for the run's record: groups and FLOPs per family, and the surgered widths. */
export interface StructureSummary {
  /** The reduction unit (the record field keeps the config's name). */
  budget: ReductionUnit;
  /** The target reduction (of FLOPs or of groups) the mask was selected for. */
  target: number;
  groups: Record<string, { kept: number; of: number }>;
  flops: { dense: number; kept: number; reduction: number };
}

export function summarizeStructure(model: ModelLike, groups: Float32Array, unit: ReductionUnit, target: number): StructureSummary {
  const layout = groupLayout(model);
  const dense = specFlops(model);
  const left = groupMaskFlops(model, layout, groups);
  return {
    budget: unit,
    target,
    groups: keptGroups(layout, groups),
    flops: { dense, kept: left, reduction: 1 - left / dense },
  };
}
