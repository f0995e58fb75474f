import { LayerSpec, ModelSpec, multiplyAdds, paramShapes } from "../model";
import { Mask, Weights, prunableLayout } from "./mask";

/**
 * Structured pruning's unit: a group is one output channel of a conv layer (its filter and its bias) or one neuron
 * of a hidden dense layer (its kernel column and its bias). The group mask m_g scales the kernel's last axis and the
 * bias together, so a removed group outputs exactly zero and its layer can be made physically smaller (surgery). The
 * output layer's neurons are never groups.
 */
export interface GroupLayer {
  /** "conv1", "dense1", …: the prefix of its kernel and bias names. */
  name: string;
  kernel: string;
  bias: string;
  /** Index of the layer in spec.layers. */
  specIndex: number;
  /** Where its groups sit in the flat group vector. */
  offset: number;
  count: number;
  /** Kernel shape: [k, k, cin, cout] or [in, out]; the group is the last axis. */
  kernelShape: number[];
}
export type GroupLayout = GroupLayer[];

/** The groups of a spec, in spec order: every conv layer's filters and every dense layer's units but the last layer's. */
export function groupLayout(spec: ModelSpec): GroupLayout {
  const shapes = new Map(paramShapes(spec).map((p) => [p.name, p.shape]));
  const out: GroupLayout = [];
  let conv = 0;
  let dense = 0;
  let offset = 0;
  const lastWeighted = spec.layers.map((l) => l.type === "conv2d" || l.type === "dense").lastIndexOf(true);
  spec.layers.forEach((layer, specIndex) => {
    if (layer.type !== "conv2d" && layer.type !== "dense") return;
    const name = layer.type === "conv2d" ? `conv${++conv}` : `dense${++dense}`;
    if (specIndex === lastWeighted) return;
    const count = layer.type === "conv2d" ? layer.filters : layer.units;
    out.push({ name, kernel: `${name}/kernel`, bias: `${name}/bias`, specIndex, offset, count, kernelShape: shapes.get(`${name}/kernel`) as number[] });
    offset += count;
  });
  return out;
}

export function groupCount(layout: GroupLayout): number {
  return layout.reduce((n, g) => n + g.count, 0);
}

/** The spec with each grouped layer narrowed to `kept[l]` filters / units. */
export function narrowedSpec(spec: ModelSpec, layout: GroupLayout, kept: number[]): ModelSpec {
  const layers = spec.layers.map((l) => ({ ...l })) as LayerSpec[];
  layout.forEach((g, l) => {
    const layer = layers[g.specIndex];
    if (layer.type === "conv2d") layer.filters = kept[l];
    else if (layer.type === "dense") layer.units = kept[l];
  });
  return { ...spec, layers };
}

/** Multiply-adds per image of the conv and dense kernels (the FLOPs of `RunMetrics.flops`). */
export function specFlops(spec: ModelSpec): number {
  return multiplyAdds(spec).reduce((n, k) => n + k.multiplyAdds, 0);
}

/** Kept groups per layer of a 0/1 group vector. */
export function keptPerLayer(layout: GroupLayout, groups: Float32Array): number[] {
  return layout.map((g) => {
    let n = 0;
    for (let i = 0; i < g.count; i++) if (groups[g.offset + i] !== 0) n++;
    return n;
  });
}

/** Kept groups of each layer, by layer name, beside the layer's count (what records and benches report). */
export function keptGroups(layout: GroupLayout, groups: Float32Array): Record<string, { kept: number; of: number }> {
  const kept = keptPerLayer(layout, groups);
  return Object.fromEntries(layout.map((g, l) => [g.name, { kept: kept[l], of: g.count }]));
}

/** FLOPs of the model a 0/1 group vector leaves (the surgered model's). */
export function groupMaskFlops(spec: ModelSpec, layout: GroupLayout, groups: Float32Array): number {
  return specFlops(narrowedSpec(spec, layout, keptPerLayer(layout, groups)));
}

function checkGroups(layout: GroupLayout, groups: Float32Array): void {
  const n = groupCount(layout);
  if (groups.length !== n) throw new Error(`group mask: expected ${n} entries (${layout.map((g) => `${g.name} ${g.count}`).join(", ")}), got ${groups.length}`);
  for (let i = 0; i < n; i++) if (groups[i] !== 0 && groups[i] !== 1) throw new Error(`group mask[${i}] = ${groups[i]}; expected 0 or 1`);
  const kept = keptPerLayer(layout, groups);
  const empty = layout.find((_, l) => kept[l] === 0);
  if (empty) throw new Error(`group mask removes every group of ${empty.name}; expected at least one kept (the network would be cut)`);
}

