// What a notebook cell calls: the config and cache folder the notebook runs with (FWPRUNE_PRESET, FWPRUNE_DATA_DIR),
// sweeps and single runs with live progress, and FW explorations (custom schedules allowed) as ordinary cached runs.
import * as path from "path";
import { datasetFor } from "./datasets";
import { parseThreads, setKernelThreads } from "./kernels";
import { Model, ModelLike } from "./model";
import { modelLike, modelsOf } from "./experiment/config-model";
import { ExperimentConfig, MethodEntry, budgetsOf, loadConfig, validateConfig } from "./experiment/config";
import { canonicalJson, hashKey, planRuns, pretrainInputs } from "./experiment/plan";
import { PretrainInfo, loadCachedCheckpoint, readPretrainInfo } from "./experiment/pretrain";
import { ensureBackend, ensureFinalModel } from "./experiment/run";
import { finalModelOf } from "./experiment/final-model";
import { Mask } from "./prune/mask";
import { RunRecord, checkpointFile, readRecord } from "./experiment/store";
import { runOne } from "./experiment/run-one";
import { SweepProgress, SweepResult, sweep } from "./experiment/sweep";
import { defaultDataDir, displayPath, presetFromEnv } from "./paths";
import { FwIteration, FwParams, FwParamsSchema, PruneDetails, RelaxedMaskSummary, getMethod, parseParams } from "./prune";
import { progressDisplay } from "./report/display";

export interface NotebookContext {
  /** What FWPRUNE_PRESET named: "quick", "paper", or the absolute path of a JSON config. */
  preset: string;
  config: ExperimentConfig;
  /** The config's model (its first, where it lists several) as a spec or a graph: what layer-walking helpers take. */
  model: ModelLike;
  /** Absolute: checkpoints, run records and explorations live here. */
  dataDir: string;
  /** Worker processes for sweeps (FWPRUNE_WORKERS; default one per core). */
  workers?: number;
  /** Threads of this kernel's matrix products (FWPRUNE_THREADS; default every core); results do not depend on it. */
  threads?: number;
}

/**
 * The config and cache folder a notebook runs with. FWPRUNE_PRESET = quick (default) | paper | path of a JSON config;
 * FWPRUNE_DATA_DIR (default data/); relative paths are taken from the repository root, wherever the kernel runs.
 */
export function notebookConfig(env: Record<string, string | undefined> = process.env, which: { variable?: string; fallback?: string } = {}): NotebookContext {
  const variable = which.variable ?? "FWPRUNE_PRESET";
  const preset = presetFromEnv({ FWPRUNE_PRESET: env[variable] ?? which.fallback });
  const config = loadConfig(preset);
  const dataDir = defaultDataDir(env);
  let workers: number | undefined;
  if (env.FWPRUNE_WORKERS !== undefined && env.FWPRUNE_WORKERS.trim() !== "") {
    workers = Number(env.FWPRUNE_WORKERS);
    if (!Number.isInteger(workers) || workers < 0) throw new Error(`FWPRUNE_WORKERS: expected an integer ≥ 0, got ${JSON.stringify(env.FWPRUNE_WORKERS)}`);
  }
  const threads = env.FWPRUNE_THREADS !== undefined && env.FWPRUNE_THREADS.trim() !== "" ? parseThreads("FWPRUNE_THREADS", env.FWPRUNE_THREADS) : undefined;
  return { preset, config, model: modelLike(modelsOf(config)[0]), dataDir, workers, threads };
}

/** The config's method entry called `name` (an entry's name, else the first entry of that method), if it has one. */
function entryOf(config: ExperimentConfig, name: string): MethodEntry | undefined {
  return config.methods.find((m) => m.name === name) ?? config.methods.find((m) => m.method === name);
}

/**
 * The full parameters the config's runs of `name` use: the entry called `name` (or the first entry of the method
 * `name`), else the registered method `name`'s defaults. Any registered method; P types them (e.g. FwParams).
 */
export function methodParams<P extends Record<string, unknown> = Record<string, unknown>>(config: ExperimentConfig, name: string): P {
  const entry = entryOf(config, name);
  return (entry?.params ?? parseParams(getMethod(name))) as P;
}

/**
 * methodParams of a Frank-Wolfe entry (fw, fw-momentum, the structured ones, or any method whose parameters include
 * FW's), typed as FwParams.
 */
export function fwParams(config: ExperimentConfig, name = "fw-momentum"): FwParams {
  const params = methodParams(config, name);
  const missing = missingFwParams(params);
  if (missing.length > 0) {
    const method = entryOf(config, name)?.method ?? name;
    throw new Error(
      `fwParams: "${name}" (method ${method}) of config "${config.name}" has no Frank-Wolfe parameters (${missing.join(", ")}); use methodParams`,
    );
  }
  return params as FwParams;
}

/**
 * The notebook's set-up in one call: its context (notebookConfig), the backend initialised, both printed. A notebook
 * about another experiment names its own variable and preset, e.g. FWPRUNE_TRADEOFF_PRESET, default "tradeoff".
 */
