// Set-up and small computations the notebooks share: which config they run (FWPRUNE_PRESET), where the cache lives
// (FWPRUNE_DATA_DIR), sweeps and single runs with live progress, a cached step-by-step Frank-Wolfe exploration (custom
// schedules allowed), and the paper's claims checked against the measured runs.
import * as fs from "fs";
import * as path from "path";
import { Model, ModelSpec, disposeModel } from "./model";
import { ExperimentConfig, MethodEntry, PRUNING_METHODS, budgetsOf, loadConfig, sparsitiesOf, validateConfig } from "./experiment/config";
import { toPruneParams } from "./experiment/methods";
import { canonicalJson, hashKey, methodParams, planRuns, pretrainInputs } from "./experiment/plan";
import { datasetFor, ensureBackend } from "./experiment/run";
import { RunRecord, checkpointDir, checkpointFile, readRecord } from "./experiment/store";
import { SweepProgress, SweepResult, runOne, sweep } from "./experiment/sweep";
import { writeFileAtomic } from "./fsutil";
import { FwParams, FwIteration, fwMaskPrune, applyMask, weightSparsity, resolvePruneParams, describePruneParams, retrainInPlace } from "./prune";
import { REPO_ROOT } from "./report/notebooks";
import { progressDisplay } from "./report/display";
import { FIGURE_PALETTE, PlotlyFigure, lineChart } from "./report/figures";
import { AggregatedMetric, aggregateRecords } from "./report/frame";
import { evaluate, loadCheckpoint, median } from "./train";

/** The repository root (dist/ and src/ both sit one level below it). */

export interface NotebookContext {
  /** What FWPRUNE_PRESET named: "quick", "paper", or the absolute path of a JSON config. */
  preset: string;
  config: ExperimentConfig;
  /** Absolute: checkpoints, run records and explorations live here. */
  dataDir: string;
  /** Worker processes for sweeps (FWPRUNE_WORKERS; default one per core). */
  workers?: number;
}

/**
 * The config and cache folder a notebook runs with. FWPRUNE_PRESET = quick (default) | paper | path of a JSON config;
 * FWPRUNE_DATA_DIR (default data/); relative paths are taken from the repository root, wherever the kernel runs.
 */
export function notebookConfig(env: Record<string, string | undefined> = process.env): NotebookContext {
  const named = env.FWPRUNE_PRESET?.trim() || "quick";
  const preset = named === "quick" || named === "paper" ? named : path.resolve(REPO_ROOT, named);
  const config = loadConfig(preset);
  const dataDir = path.resolve(REPO_ROOT, env.FWPRUNE_DATA_DIR?.trim() || "data");
  let workers: number | undefined;
  if (env.FWPRUNE_WORKERS !== undefined && env.FWPRUNE_WORKERS.trim() !== "") {
    workers = Number(env.FWPRUNE_WORKERS);
    if (!Number.isInteger(workers) || workers < 0) throw new Error(`FWPRUNE_WORKERS: expected an integer ≥ 0, got ${JSON.stringify(env.FWPRUNE_WORKERS)}`);
  }
  return { preset, config, dataDir, workers };
}

/** Initialise the tfjs backend (once per kernel) and return its name. */
export function notebookBackend(): Promise<string> {
  return ensureBackend();
}

/** One line saying what runs: preset, data, seeds, budgets, methods, cache folder. */
export function describeContext(ctx: NotebookContext): string {
  const c = ctx.config;
  const data = canonicalJson(c.dataset);
  const methods = c.methods.map((m) => `${m.name}${m.budgets ? ` (budgets ${budgetsOf(c, m).join(",")})` : ""}`).join(", ");
  return [
    `preset: ${path.isAbsolute(ctx.preset) ? path.relative(REPO_ROOT, ctx.preset) : ctx.preset} (config "${c.name}")`,
    `data: ${data}`,
    `seeds: ${c.seeds.join(", ")}; budgets (pre-training epochs): ${budgetsOf(c).join(", ")}; target sparsity: ${JSON.stringify(c.sparsity)}`,
    `FW: T = ${c.fw.iterations}, minibatch ${c.fw.batchSize}, step ${canonicalJson(c.fw.stepSize)}, momentum ${canonicalJson(c.fw.momentum)}, τ = ${c.fw.tau}`,
    `retraining: ${c.retrain.epochs} epoch(s), lr ${c.retrain.lr}, momentum ${c.retrain.momentum}, batch ${c.retrain.batchSize}`,
    `methods: ${methods}`,
    `cache: ${path.relative(REPO_ROOT, ctx.dataDir).startsWith("..") ? ctx.dataDir : path.relative(REPO_ROOT, ctx.dataDir) || "."}`,
  ].join("\n");
}

