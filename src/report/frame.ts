import type { DataFrame } from "danfojs-node";
import { Stats, ciHalfWidth } from "../analysis/stats";
import type { RunRecord } from "../experiment/store";
import type { FwIteration } from "../prune/frank-wolfe";
import { writeFileAtomic } from "../fsutil";

/** One record as a flat row, with its inference time relative to the dense checkpoint timed beside it. */
export interface RunRow {
  /** The config model's name (the architecture). */
  model: string;
  label: string;
  method: string;
  budget: number;
  seed: number;
  sparsityTarget: number | null;
  status: string;
  testAccuracy: number;
  testLoss: number;
  /** Right after pruning, before retraining (NaN for methods that do not prune). */
  prunedAccuracy: number;
  sparsity: number;
  compressionRatio: number;
  /** Theoretical speed-up: dense multiply-adds / those left on non-zero weights. */
  flopsSpeedup: number;
  inferenceSeconds: number;
  inferenceRatio: number;
  /** Measured speed-up: the dense checkpoint's inference time (timed beside it) / this model's. */
  measuredSpeedup: number;
  /** Structured methods: the same at batch 1 (NaN for others). */
  batchOneSpeedup: number;
  /** Achieved FLOP reduction: 1 − remaining / dense multiply-adds. */
  flopReduction: number;
  samplesUsed: number;
  seconds: number;
  key: string;
}

/** The model a record ran on: its own field, else its config's (one) model's name. */
export function modelOfRecord(r: RunRecord): string {
  return r.model ?? (r.config as { model?: { name?: string } } | undefined)?.model?.name ?? "";
}

export function recordRows(records: RunRecord[]): RunRow[] {
  return records.map((r) => {
    const m = r.metrics;
    return {
      model: modelOfRecord(r),
      label: r.label,
      method: r.method,
      budget: r.budget,
      seed: r.seed,
      sparsityTarget: r.sparsityTarget,
      status: r.status,
      testAccuracy: m?.testAccuracy ?? NaN,
      testLoss: m?.testLoss ?? NaN,
      prunedAccuracy: m?.prunedAccuracy ?? NaN,
      sparsity: m?.sparsity ?? NaN,
      compressionRatio: m?.compressionRatio ?? NaN,
      flopsSpeedup: m?.flops?.speedup ?? NaN,
      inferenceSeconds: m?.inferenceMedianSeconds ?? NaN,
      inferenceRatio: m ? m.inferenceMedianSeconds / m.inferenceDenseMedianSeconds : NaN,
      measuredSpeedup: m ? m.inferenceDenseMedianSeconds / m.inferenceMedianSeconds : NaN,
      batchOneSpeedup: m?.surgered?.batchOne.speedup ?? NaN,
      flopReduction: m?.flops ? 1 - m.flops.remaining / m.flops.dense : NaN,
      samplesUsed: m?.samplesUsed ?? NaN,
      seconds: m?.seconds.total ?? NaN,
      key: r.key,
    };
  });
}

export const AGGREGATED_METRICS = [
  "testAccuracy",
  "testLoss",
  "prunedAccuracy",
  "sparsity",
  "compressionRatio",
  "flopsSpeedup",
  "inferenceSeconds",
  "inferenceRatio",
  "samplesUsed",
  "seconds",
  "measuredSpeedup",
  "batchOneSpeedup",
  "flopReduction",
] as const;
export type AggregatedMetric = (typeof AGGREGATED_METRICS)[number];

/** One row per method (label) × budget × target sparsity: count of ok/failed runs and Stats of every metric. */
export type AggregateRow = {
  model: string;
  label: string;
  method: string;
  budget: number;
  sparsityTarget: number | null;
  runs: number;
  failed: number;
} & { [M in AggregatedMetric]: Stats };

/** Mean, std and 95% CI of every metric over the ok runs of each method (label) × budget × target sparsity (danfo's groupby). */
export function aggregateRecords(records: RunRecord[]): AggregateRow[] {
  const rows = recordRows(records);
  const groupOf = (r: RunRow) => JSON.stringify([r.model, r.label, r.budget, r.sparsityTarget]);
  const groups = new Map<string, RunRow[]>();
  for (const row of rows) groups.set(groupOf(row), [...(groups.get(groupOf(row)) ?? []), row]);
  const ok = rows.filter((r) => r.status === "ok");
  const stats = new Map<string, Record<string, number>>();
  if (ok.length > 0) {
    const frame = new (danfo().DataFrame)(ok.map((r) => ({ group: groupOf(r), ...Object.fromEntries(AGGREGATED_METRICS.map((m) => [m, r[m]])) })));
    const spec = Object.fromEntries(AGGREGATED_METRICS.map((m) => [m, ["mean", "std", "count"]]));
    const table = danfo().toJSON(frame.groupby(["group"]).agg(spec), { format: "column" }) as Record<string, number | string>[];
    for (const row of table) stats.set(String(row.group), row as Record<string, number>);
  }
  const labelOrder = [...new Set(records.map((r) => r.label))];
  const modelOrder = [...new Set(rows.map((r) => r.model))];
  const out: AggregateRow[] = [];
  for (const [id, members] of groups) {
    const first = members[0];
    const agg = stats.get(id);
    const metric = (m: AggregatedMetric): Stats => {
      const count = agg ? agg[`${m}_count`] : 0;
      if (!count || !Number.isFinite(agg![`${m}_mean`])) return { mean: NaN, std: NaN, ci95: NaN, count: 0 };
      const std = count < 2 ? NaN : agg![`${m}_std`];
      return { mean: agg![`${m}_mean`], std, ci95: ciHalfWidth(std, count), count };
    };
    const failed = members.filter((r) => r.status !== "ok").length;
    const metrics = Object.fromEntries(AGGREGATED_METRICS.map((m) => [m, metric(m)])) as { [M in AggregatedMetric]: Stats };
    out.push({
      model: first.model,
      label: first.label,
      method: first.method,
      budget: first.budget,
      sparsityTarget: first.sparsityTarget,
      runs: members.length,
      failed,
      ...metrics,
    });
  }
  return out.sort(
    (a, b) =>
      modelOrder.indexOf(a.model) - modelOrder.indexOf(b.model) ||
      labelOrder.indexOf(a.label) - labelOrder.indexOf(b.label) ||
      a.budget - b.budget ||
      (a.sparsityTarget ?? 0) - (b.sparsityTarget ?? 0),
  );
}

