// Schedule studies from a notebook: variants of a method (custom schedules included) over seeds and budgets, run by
// the sweep's workers, each paired with a reference on the same checkpoints and judged as the claims are.
import { ComparisonRow, PairedComparison, compareAgainst, comparisonRows } from "./analysis/claims";
import { ExperimentConfig, MethodEntry, budgetsOf, sparsitiesOf, validateConfig } from "./experiment/config";
import { planRuns } from "./experiment/plan";
import { RunRecord } from "./experiment/store";
import { SweepResult } from "./experiment/sweep";
import { NotebookContext, sweepWithProgress } from "./notebook";
import { FIGURE_PALETTE, PlotlyFigure, lineChart } from "./report/figures";
import { aggregateRecords } from "./report/frame";

/** A variant: a method of the config and parameters over the config's for it (schedules may be functions `{ name, fn }`). */
export interface ScheduleVariant {
  /** Its name in tables and figures (not part of its runs' keys). */
  name: string;
  method: string;
  params?: Record<string, unknown>;
}

export interface CompareSchedulesOptions {
  /** The seeds (one checkpoint each per budget): a list, or a count n, the config's seeds then the next integers up to n. Default: the config's. */
  seeds?: number[] | number;
  /** Pre-training budgets (checkpoint epochs). Default: the config's. */
  budgets?: number[];
  /** The reference, a method of the config or a variant's name. Default: for each variant, the config's entry of its method (the built-in). */
  against?: string;
  /** Worker processes (default: the context's, else one per core; 0 computes in this process). */
  workers?: number;
}

export interface ScheduleStudy {
  /** One per variant: variant − reference, paired by checkpoint, per budget and pooled, with verdicts. */
  comparisons: PairedComparison[];
  /** The comparisons as table rows (comparisonRows). */
  rows: ComparisonRow[];
  /** Every run of every variant and reference, labelled by their names. */
  records: RunRecord[];
  config: ExperimentConfig;
  sweep: SweepResult;
}

/** The config's seeds, then the next integers above the largest, `count` in all. */
export function seedList(config: ExperimentConfig, count: number): number[] {
  if (!(Number.isInteger(count) && count >= 1))
    throw new Error(`compareSchedules: seeds: expected a list of seeds or a count ≥ 1, got ${JSON.stringify(count)}`);
  const seeds = config.seeds.slice(0, count);
  while (seeds.length < count) seeds.push(Math.max(...seeds, -1) + 1);
  return seeds;
}

/** The entries a study runs: each reference (with the entries it is matched to), then the variants over their method's entry. */
function studyEntries(config: ExperimentConfig, variants: ScheduleVariant[], against?: string): { entries: MethodEntry[]; references: string[] } {
  if (variants.length === 0) throw new Error("compareSchedules: no variants given");
  const names = variants.map((v, i) => {
    if (typeof v?.name !== "string" || v.name.trim() === "")
      throw new Error(`compareSchedules: variant ${i + 1} needs a non-empty name, got ${JSON.stringify(v?.name)}`);
    return v.name;
  });
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined) throw new Error(`compareSchedules: two variants are named ${JSON.stringify(twice)}`);
  const builtIn = (method: string) => config.methods.find((m) => m.name === method) ?? config.methods.find((m) => m.method === method);
  const variantEntries = variants.map((v) => {
    const base = builtIn(v.method);
    if (config.methods.some((m) => m.name === v.name))
      throw new Error(`compareSchedules: variant name ${JSON.stringify(v.name)} is already a method of config "${config.name}"; choose another`);
    return { name: v.name, method: v.method, params: { ...base?.params, ...v.params }, sparsity: base?.sparsity, retrain: base?.retrain } as MethodEntry;
  });
  const references = variants.map((v) => against ?? builtIn(v.method)?.name ?? v.method);
  const referenceEntries: MethodEntry[] = [];
  const addReference = (name: string) => {
    if (referenceEntries.some((m) => m.name === name) || names.includes(name)) return;
    const entry =
      config.methods.find((m) => m.name === name) ??
      (variants.some((v) => v.method === name) ? ({ name, method: name, params: {} } as MethodEntry) : undefined);
    if (!entry)
      throw new Error(
        `compareSchedules: against ${JSON.stringify(name)} is neither a method of config "${config.name}" (${config.methods.map((m) => m.name).join(", ")}) nor a variant`,
      );
    referenceEntries.push({ ...entry, budgets: undefined });
    for (const matched of Object.values(entry.match ?? {})) addReference(matched);
  };
  references.forEach(addReference);
  return { entries: [...referenceEntries, ...variantEntries], references };
}