/** The config with these method entries added (replacing any of the same name). */
export function withMethods(config: ExperimentConfig, entries: (MethodEntry | string)[]): ExperimentConfig {
  const added = entries.map((e) => (typeof e === "string" ? { name: e, method: e } : e)) as MethodEntry[];
  const names = new Set(added.map((e) => e.name));
  return validateConfig({ ...config, methods: [...config.methods.filter((m) => !names.has(m.name)), ...added] }, "notebook config");
}

/** The config restricted to the named methods (same run keys: a method's runs do not depend on the others). */
export function onlyMethods(config: ExperimentConfig, names: string[]): ExperimentConfig {
  const methods = config.methods.filter((m) => names.includes(m.name));
  if (methods.length === 0) throw new Error(`onlyMethods: none of ${names.join(", ")} is among the config's methods (${config.methods.map((m) => m.name).join(", ")})`);
  return validateConfig({ ...config, methods }, "notebook config");
}

/**
 * The checkpoint the single-checkpoint notebooks study: `wanted` (2 epochs, as in PAPER.md) when every pruning
 * method runs at that budget, else the first budget they all share.
 */
export function focusBudget(config: ExperimentConfig, wanted = 2): number {
  const pruning = config.methods.filter((m) => PRUNING_METHODS.includes(m.method));
  const shared = budgetsOf(config).filter((b) => pruning.every((m) => budgetsOf(config, m).includes(b)));
  if (shared.includes(wanted)) return wanted;
  return shared[0] ?? budgetsOf(config)[0];
}

function progressNote(p: SweepProgress): string {
  const busy = p.current.filter((c) => c !== "idle");
  return `runs ${p.runsDone}/${p.runsTotal}${p.failed ? `, ${p.failed} failed` : ""}${busy.length ? ` · ${busy.join(" ; ").slice(0, 120)}` : ""}`;
}

/** runSweep with a live progress bar in the notebook: computes what the cache lacks, returns every record. */
export async function sweepWithProgress(ctx: NotebookContext, config: ExperimentConfig = ctx.config, label = `sweep ${config.name}`): Promise<SweepResult> {
  const bar = progressDisplay(label);
  const result = await sweep(config, { dataDir: ctx.dataDir, workers: ctx.workers, onProgress: (p) => bar.update(p.done, p.total, progressNote(p)) });
  bar.finish(`${result.runs} runs: ${result.cached} from the cache, ${result.computed} computed, ${result.failed} failed (${result.seconds.toFixed(1)} s)`);
  const failed = result.records.filter((r) => r.status === "failed");
  if (failed.length) console.error(failed.map((r) => `failed: ${r.label} budget ${r.budget} seed ${r.seed}: ${r.reason}`).join("\n"));
  return result;
}

/** runOne (the cached single-run runner) with a live progress line. */
export async function runOneWithProgress(
  ctx: NotebookContext,
  config: ExperimentConfig,
  selection: { method: string; budget: number; seed?: number; sparsity?: number },
): Promise<RunRecord> {
  const bar = progressDisplay(`${selection.method} at budget ${selection.budget}`);
  const record = await runOne(config, selection, { dataDir: ctx.dataDir, onProgress: (p) => bar.update(p.done, p.total, progressNote(p)) });
  bar.finish(record.status === "ok" ? `test accuracy ${record.metrics?.testAccuracy.toFixed(4)}, sparsity ${record.metrics?.sparsity.toFixed(4)}` : `FAILED: ${record.reason}`);
  if (record.status !== "ok") throw new Error(`run ${selection.method} at budget ${selection.budget} failed: ${record.reason}`);
  return record;
}