/** A record's FW history as chart rows: { method, t, loss, gap, stepSize, beta, nonzero }. */
export function historyRows(
  record: RunRecord,
  name = record.label,
): { method: string; t: number; loss: number; gap: number; stepSize: number; beta: number; nonzero: number }[] {
  const history = (record.history ?? []) as FwIteration[];
  return history.map((h) => ({ method: name, t: h.t, loss: h.loss, gap: h.gap, stepSize: h.stepSize, beta: h.beta, nonzero: h.nonzero }));
}

/** The aggregate as flat columns: `<metric>_mean`, `_std`, `_ci95`, `_count` (NaN → null, for CSV and JSON). */
export function flatAggregate(rows: AggregateRow[]): Record<string, string | number | null>[] {
  const clean = (v: number) => (Number.isFinite(v) ? v : null);
  const severalModels = new Set(rows.map((r) => r.model)).size > 1;
  return rows.map((r) => {
    const flat: Record<string, string | number | null> = {
      ...(severalModels ? { model: r.model } : {}),
      method: r.label,
      baseMethod: r.method,
      budget: r.budget,
      sparsityTarget: r.sparsityTarget,
      runs: r.runs,
      failed: r.failed,
    };
    for (const m of AGGREGATED_METRICS) {
      flat[`${m}_mean`] = clean(r[m].mean);
      flat[`${m}_std`] = clean(r[m].std);
      flat[`${m}_ci95`] = clean(r[m].ci95);
      flat[`${m}_count`] = r[m].count;
    }
    return flat;
  });
}

// danfo is loaded on first use only: worker processes never import it.
function danfo(): typeof import("danfojs-node") {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require("danfojs-node") as typeof import("danfojs-node");
}

/** The aggregated table as a danfo DataFrame (one row per method × budget × sparsity). */
export function aggregateFrame(records: RunRecord[]): DataFrame {
  return new (danfo().DataFrame)(flatAggregate(aggregateRecords(records)));
}

/** One row per run, as a danfo DataFrame. */
export function runsFrame(records: RunRecord[]): DataFrame {
  return new (danfo().DataFrame)(recordRows(records).map((r) => ({ ...r, sparsityTarget: r.sparsityTarget ?? NaN })));
}

/** CSV of the aggregated table (written to `file` when given). */
export function aggregateCsv(records: RunRecord[], file?: string): string {
  const rows = flatAggregate(aggregateRecords(records));
  if (rows.length === 0) return "";
  const csv = danfo().toCSV(new (danfo().DataFrame)(rows)) as string;
  if (file) writeFileAtomic(file, csv);
  return csv;
}

/** A compact text table: accuracy and sparsity (mean ± 95% CI half-width when there are several seeds) per method × budget. */
export function formatAggregate(rows: AggregateRow[]): string {
  const fmt = (s: Stats, digits: number) => (s.count === 0 ? "-" : `${s.mean.toFixed(digits)}${Number.isFinite(s.ci95) ? ` ±${s.ci95.toFixed(digits)}` : ""}`);
  const severalModels = new Set(rows.map((r) => r.model)).size > 1;
  const header = [...(severalModels ? ["model"] : []), "method", "budget", "target", "n", "accuracy", "loss", "sparsity", "FLOPs x", "infer ratio", "seconds"];
  const lines = rows.map((r) => [
    ...(severalModels ? [r.model] : []),
    r.label,
    String(r.budget),
    r.sparsityTarget === null ? "-" : String(r.sparsityTarget),
    `${r.runs - r.failed}${r.failed ? ` (+${r.failed} failed)` : ""}`,
    fmt(r.testAccuracy, 4),
    fmt(r.testLoss, 4),
    fmt(r.sparsity, 4),
    fmt(r.flopsSpeedup, 2),
    fmt(r.inferenceRatio, 2),
    fmt(r.seconds, 1),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  return [header, ...lines]
    .map((l) =>
      l
        .map((c, i) => c.padEnd(widths[i]))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}