/**
 * L1 norm of each group's weights (kernel column and bias), as in Li et al. 2017, "Pruning Filters for Efficient
 * ConvNets"; `normalized` divides by the mean over the group's layer, so that groups of different layers (a conv1
 * filter has 10 weights, a dense1 neuron 1,601) can be ranked together.
 */
export function groupL1(layout: GroupLayout, weights: Weights, normalized = false): Float32Array {
  const out = new Float32Array(groupCount(layout));
  for (const g of layout) {
    const w = weights[g.kernel];
    const b = weights[g.bias];
    if (!w || !b || b.length !== g.count || w.length % g.count !== 0) throw new Error(`weights of ${g.name}: expected a kernel with ${g.count} columns and ${g.count} biases`);
    for (let i = 0; i < w.length; i++) out[g.offset + (i % g.count)] += Math.abs(w[i]);
    let sum = 0;
    for (let c = 0; c < g.count; c++) {
      out[g.offset + c] += Math.abs(b[c]);
      sum += out[g.offset + c];
    }
    const mean = sum / g.count;
    if (normalized && mean > 0) for (let c = 0; c < g.count; c++) out[g.offset + c] /= mean;
  }
  return out;
}

export type StructuredBudget = "flops" | "groups";

/**
 * Remove kept groups (1s of `start`, changed in place), lowest `score` first (ties: lower index), never the last of
 * a layer, until `done` says the mask is small enough. Returns the mask.
 */
function removeLowestUntil(layout: GroupLayout, start: Float32Array, score: Float32Array, done: (groups: Float32Array) => boolean): Float32Array {
  const layerOf = new Int32Array(start.length);
  layout.forEach((g, l) => layerOf.fill(l, g.offset, g.offset + g.count));
  const kept = keptPerLayer(layout, start);
  const order = Array.from(start.keys()).filter((i) => start[i] === 1).sort((a, b) => score[a] - score[b] || a - b);
  for (const i of order) {
    if (done(start)) break;
    if (kept[layerOf[i]] <= 1) continue;
    start[i] = 0;
    kept[layerOf[i]]--;
  }
  return start;
}

/** The kept FLOPs a FLOP reduction `reduction` allows: (1 − reduction) × the dense model's. */
export function flopBudget(spec: ModelSpec, reduction: number): number {
  if (!(reduction >= 0 && reduction < 1)) throw new Error(`FLOP reduction: expected a number in [0, 1), got ${reduction}`);
  return (1 - reduction) * specFlops(spec);
}

/**
 * A 0/1 group mask from scores (higher = more worth keeping), at a target `reduction` of the budget unit:
 * - budget "flops": the surgered model keeps at most (1 − reduction) of the dense FLOPs;
 * - budget "groups": round(reduction · G) groups are removed (round(reduction · G_l) per layer with scope "per-layer").
 * Scope "global" ranks all groups together and removes the lowest first; "per-layer" removes the same fraction of
 * each layer's groups (with the FLOP budget: the smallest fraction that meets it). Every layer keeps ≥ 1 group.
 */
export function selectGroups(spec: ModelSpec, layout: GroupLayout, score: Float32Array, reduction: number, budget: StructuredBudget, scope: "global" | "per-layer"): Float32Array {
  const n = groupCount(layout);
  if (score.length !== n) throw new Error(`scores: expected ${n} entries, got ${score.length}`);
  const maxFlops = budget === "flops" ? flopBudget(spec, reduction) : Infinity;
  if (budget === "groups" && !(reduction >= 0 && reduction < 1)) throw new Error(`group reduction: expected a number in [0, 1), got ${reduction}`);
  if (scope === "global") {
    const removeTarget = budget === "groups" ? Math.round(reduction * n) : 0;
    const all = new Float32Array(n).fill(1);
    const out = removeLowestUntil(layout, all, score, (g) =>
      budget === "flops" ? groupMaskFlops(spec, layout, g) <= maxFlops : n - g.reduce((a, b) => a + b, 0) >= removeTarget);
    if (groupMaskFlops(spec, layout, out) > maxFlops) throw new Error(`FLOP reduction ${reduction}: not reachable while every layer keeps one group`);
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
  if (budget === "groups") return perLayer(reduction);
  // FLOPs fall (weakly) as the fraction grows: bisect for the smallest fraction that meets the budget.
  if (groupMaskFlops(spec, layout, perLayer(0)) <= maxFlops) return perLayer(0);
  let lo = 0;
  let hi = 1;
  if (groupMaskFlops(spec, layout, perLayer(hi)) > maxFlops) throw new Error(`FLOP reduction ${reduction}: not reachable while every layer keeps one group`);
  for (let it = 0; it < 40; it++) {
    const mid = (lo + hi) / 2;
    if (groupMaskFlops(spec, layout, perLayer(mid)) <= maxFlops) hi = mid;
    else lo = mid;
  }
  return perLayer(hi);
}

/**
 * Round a relaxed group mask m to a 0/1 one inside the budget: keep groups with m ≥ τ, at most k of them (largest m
 * first; ties by `tieScore`), at least one per layer (its largest m), then, with a FLOP budget, remove the kept
 * groups of smallest m until the FLOPs fit.
 */
export function roundGroupMask(
  spec: ModelSpec,
  layout: GroupLayout,
  m: Float32Array,
  opts: { k: number; tau: number; tieScore: Float32Array; maxFlops?: number },
): Float32Array {
  const n = groupCount(layout);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => m[b] - m[a] || opts.tieScore[b] - opts.tieScore[a] || a - b);
  const out = new Float32Array(n);
  let kept = 0;
  for (const i of order) {
    if (kept >= opts.k || m[i] < opts.tau) break;
    out[i] = 1;
    kept++;
  }
  for (const g of layout) {
    let any = false;
    for (let c = 0; c < g.count; c++) any ||= out[g.offset + c] === 1;
    if (!any) out[order.find((i) => i >= g.offset && i < g.offset + g.count) as number] = 1;
  }
  if (opts.maxFlops === undefined) return out;
  const score = new Float32Array(n);
  order.forEach((i, rank) => (score[i] = n - rank));
  const maxFlops = opts.maxFlops;
  return removeLowestUntil(layout, out, score, (g) => groupMaskFlops(spec, layout, g) <= maxFlops);
}