/** A run's record if the cache holds it (computes nothing): e.g. the sweep's run of `method` at `budget`. */
export function cachedRecord(ctx: NotebookContext, method: string, budget: number, seed = ctx.config.seeds[0], config = ctx.config): RunRecord | undefined {
  const plan = planRuns(onlyMethods(config, [method])).find((r) => r.budget === budget && r.seed === seed);
  if (!plan) return undefined;
  const r = readRecord(ctx.dataDir, plan.key);
  return r.kind === "ok" && r.record.status === "ok" ? { ...r.record, label: method } : undefined;
}

/**
 * Metric vs pre-training budget, one line per method (config order): the mean over seeds, with its 95% confidence
 * band when there are several seeds. `scale` multiplies values (100: fractions as percent).
 */
export function budgetFigure(
  records: RunRecord[],
  metric: AggregatedMetric,
  opts: { title: string; yTitle: string; scale?: number; logY?: boolean; /** Methods (labels) to leave out of the figure (they still serve as reference, e.g. dense for time ratios). */ exclude?: string[] },
): PlotlyFigure {
  const scale = opts.scale ?? 1;
  const rows = aggregateRecords(records)
    .filter((r) => r[metric].count > 0 && !(opts.exclude ?? []).includes(r.label))
    .map((r) => {
      const s = r[metric];
      const ci = Number.isFinite(s.ci95) ? s.ci95 : NaN;
      return { method: r.label, budget: r.budget, value: s.mean * scale, lower: (s.mean - ci) * scale, upper: (s.mean + ci) * scale };
    });
  const bands = rows.some((r) => Number.isFinite(r.lower));
  // Colours by position among all methods, so a method keeps its colour when others are left out.
  const colors = Object.fromEntries([...new Set(records.map((r) => r.label))].map((label, i) => [label, FIGURE_PALETTE[i % FIGURE_PALETTE.length]]));
  return lineChart({
    rows, x: "budget", y: "value", group: "method", markers: true, band: bands ? { lower: "lower", upper: "upper" } : undefined, colors,
    title: opts.title, xTitle: "pre-training budget (epochs)", yTitle: opts.yTitle, logY: opts.logY,
  });
}

/** The checkpoint file of (budget, seed) under the context's cache; it exists once pre-training reached that epoch. */
export function checkpointPath(ctx: NotebookContext, budget: number, seed = ctx.config.seeds[0], config = ctx.config): string {
  return checkpointFile(ctx.dataDir, hashKey(pretrainInputs(config, seed)), budget);
}

/** Make sure the checkpoint exists (pre-training through the cached runner if needed) and load it. */
export async function loadFocusCheckpoint(ctx: NotebookContext, budget: number, seed = ctx.config.seeds[0]): Promise<Model> {
  await ensureBackend();
  const file = checkpointPath(ctx, budget, seed);
  if (!fs.existsSync(file)) await runOneWithProgress(ctx, withMethods(ctx.config, ["dense"]), { method: "dense", budget, seed });
  return loadCheckpoint(file).model;
}

export interface PretrainLog {
  /** Mean training loss of each pre-training epoch (1-based epoch i at index i − 1). */
  losses: number[];
  epochSeconds: number[];
}

/** What dense pre-training recorded for a seed (pretrain.json beside its checkpoints), if it ran. */
export function pretrainLog(ctx: NotebookContext, seed = ctx.config.seeds[0]): PretrainLog | undefined {
  const file = path.join(checkpointDir(ctx.dataDir, hashKey(pretrainInputs(ctx.config, seed))), "pretrain.json");
  try {
    const info = JSON.parse(fs.readFileSync(file, "utf8")) as PretrainLog;
    return { losses: info.losses ?? [], epochSeconds: info.epochSeconds ?? [] };
  } catch {
    return undefined;
  }
}

/** A record's FW history as chart rows: { method, t, loss, gap, stepSize, beta, nonzero }. */
export function historyRows(record: RunRecord, name = record.label): { method: string; t: number; loss: number; gap: number; stepSize: number; beta: number; nonzero: number }[] {
  const history = (record.history ?? []) as FwIteration[];
  return history.map((h) => ({ method: name, t: h.t, loss: h.loss, gap: h.gap, stepSize: h.stepSize, beta: h.beta, nonzero: h.nonzero }));
}