export async function notebookSetup(
  which: { variable?: string; fallback?: string } = {},
  env: Record<string, string | undefined> = process.env,
): Promise<NotebookContext> {
  const ctx = notebookConfig(env, which);
  if (ctx.threads !== undefined) setKernelThreads(ctx.threads);
  const backend = await notebookBackend();
  console.log(`tfjs backend: ${backend}\n${describeContext(ctx)}`);
  return ctx;
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
  const params = c.methods
    .filter((m) => Object.keys(m.params).length > 0)
    .map((m) => `  ${m.name}: ${canonicalJson(getMethod(m.method).describe?.(m.params) ?? m.params)}`);
  const pruning = c.methods.filter((m) => getMethod(m.method).prune);
  const structured = pruning.filter((m) => getMethod(m.method).retrain(m.params) === "surgered").length;
  const target =
    structured === 0
      ? "target sparsity"
      : structured === pruning.length
        ? "target FLOP reduction"
        : "target (sparsity; FLOP reduction for the structured methods)";
  return [
    `preset: ${path.isAbsolute(ctx.preset) ? displayPath(ctx.preset) : ctx.preset} (config "${c.name}")`,
    `data: ${data}`,
    `seeds: ${c.seeds.join(", ")}; budgets (pre-training epochs): ${budgetsOf(c).join(", ")}; ${target}: ${JSON.stringify(c.sparsity)}`,
    `retraining: ${c.retrain.epochs} epoch(s), lr ${c.retrain.lr}, momentum ${c.retrain.momentum}, batch ${c.retrain.batchSize}`,
    `methods: ${methods}`,
    ...(params.length ? ["parameters:", ...params] : []),
    `cache: ${displayPath(ctx.dataDir)}`,
  ].join("\n");
}

/** A method entry as a notebook writes it: a method name, or a named variant with partial parameters. */
export type MethodEntryInput =
  | string
  | { name?: string; method: string; params?: Record<string, unknown>; sparsity?: number | number[]; retrain?: MethodEntry["retrain"]; budgets?: number[] };

/** The config with these method entries added (replacing any of the same name); their parameters over the config's. */
export function withMethods(config: ExperimentConfig, entries: MethodEntryInput[]): ExperimentConfig {
  const added = entries.map((e) => (typeof e === "string" ? { name: e, method: e } : { ...e, name: e.name ?? e.method }));
  const names = new Set(added.map((e) => e.name));
  return validateConfig({ ...config, methods: [...config.methods.filter((m) => !names.has(m.name)), ...added] }, "notebook config");
}

/** The config restricted to the named methods (same run keys: a method's runs do not depend on the others). */
export function onlyMethods(config: ExperimentConfig, names: string[]): ExperimentConfig {
  const methods = config.methods.filter((m) => names.includes(m.name));
  if (methods.length === 0)
    throw new Error(`onlyMethods: none of ${names.join(", ")} is among the config's methods (${config.methods.map((m) => m.name).join(", ")})`);
  return validateConfig({ ...config, methods }, "notebook config");
}

/**
 * The checkpoint the single-checkpoint notebooks study: `wanted` (2 epochs, the protocol's focus checkpoint) when every pruning
 * method runs at that budget, else the first budget they all share.
 */