/**
 * The weight-level mask of a group mask: a removed group's kernel column, and the inputs of the next weighted
 * layer that read it (through max pools and the flatten), are 0. (The bias of a removed group is not a prunable
 * weight: `applyGroupMask` zeroes it, surgery removes it.)
 */
export function expandGroupMask(spec: ModelSpec, groups: Float32Array): Mask {
  const layout = groupLayout(spec);
  checkGroups(layout, groups);
  const mask: Mask = {};
  for (const e of prunableLayout(spec)) mask[e.name] = new Float32Array(e.length).fill(1);
  walkKernels(spec, layout, groups, (kernel, shape, keepIn, keepOut) => {
    const m = mask[kernel];
    const outs = shape[shape.length - 1];
    const ins = m.length / outs;
    for (let r = 0; r < ins; r++) for (let c = 0; c < outs; c++) if (!keepIn[r] || !keepOut[c]) m[r * outs + c] = 0;
  });
  return mask;
}

/**
 * For every weighted layer, in order: its kernel, shape, which kernel rows (every axis but the last, flattened) read
 * a kept input, and which of its outputs are kept.
 */
function walkKernels(
  spec: ModelSpec,
  layout: GroupLayout,
  groups: Float32Array,
  visit: (kernel: string, shape: number[], keepRow: boolean[], keepOut: boolean[], bias: string) => void,
): void {
  const shapes = new Map(paramShapes(spec).map((p) => [p.name, p.shape]));
  let channels: boolean[] = new Array(spec.inputShape[2]).fill(true);
  let positions = 1;
  let flattened = false;
  let conv = 0;
  let dense = 0;
  let [h, w] = spec.inputShape;
  spec.layers.forEach((layer, specIndex) => {
    if (layer.type === "maxpool") {
      h = Math.floor(h / layer.size);
      w = Math.floor(w / layer.size);
      return;
    }
    if (layer.type === "flatten") {
      positions = h * w;
      flattened = true;
      return;
    }
    const name = layer.type === "conv2d" ? `conv${++conv}` : `dense${++dense}`;
    const shape = shapes.get(`${name}/kernel`) as number[];
    const outs = shape[shape.length - 1];
    const g = layout.find((x) => x.specIndex === specIndex);
    const keepOut = Array.from({ length: outs }, (_, c) => !g || groups[g.offset + c] !== 0);
    let keepRow: boolean[];
    if (layer.type === "conv2d") {
      const [k1, k2, cin] = shape;
      keepRow = Array.from({ length: k1 * k2 * cin }, (_, r) => channels[r % cin]);
      const s = layer.stride ?? 1;
      if ((layer.padding ?? "valid") === "valid") {
        h = Math.floor((h - k1) / s) + 1;
        w = Math.floor((w - k2) / s) + 1;
      } else {
        h = Math.ceil(h / s);
        w = Math.ceil(w / s);
      }
    } else {
      // After a flatten of [h, w, c] (row-major, NHWC), input r reads channel r mod c.
      const c = channels.length;
      keepRow = Array.from({ length: shape[0] }, (_, r) => (flattened ? channels[r % c] : channels[r]));
      if (flattened && shape[0] !== positions * c) throw new Error(`${name}: expected ${positions * c} inputs after the flatten, got ${shape[0]}`);
      flattened = false;
    }
    visit(`${name}/kernel`, shape, keepRow, keepOut, `${name}/bias`);
    channels = keepOut;
  });
}