/** Centered moving average (window w, shrinking at the ends): minibatch losses are noisy. */
export function movingAverage(values: number[], w: number): number[] {
  const half = Math.floor(w / 2);
  return values.map((_, i) => {
    const lo = Math.max(0, i - half);
    const hi = Math.min(values.length, i + half + 1);
    let s = 0;
    for (let j = lo; j < hi; j++) s += values[j];
    return s / (hi - lo);
  });
}

/** Multiply-adds per input image of each prunable kernel (conv: output positions × kernel volume; dense: in × out). */
export function multiplyAdds(spec: ModelSpec): { kernel: string; weights: number; multiplyAdds: number }[] {
  let [h, w, c] = spec.inputShape;
  let flat: number | undefined;
  let conv = 0;
  let dense = 0;
  const out: { kernel: string; weights: number; multiplyAdds: number }[] = [];
  for (const layer of spec.layers) {
    if (layer.type === "conv2d") {
      const k = layer.kernelSize;
      const s = layer.stride ?? 1;
      const [oh, ow] = layer.padding === "same" ? [Math.ceil(h / s), Math.ceil(w / s)] : [Math.floor((h - k) / s) + 1, Math.floor((w - k) / s) + 1];
      const weights = k * k * c * layer.filters;
      out.push({ kernel: `conv${++conv}/kernel`, weights, multiplyAdds: oh * ow * weights });
      [h, w, c] = [oh, ow, layer.filters];
    } else if (layer.type === "maxpool") {
      [h, w] = [Math.floor(h / layer.size), Math.floor(w / layer.size)];
    } else if (layer.type === "flatten") {
      flat = h * w * c;
    } else {
      const inputs = flat ?? h * w * c;
      out.push({ kernel: `dense${++dense}/kernel`, weights: inputs * layer.units, multiplyAdds: inputs * layer.units });
      flat = layer.units;
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------ FW exploration

export interface FwExploreOptions {
  budget: number;
  seed?: number;
  /** "fw" (no momentum) or "fw-momentum": which of the config's FW settings to start from. */
  method: "fw" | "fw-momentum";
  /** A name for this variant (shown in figures; not part of the cache key). */
  label?: string;
  /** Overrides of the FW parameters; stepSize and momentum may be custom `{ name, fn }` schedules. */
  fw?: Partial<Omit<FwParams, "seed">>;
  /** Retrain the rounded mask as the sweep does (default true). */
  retrain?: boolean;
  onIteration?: (it: FwIteration) => void;
}

export interface FwExploration {
  key: string;
  label: string;
  budget: number;
  seed: number;
  /** The FW parameters, canonical (custom schedules by name). */
  params: Record<string, unknown>;
  history: FwIteration[];
  /** n prunable weights, k the budget (ones allowed), τ the rounding threshold. */
  n: number;
  k: number;
  tau: number;
  /** The relaxed mask m_T: how many entries are exactly 0, and a 20-bin histogram of the others over (0, 1]. */
  relaxed: { zeros: number; bins: { from: number; to: number; count: number }[]; aboveTau: number };
  /** Ones of the rounded mask, and how many of them the magnitude start mask m₀ had too. */
  kept: number;
  keptFromStart: number;
  /** Right after rounding (before retraining), and after retraining (when asked). */
  pruned: { accuracy: number; loss: number; sparsity: number };
  retrained?: { accuracy: number; loss: number; sparsity: number };
  samplesUsed: number;
  seconds: number;
}

function scheduleSource(s: unknown): string | undefined {
  return s !== null && typeof s === "object" && typeof (s as { fn?: unknown }).fn === "function" ? String((s as { fn: () => number }).fn) : undefined;
}

/**
 * One Frank-Wolfe pruning of a checkpoint, step by step, with what a run record does not keep: the relaxed mask m_T
 * (histogram), and how rounding turned it into a binary mask. Same defaults, minibatches and retraining as the sweep's
 * run (so built-in settings reproduce its numbers). Cached under <dataDir>/explorations by the parameters (a custom
 * schedule by its name and source text): re-executing a notebook recomputes only what changed.
 */
export async function exploreFrankWolfe(ctx: NotebookContext, opts: FwExploreOptions): Promise<FwExploration> {
  const config = ctx.config;
  const seed = opts.seed ?? config.seeds[0];
  const entry = config.methods.find((m) => m.method === opts.method) ?? { name: opts.method, method: opts.method };
  const sparsity = sparsitiesOf(config, entry)[0];
  const base = toPruneParams(opts.method, methodParams(config, entry, sparsity), seed) as Partial<FwParams> & { method: string };
  const { params: full } = resolvePruneParams({ ...base, ...opts.fw, method: opts.method });
  const params = full as unknown as FwParams;
  const retrainParams = { ...config.retrain, ...entry.retrain };
  const retrain = opts.retrain ?? true;
  const described = describePruneParams({ ...base, ...opts.fw, method: opts.method });
  const key = hashKey({
    kind: "fw-exploration",
    format: 1,
    checkpoint: { pretrainKey: hashKey(pretrainInputs(config, seed)), epoch: opts.budget },
    testSet: { dataset: config.dataset },
    params: described,
    sources: { stepSize: scheduleSource(params.stepSize), momentum: scheduleSource(params.momentum) },
    retrain: retrain ? retrainParams : null,
  });
  const label = opts.label ?? opts.method;
  const file = path.join(ctx.dataDir, "explorations", `${key}.json`);
  if (fs.existsSync(file)) {
    try {
      const cached = JSON.parse(fs.readFileSync(file, "utf8")) as FwExploration;
      if (cached.key === key) {
        cached.history.forEach((it) => opts.onIteration?.(it));
        return { ...cached, label };
      }
    } catch {
      // unreadable: recompute and overwrite
    }
  }

  const start = performance.now();
  const checkpoint = await loadFocusCheckpoint(ctx, opts.budget, seed);
  const data = datasetFor(config.dataset);
  let model: Model | undefined;
  try {
    const { theta, k, m0, m, rounded, mask, history, samples } = await fwMaskPrune(checkpoint, data.train, params, (it) => opts.onIteration?.(it));
    const n = theta.length;
    const bins = Array.from({ length: 20 }, (_, i) => ({ from: i / 20, to: (i + 1) / 20, count: 0 }));
    let zeros = 0;
    let aboveTau = 0;
    for (let i = 0; i < n; i++) {
      if (m[i] === 0) zeros++;
      else bins[Math.min(19, Math.ceil(m[i] * 20) - 1)].count++;
      if (m[i] >= params.threshold) aboveTau++;
    }
    let kept = 0;
    let keptFromStart = 0;
    for (let i = 0; i < n; i++) {
      if (rounded[i] === 1) {
        kept++;
        if (m0[i] === 1) keptFromStart++;
      }
    }
    model = applyMask(checkpoint, mask);
    const prunedEval = evaluate(model, data.test);
    const pruned = { ...prunedEval, sparsity: weightSparsity(model).global };
    let retrained: FwExploration["retrained"];
    let samplesUsed = samples;
    if (retrain && retrainParams.epochs > 0) {
      const r = await retrainInPlace(model, mask, data.train, { ...retrainParams, seed, streamLabel: `retrain/${opts.budget}` });
      samplesUsed += r.samples;
      retrained = { ...evaluate(model, data.test), sparsity: weightSparsity(model).global };
    }
    const exploration: FwExploration = {
      key, label, budget: opts.budget, seed, params: described, history, n, k, tau: params.threshold,
      relaxed: { zeros, bins, aboveTau }, kept, keptFromStart, pruned, retrained, samplesUsed,
      seconds: (performance.now() - start) / 1000,
    };
    writeFileAtomic(file, JSON.stringify(exploration) + "\n");
    return exploration;
  } finally {
    if (model) disposeModel(model);
    disposeModel(checkpoint);
  }
}

/** exploreFrankWolfe with a live progress bar (FW iterations). */
export async function exploreWithProgress(ctx: NotebookContext, opts: FwExploreOptions): Promise<FwExploration> {
  const total = opts.fw?.iterations ?? ctx.config.fw.iterations;
  const bar = progressDisplay(`FW exploration ${opts.label ?? opts.method} at budget ${opts.budget}`, { total });
  const result = await exploreFrankWolfe(ctx, {
    ...opts,
    onIteration: (it) => {
      bar.update(it.t + 1, total, `loss ${it.loss.toFixed(3)}, gap ${it.gap.toExponential(2)}`);
      opts.onIteration?.(it);
    },
  });
  const after = result.retrained ? `, after retraining ${result.retrained.accuracy.toFixed(4)}` : "";
  bar.finish(`accuracy right after rounding ${result.pruned.accuracy.toFixed(4)}${after}; sparsity ${result.pruned.sparsity.toFixed(4)}`);
  return result;
}

// ------------------------------------------------------------------------------------ the paper's claims

/** A type alias (not an interface) so rows pass as plain table rows. */
export type ClaimRow = {
  claim: string;
  /** How we test it: the comparison and the criterion, in words. */
  test: string;
  measured: string;
  verdict: "holds" | "partly" | "does not hold" | "not measured";
};

export interface ClaimOptions {
  /** The method the paper champions (default "fw-momentum"). */
  subject?: string;
  /** "Good accuracy after 1–2 epochs": within this many accuracy points (fraction) of the best dense model (default 0.01). */
  earlyTolerance?: number;
  /** "Minimal inference overhead": median time ratio to dense at most 1 + this (default 0.10). */
  overheadTolerance?: number;
}

const pct = (x: number) => `${(100 * x).toFixed(2)}`;
const signedPts = (x: number) => `${x >= 0 ? "+" : ""}${(100 * x).toFixed(2)}`;

/**
 * Each claim of the paper (PAPER.md, "What the paper says") tested on the runs: comparisons are paired by
 * (budget, seed), so each method faces the other on the same checkpoint. Verdicts come from the data: "holds" when
 * the criterion is met at every compared checkpoint, "partly" at some, "does not hold" at none.
 */
export function paperClaims(records: RunRecord[], opts: ClaimOptions = {}): ClaimRow[] {
  const subject = opts.subject ?? "fw-momentum";
  const earlyTol = opts.earlyTolerance ?? 0.01;
  const overheadTol = opts.overheadTolerance ?? 0.1;
  const ok = records.filter((r) => r.status === "ok" && r.metrics);
  const byLabel = new Map<string, Map<string, RunRecord>>();
  for (const r of ok) {
    const m = byLabel.get(r.label) ?? new Map<string, RunRecord>();
    m.set(`${r.budget}/${r.seed}`, r);
    byLabel.set(r.label, m);
  }
  const mine = byLabel.get(subject) ?? new Map<string, RunRecord>();
  const rows: ClaimRow[] = [];
  const seeds = new Set(ok.map((r) => r.seed)).size;
  const seedNote = seeds < 2 ? " (one seed: no confidence interval; differences of a few tenths of a point are within seed noise)" : ` (${seeds} seeds)`;

  const versus = (other: string, claim: string) => {
    const theirs = byLabel.get(other);
    const test = `${subject} vs ${other} on the same checkpoint (every budget × seed both ran): higher test accuracy AND higher measured sparsity`;
    if (!theirs || mine.size === 0) return rows.push({ claim, test, measured: `no ${theirs ? subject : other} runs`, verdict: "not measured" });
    const pairs = [...mine.entries()].filter(([id]) => theirs.has(id)).map(([id, r]) => ({ id, a: r.metrics!, b: theirs.get(id)!.metrics! }));
    if (pairs.length === 0) return rows.push({ claim, test, measured: "no shared checkpoints", verdict: "not measured" });
    const dAcc = pairs.map((p) => p.a.testAccuracy - p.b.testAccuracy);
    const dSp = pairs.map((p) => p.a.sparsity - p.b.sparsity);
    const both = pairs.filter((_, i) => dAcc[i] > 0 && dSp[i] > 0).length;
    const moreAccurate = dAcc.filter((d) => d > 0).length;
    const sparser = dSp.filter((d) => d > 0).length;
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    const measured =
      `accuracy ${signedPts(mean(dAcc))} points on average (from ${signedPts(Math.min(...dAcc))} to ${signedPts(Math.max(...dAcc))}), ` +
      `more accurate at ${moreAccurate}/${pairs.length}; sparsity ${signedPts(mean(dSp))} points on average, sparser at ${sparser}/${pairs.length}; ` +
      `both at ${both}/${pairs.length}${seedNote}`;
    rows.push({ claim, test, measured, verdict: both === pairs.length ? "holds" : both > 0 ? "partly" : "does not hold" });
  };
  versus("dense", "FW-momentum gives networks sparser and more accurate than the dense model");
  if (byLabel.has("dense-retrained")) versus("dense-retrained", "… and than the dense model trained as many epochs (pre-training + retraining)");
  versus("magnitude", "FW-momentum gives networks sparser and more accurate than simple (magnitude) pruning");
  versus("fw", "FW-momentum gives networks sparser and more accurate than plain Frank-Wolfe");

  // Good accuracy after 1–2 pre-training epochs.
  const dense = byLabel.get("dense") ?? new Map<string, RunRecord>();
  const early = [...mine.values()].filter((r) => r.budget <= 2);
  const earlyTest = `${subject}'s accuracy at budget 1–2 within ${pct(earlyTol)} points of the best dense checkpoint of the same seed (any budget)`;
  if (early.length === 0 || dense.size === 0) {
    rows.push({ claim: "Good accuracy already after 1–2 pre-training epochs", test: earlyTest, measured: `no ${early.length ? "dense" : subject} runs at budget 1–2`, verdict: "not measured" });
  } else {
    const bestDense = new Map<number, RunRecord>();
    for (const r of dense.values()) if (!bestDense.has(r.seed) || r.metrics!.testAccuracy > bestDense.get(r.seed)!.metrics!.testAccuracy) bestDense.set(r.seed, r);
    const items = early.filter((r) => bestDense.has(r.seed)).sort((a, b) => a.budget - b.budget || a.seed - b.seed).map((r) => {
      const best = bestDense.get(r.seed)!;
      return { r, best, gap: best.metrics!.testAccuracy - r.metrics!.testAccuracy };
    });
    const within = items.filter((i) => i.gap <= earlyTol + 1e-12).length; // 1e-12: 0.97 − 0.96 is 0.01000…009 in floating point
    const measured = items
      .map((i) => `budget ${i.r.budget}${seeds > 1 ? ` seed ${i.r.seed}` : ""}: ${pct(i.r.metrics!.testAccuracy)}% vs best dense ${pct(i.best.metrics!.testAccuracy)}% (budget ${i.best.budget}), ${pct(i.gap)} points below`)
      .join("; ");
    rows.push({ claim: "Good accuracy already after 1–2 pre-training epochs", test: earlyTest, measured: measured + seedNote, verdict: within === items.length ? "holds" : within > 0 ? "partly" : "does not hold" });
  }

  // Minimal inference-time overhead.
  const ratios = [...mine.values()].map((r) => r.metrics!.inferenceMedianSeconds / r.metrics!.inferenceDenseMedianSeconds);
  const overheadTest = `median over checkpoints of ${subject}'s inference time / the dense checkpoint's (timed interleaved in the same run) ≤ ${(1 + overheadTol).toFixed(2)}`;
  if (ratios.length === 0) {
    rows.push({ claim: "Minimal inference-time overhead", test: overheadTest, measured: "no paired timings", verdict: "not measured" });
  } else {
    const med = median(ratios);
    const speed = med < 0.95 ? "faster than the dense model" : med <= 1.05 ? "about as fast as the dense model (no speed-up: unstructured zeros still go through dense kernels)" : "slower than the dense model";
    const noisy = Math.max(...ratios) / Math.min(...ratios) > 1.3
      ? "; the ratios spread widely, so these timings are noisy (other load on the machine, or too few repeats): notebook 06 times the same models back to back"
      : "";
    const measured = `ratio ${med.toFixed(3)} (median of ${ratios.length}; from ${Math.min(...ratios).toFixed(3)} to ${Math.max(...ratios).toFixed(3)}): ${speed}${noisy}`;
    const within = ratios.filter((r) => r <= 1 + overheadTol).length;
    rows.push({ claim: "Minimal inference-time overhead", test: overheadTest, measured, verdict: med <= 1 + overheadTol ? (within === ratios.length ? "holds" : "partly") : "does not hold" });
  }
  return rows;
}
