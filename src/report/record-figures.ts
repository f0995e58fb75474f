// The figures of run records: a metric against the pre-training budget, accuracy against sparsity or speed-up, and
// inference times, each built from the generic charts of figures.ts.
import type { RunRecord } from "../experiment/store";
import { summarize } from "../analysis/stats";
import { AggregateRow, AggregatedMetric, aggregateRecords, modelOfRecord } from "./frame";
import { ChartRow, FIGURE_PALETTE, PlotlyFigure, lineChart, scatterChart } from "./figures";

/**
 * Metric vs pre-training budget, one line per method (config order): the mean over seeds, with its 95% confidence
 * band when there are several seeds. `scale` multiplies values (100: fractions as percent).
 */
export function budgetFigure(
  records: RunRecord[],
  metric: AggregatedMetric,
  opts: {
    title: string;
    yTitle: string;
    scale?: number;
    logY?: boolean;
    /** Methods (labels) to leave out of the figure (they still serve as reference, e.g. dense for time ratios). */ exclude?: string[];
  },
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
    rows,
    x: "budget",
    y: "value",
    group: "method",
    markers: true,
    band: bands ? { lower: "lower", upper: "upper" } : undefined,
    colors,
    title: opts.title,
    xTitle: "pre-training budget (epochs)",
    yTitle: opts.yTitle,
    logY: opts.logY,
  });
}

const TRADEOFF_X = {
  sparsity: { value: (r: AggregateRow) => 100 * r.sparsity.mean, title: "achieved sparsity (%)", name: "achieved sparsity", log: false },
  flopsSpeedup: {
    value: (r: AggregateRow) => r.flopsSpeedup.mean,
    title: "theoretical speed-up (dense / remaining multiply-adds)",
    name: "theoretical speed-up",
    log: true,
  },
  flopReduction: {
    value: (r: AggregateRow) => 100 * r.flopReduction.mean,
    title: "achieved FLOP reduction (% of the dense multiply-adds removed)",
    name: "FLOP reduction",
    log: false,
  },
  measuredSpeedup: {
    value: (r: AggregateRow) => r.measuredSpeedup.mean,
    title: "measured speed-up (dense / model inference time, timed side by side)",
    name: "measured speed-up",
    log: true,
  },
} as const;

/**
 * The trade-off at one pre-training budget: test accuracy (%) against achieved sparsity (%), the theoretical speed-up
 * (dense / remaining multiply-adds, log axis), the achieved FLOP reduction (%) or the measured speed-up (log axis),
 * one line per method through its targets, with the 95% band of the accuracy over seeds. Methods without a target
 * (dense) are left out.
 */
export function tradeoffFigure(records: RunRecord[], opts: { x: keyof typeof TRADEOFF_X; budget: number; title?: string }): PlotlyFigure {
  const axis = TRADEOFF_X[opts.x];
  if (!axis) throw new Error(`tradeoffFigure: x ${JSON.stringify(opts.x)}; expected one of ${Object.keys(TRADEOFF_X).join(", ")}`);
  const rows = aggregateRecords(records.filter((r) => r.budget === opts.budget && r.sparsityTarget !== null))
    .filter((r) => r.testAccuracy.count > 0)
    .map((r) => {
      const ci = Number.isFinite(r.testAccuracy.ci95) ? r.testAccuracy.ci95 : NaN;
      return {
        method: r.label,
        x: axis.value(r),
        value: 100 * r.testAccuracy.mean,
        lower: 100 * (r.testAccuracy.mean - ci),
        upper: 100 * (r.testAccuracy.mean + ci),
      };
    })
    .sort((a, b) => a.x - b.x);
  const colors = Object.fromEntries([...new Set(records.map((r) => r.label))].map((label, i) => [label, FIGURE_PALETTE[i % FIGURE_PALETTE.length]]));
  const bands = rows.some((r) => Number.isFinite(r.lower));
  return lineChart({
    rows,
    x: "x",
    y: "value",
    group: "method",
    markers: true,
    band: bands ? { lower: "lower", upper: "upper" } : undefined,
    colors,
    title: opts.title ?? `Test accuracy vs ${axis.name} (budget ${opts.budget})`,
    xTitle: axis.title,
    yTitle: "test accuracy (%)",
    logX: axis.log,
  });
}