export function focusBudget(config: ExperimentConfig, wanted = 2): number {
  const pruning = config.methods.filter((m) => getMethod(m.method).prune !== undefined);
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
  bar.finish(
    record.status === "ok"
      ? `test accuracy ${record.metrics?.testAccuracy.toFixed(4)}, sparsity ${record.metrics?.sparsity.toFixed(4)}`
      : `FAILED: ${record.reason}`,
  );
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

/** The checkpoint file of (budget, seed) under the context's cache; it exists once pre-training reached that epoch. */
export function checkpointPath(ctx: NotebookContext, budget: number, seed = ctx.config.seeds[0], config = ctx.config): string {
  return checkpointFile(ctx.dataDir, hashKey(pretrainInputs(config, seed)), budget);
}

/**
 * A run's final model (weights, the method's mask, a structured method's group mask) as the store keeps it beside
 * the record; recomputed once (and kept) when the store lacks it, e.g. for a shipped record. Dispose the model when done.
 */
export async function runModel(ctx: NotebookContext, record: RunRecord, config = ctx.config): Promise<{ model: Model; mask?: Mask; groups?: Float32Array }> {
  await ensureBackend();
  const plan = planRuns(config).find((p) => p.key === record.key);
  if (!plan) throw new Error(`run ${record.key} (${record.label}, budget ${record.budget}) is not a run of config ${config.name}`);
  const final = await ensureFinalModel(config, plan, record, ctx.dataDir, { onStatus: (m) => console.log(m) });
  return { model: finalModelOf(final), mask: final.mask, groups: final.groups };
}

/** Make sure the checkpoint exists (pre-training through the cached runner if needed) and load it. */
export async function loadFocusCheckpoint(ctx: NotebookContext, budget: number, seed = ctx.config.seeds[0]): Promise<Model> {
  await ensureBackend();
  await runOneWithProgress(ctx, withMethods(ctx.config, ["dense"]), { method: "dense", budget, seed });
  return loadCachedCheckpoint(ctx.dataDir, hashKey(pretrainInputs(ctx.config, seed)), budget).model;
}

/** What dense pre-training recorded for a seed (losses and seconds per epoch), if it ran. */
export function pretrainLog(ctx: NotebookContext, seed = ctx.config.seeds[0]): PretrainInfo | undefined {
  return readPretrainInfo(ctx.dataDir, hashKey(pretrainInputs(ctx.config, seed)));
}

/** The dataset a notebook's config names (loaded once per kernel). */
export function notebookData(ctx: NotebookContext) {
  return datasetFor(ctx.config.dataset);
}

// ------------------------------------------------------------------------------------ Method exploration

export interface ExploreOptions {
  budget: number;
  seed?: number;
  /** Any registered method, with the config's parameters, sparsity and retraining for it (if it has an entry) as the start. */
  method: string;
  /** The variant's name in tables and figures (not part of the run's key). */
  label?: string;
  /** Parameters over the config's; FW's stepSize and momentum may be custom `{ name, fn }` schedules. */
  params?: Record<string, unknown>;
  /** Retrain as the sweep does (default true); false: the pruned model is the final one. */
  retrain?: boolean;
}

/** A run as the notebooks study it: its record, with what the method reported spelled out. */
export interface MethodExploration {
  record: RunRecord;
  label: string;
  budget: number;
  seed: number;
  /** Iterative methods' per-iteration record (FW: FwIteration); empty for the others. */
  history: unknown[];
  details?: PruneDetails;
  /** Right after pruning (before retraining), for a method that prunes; and after retraining (when it retrained). */
  pruned?: { accuracy: number; loss: number; sparsity: number };
  retrained?: { accuracy: number; loss: number; sparsity: number };
}

/**
 * One run of any registered method on a checkpoint, as an ordinary run of the experiment store: the same parameters
 * as a sweep's run give the same record (and reuse it); a custom schedule is part of the key by its name and source,
 * so re-executing a notebook recomputes only what changed. Runs in this process (a schedule is a function).
 */
export async function exploreMethod(ctx: NotebookContext, opts: ExploreOptions): Promise<MethodExploration> {
  const method = getMethod(opts.method);
  const label = opts.label ?? opts.method;
  const base = ctx.config.methods.find((m) => m.method === opts.method);
  const entry: MethodEntryInput = {
    name: label,
    method: opts.method,
    params: { ...base?.params, ...opts.params },
    sparsity: base?.sparsity,
    retrain: opts.retrain === false ? { epochs: 0 } : base?.retrain,
  };
  const config = withMethods(ctx.config, [entry]);
  const record = await runOneWithProgress(ctx, config, { method: label, budget: opts.budget, seed: opts.seed });
  const m = record.metrics!;
  const pruned = method.prune ? { accuracy: m.prunedAccuracy ?? NaN, loss: m.prunedLoss ?? NaN, sparsity: m.sparsity } : undefined;
  const retrained = (record.inputs.retrain?.epochs ?? 0) > 0 ? { accuracy: m.testAccuracy, loss: m.testLoss, sparsity: m.sparsity } : undefined;
  return { record, label, budget: record.budget, seed: record.seed, history: record.history ?? [], details: record.details, pruned, retrained };
}

/** FW's parameters that `params` lacks (none: the method is a Frank-Wolfe method, whose runs report a relaxed mask). */
function missingFwParams(params: Record<string, unknown>): string[] {
  return FwParamsSchema.keyof().options.filter((k) => !(k in params));
}

/** exploreMethod's options for a Frank-Wolfe method (fw, fw-momentum, structured-fw, structured-fw-momentum, or yours). */
export type FwExploreOptions = ExploreOptions;

/** A Frank-Wolfe run as the notebooks study it: exploreMethod's, with the relaxed mask's summary and the history typed. */
export interface FwExploration extends RelaxedMaskSummary, MethodExploration {
  history: FwIteration[];
  pruned: { accuracy: number; loss: number; sparsity: number };
}

/** exploreMethod for a method that reports a relaxed mask (every FW method): the record's summary of it spread out. */
export async function exploreFrankWolfe(ctx: NotebookContext, opts: FwExploreOptions): Promise<FwExploration> {
  const missing = missingFwParams(parseParams(getMethod(opts.method)));
  if (missing.length > 0)
    throw new Error(`exploreFrankWolfe: method "${opts.method}" is not a Frank-Wolfe method (no ${missing.join(", ")}); use exploreMethod`);
  const explored = await exploreMethod(ctx, opts);
  const relaxed = explored.details?.relaxedMask;
  if (!relaxed || !explored.pruned)
    throw new Error(`exploreFrankWolfe: method "${opts.method}" reports no relaxed mask (not a Frank-Wolfe method); use exploreMethod`);
  return { ...relaxed, ...explored, history: explored.history as FwIteration[], pruned: explored.pruned };
}