/** The weights with every removed group's kernel column, bias and next-layer inputs set to 0 (same shapes). */
export function applyGroupMask(spec: ModelSpec, weights: Weights, groups: Float32Array): Weights {
  const mask = expandGroupMask(spec, groups);
  const out: Weights = {};
  for (const [name, w] of Object.entries(weights)) out[name] = w.slice();
  for (const [name, m] of Object.entries(mask)) {
    const w = out[name];
    if (!w || w.length !== m.length) throw new Error(`weights["${name}"]: expected ${m.length} values, got ${w ? w.length : "none"}`);
    for (let i = 0; i < w.length; i++) if (m[i] === 0) w[i] = 0;
  }
  for (const g of groupLayout(spec)) {
    const b = out[g.bias];
    for (let c = 0; c < g.count; c++) if (groups[g.offset + c] === 0) b[c] = 0;
  }
  return out;
}

/**
 * Surgery: the physically smaller model a group mask describes. Each grouped layer keeps only its kept filters /
 * units (kernel columns and biases); the next weighted layer keeps only the inputs that read them (a conv's input
 * channels; a dense layer's rows, through the flatten). Its forward pass equals the masked model's (applyGroupMask).
 */
export function surgery(spec: ModelSpec, weights: Weights, groups: Float32Array): { spec: ModelSpec; weights: Weights } {
  const layout = groupLayout(spec);
  checkGroups(layout, groups);
  const out: Weights = {};
  walkKernels(spec, layout, groups, (kernel, shape, keepRow, keepOut, bias) => {
    const w = weights[kernel];
    const b = weights[bias];
    const outs = shape[shape.length - 1];
    if (!w || w.length !== keepRow.length * outs) throw new Error(`weights["${kernel}"]: expected ${keepRow.length * outs} values, got ${w ? w.length : "none"}`);
    if (!b || b.length !== outs) throw new Error(`weights["${bias}"]: expected ${outs} values, got ${b ? b.length : "none"}`);
    const rows = keepRow.flatMap((k, r) => (k ? [r] : []));
    const cols = keepOut.flatMap((k, c) => (k ? [c] : []));
    const nw = new Float32Array(rows.length * cols.length);
    rows.forEach((r, i) => cols.forEach((c, j) => (nw[i * cols.length + j] = w[r * outs + c])));
    out[kernel] = nw;
    out[bias] = Float32Array.from(cols, (c) => b[c]);
  });
  const smaller = narrowedSpec(spec, layout, keptPerLayer(layout, groups));
  return { spec: { ...smaller, name: `${spec.name}-surgered` }, weights: out };
}

/**
 * The inverse of surgery for measuring: the surgered weights written back into the original shapes, 0 where a
 * group was removed, so sparsity and FLOPs are counted against the original model.
 */
export function unsurgery(spec: ModelSpec, surgered: Weights, groups: Float32Array): Weights {
  const layout = groupLayout(spec);
  checkGroups(layout, groups);
  const out: Weights = {};
  walkKernels(spec, layout, groups, (kernel, shape, keepRow, keepOut, bias) => {
    const outs = shape[shape.length - 1];
    const rows = keepRow.flatMap((k, r) => (k ? [r] : []));
    const cols = keepOut.flatMap((k, c) => (k ? [c] : []));
    const small = surgered[kernel];
    const sb = surgered[bias];
    if (!small || small.length !== rows.length * cols.length) throw new Error(`surgered weights["${kernel}"]: expected ${rows.length * cols.length} values, got ${small ? small.length : "none"}`);
    const w = new Float32Array(keepRow.length * outs);
    rows.forEach((r, i) => cols.forEach((c, j) => (w[r * outs + c] = small[i * cols.length + j])));
    const b = new Float32Array(outs);
    cols.forEach((c, j) => (b[c] = sb[j]));
    out[kernel] = w;
    out[bias] = b;
  });
  return out;
}

/** What a structured mask leaves, for the run's record: groups and FLOPs per layer, and the surgered widths. */
export interface StructureSummary {
  budget: StructuredBudget;
  /** The target reduction (of FLOPs or of groups) the mask was selected for. */
  target: number;
  groups: Record<string, { kept: number; of: number }>;
  flops: { dense: number; kept: number; reduction: number };
}

export function summarizeStructure(spec: ModelSpec, groups: Float32Array, budget: StructuredBudget, target: number): StructureSummary {
  const layout = groupLayout(spec);
  const dense = specFlops(spec);
  const left = groupMaskFlops(spec, layout, groups);
  return {
    budget,
    target,
    groups: keptGroups(layout, groups),
    flops: { dense, kept: left, reduction: 1 - left / dense },
  };
}