/**
 * Run `variants` over seeds and budgets (through the sweep: worker processes, the cache, a progress bar) and compare
 * each with its reference on the same checkpoints: the paired differences in test accuracy and sparsity per budget and
 * pooled over budgets (per seed, then over seeds), their 95% t-intervals, and the claims' verdicts ("holds": the
 * variant is more accurate, or sparser). A custom schedule must be self-contained (it is sent to the workers as its
 * source text); one that uses an outside variable is refused, naming it, before anything runs.
 */
export async function compareSchedules(ctx: NotebookContext, variants: ScheduleVariant[], opts: CompareSchedulesOptions = {}): Promise<ScheduleStudy> {
  const base = ctx.config;
  const { entries, references } = studyEntries(base, variants, opts.against);
  const seeds = typeof opts.seeds === "number" ? seedList(base, opts.seeds) : (opts.seeds ?? base.seeds);
  const config = validateConfig({ ...base, seeds, budgets: opts.budgets ?? budgetsOf(base), methods: entries }, "compareSchedules config");
  const several = config.methods.find((m) => sparsitiesOf(config, m).length > 1);
  if (several)
    throw new Error(
      `compareSchedules: "${several.name}" has several targets (${sparsitiesOf(config, several).join(", ")}); a study pairs runs by checkpoint at one target: give the config one`,
    );
  const result = await sweepWithProgress(
    { ...ctx, workers: opts.workers ?? ctx.workers },
    config,
    `schedules: ${variants.length} variant(s) × ${seeds.length} seed(s) × ${budgetsOf(config).length} budget(s)`,
  );
  // Each entry's own records: two entries with equal parameters share runs (the sweep labels them once).
  const byKey = new Map(result.records.map((r) => [r.key, r]));
  const records = config.methods.flatMap((entry) => {
    const deps = Object.values(entry.match ?? {}).map((name) => config.methods.find((m) => m.name === name)!);
    return planRuns(validateConfig({ ...config, methods: [entry, ...deps] }, "compareSchedules config"))
      .filter((run) => run.label === entry.name)
      .flatMap((run) => {
        const record = byKey.get(run.key);
        return record ? [{ ...record, label: entry.name }] : [];
      });
  });
  const comparisons = variants.flatMap((v, i) => compareAgainst(records, references[i], [v.name]));
  return { comparisons, rows: comparisonRows(comparisons), records, config, sweep: result };
}

/**
 * Test accuracy (%) against achieved sparsity (%) of each variant and reference: one point per budget (the mean over
 * seeds), joined in order of sparsity, with the 95% band of the accuracy over seeds.
 */
export function studyFigure(study: ScheduleStudy, opts: { title?: string } = {}): PlotlyFigure {
  const rows = aggregateRecords(study.records)
    .filter((r) => r.testAccuracy.count > 0)
    .map((r) => {
      const ci = Number.isFinite(r.testAccuracy.ci95) ? r.testAccuracy.ci95 : NaN;
      return {
        variant: r.label,
        budget: r.budget,
        sparsity: 100 * r.sparsity.mean,
        accuracy: 100 * r.testAccuracy.mean,
        lower: 100 * (r.testAccuracy.mean - ci),
        upper: 100 * (r.testAccuracy.mean + ci),
      };
    });
  const labels = [...new Set(study.records.map((r) => r.label))];
  return lineChart({
    rows,
    x: "sparsity",
    y: "accuracy",
    group: "variant",
    markers: true,
    band: rows.some((r) => Number.isFinite(r.lower)) ? { lower: "lower", upper: "upper" } : undefined,
    colors: Object.fromEntries(labels.map((label, i) => [label, FIGURE_PALETTE[i % FIGURE_PALETTE.length]])),
    title:
      opts.title ??
      `Test accuracy vs achieved sparsity: one point per budget (${budgetsOf(study.config).join(", ")}), mean and 95% band over ${study.config.seeds.length} seeds`,
    xTitle: "achieved sparsity (%)",
    yTitle: "test accuracy (%)",
  });
}