/**
 * Inference time of one method's models relative to the dense checkpoint timed beside them, per budget (mean over
 * seeds, 95% band with several): through tfjs's dense kernels, through fwprune's sparse kernels (only where the
 * records have that timing: older records do not, and the title then says "not measured"), and the FLOP bound
 * (remaining / dense multiply-adds, what a sparse kernel as efficient per multiply-add as the dense one would reach).
 */
export function inferenceTimesFigure(records: RunRecord[], opts: { method: string; title?: string }): PlotlyFigure {
  const runs = records.filter((r) => r.status === "ok" && r.metrics && r.label === opts.method);
  const series: [string, (m: NonNullable<RunRecord["metrics"]>) => number | undefined][] = [
    ["dense kernels (tfjs)", (m) => m.inferenceMedianSeconds / m.inferenceDenseMedianSeconds],
    [
      "sparse kernels (fwprune)",
      (m) => (m.inferenceSparseMedianSeconds === undefined ? undefined : m.inferenceSparseMedianSeconds / m.inferenceDenseMedianSeconds),
    ],
    ["FLOP bound", (m) => 1 / m.flops.speedup],
  ];
  const rows: ChartRow[] = [];
  for (const [name, value] of series) {
    for (const budget of [...new Set(runs.map((r) => r.budget))].sort((a, b) => a - b)) {
      const values = runs
        .filter((r) => r.budget === budget)
        .map((r) => value(r.metrics!))
        .filter((v): v is number => v !== undefined);
      if (values.length === 0) continue;
      const s = summarize(values);
      const ci = Number.isFinite(s.ci95) ? s.ci95 : NaN;
      rows.push({ series: name, budget, value: s.mean, lower: s.mean - ci, upper: s.mean + ci });
    }
  }
  const sparseMeasured = rows.some((r) => r.series === series[1][0]);
  const figure = lineChart({
    rows,
    x: "budget",
    y: "value",
    group: "series",
    markers: true,
    band: rows.some((r) => Number.isFinite(r.lower as number)) ? { lower: "lower", upper: "upper" } : undefined,
    colors: Object.fromEntries(series.map(([name], i) => [name, FIGURE_PALETTE[[0, 2, 7][i]]])),
    title: opts.title ?? `${opts.method}: inference time / the dense checkpoint's${sparseMeasured ? "" : " (sparse kernels: not measured in these records)"}`,
    xTitle: "pre-training budget (epochs)",
    yTitle: "time relative to the dense checkpoint",
  });
  (figure.layout.yaxis as Record<string, unknown>).rangemode = "tozero";
  return figure;
}

/**
 * One architecture's runs (records with several models: pick one with `model`): test accuracy (%) against achieved
 * sparsity (%) per method, a point per budget (hover: the budget), with 95% intervals over seeds on both axes as
 * error bars. Structured methods sit at their weight sparsity (the FLOP reduction is their target).
 */
export function accuracySparsityFigure(records: RunRecord[], opts: { model?: string; title?: string } = {}): PlotlyFigure {
  const rows = aggregateRecords(records.filter((r) => r.status === "ok" && (opts.model === undefined || modelOfRecord(r) === opts.model)))
    .filter((r) => r.testAccuracy.count > 0)
    .map((r) => ({
      method: r.label,
      sparsity: 100 * r.sparsity.mean,
      accuracy: 100 * r.testAccuracy.mean,
      sparsityError: Number.isFinite(r.sparsity.ci95) ? 100 * r.sparsity.ci95 : 0,
      accuracyError: Number.isFinite(r.testAccuracy.ci95) ? 100 * r.testAccuracy.ci95 : 0,
      budget: `budget ${r.budget}, ${r.testAccuracy.count} seed${r.testAccuracy.count === 1 ? "" : "s"}`,
    }));
  if (rows.length === 0) throw new Error(`accuracySparsityFigure: no ok runs${opts.model === undefined ? "" : ` of model "${opts.model}"`}`);
  const colors = Object.fromEntries([...new Set(records.map((r) => r.label))].map((label, i) => [label, FIGURE_PALETTE[i % FIGURE_PALETTE.length]]));
  return scatterChart({
    rows,
    x: "sparsity",
    y: "accuracy",
    group: "method",
    text: "budget",
    errorX: "sparsityError",
    errorY: "accuracyError",
    colors,
    title: opts.title ?? `${opts.model ?? "all models"}: test accuracy vs achieved sparsity (mean, 95% interval over seeds)`,
    xTitle: "achieved weight sparsity (%)",
    yTitle: "test accuracy (%)",
  });
}
