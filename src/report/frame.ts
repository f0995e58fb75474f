import type { DataFrame } from "danfojs-node";
import type { RunRecord } from "../experiment/store";
import { writeFileAtomic } from "../fsutil";

/** Two-sided 95% quantiles of Student's t, t_{0.975, df}, for df = 1..30. */
const T975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11,
  2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/** t_{0.975, df}: the table up to 30, then the Cornish-Fisher expansion around the normal quantile (error < 1e-4). */
export function tQuantile975(df: number): number {
  if (!(Number.isInteger(df) && df >= 1)) throw new Error(`tQuantile975: df must be a positive integer, got ${df}`);
  if (df <= 30) return T975[df - 1];
  const z = 1.959964;
  return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2);
}

export interface Stats {
  mean: number;
  /** Sample standard deviation (n − 1); NaN for n < 2. */
  std: number;
  /** Half-width of the 95% confidence interval of the mean (t-distribution); NaN for n < 2. */
  ci95: number;
  count: number;
}

export function summarize(values: number[]): Stats {
  const xs = values.filter((v) => Number.isFinite(v));
  const n = xs.length;
  if (n === 0) return { mean: NaN, std: NaN, ci95: NaN, count: 0 };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, std: NaN, ci95: NaN, count: n };
  const std = Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1));
  return { mean, std, ci95: (tQuantile975(n - 1) * std) / Math.sqrt(n), count: n };
}

/** One record as a flat row, with its inference time relative to the dense checkpoint timed beside it. */
export interface RunRow {
  label: string;
  method: string;
  budget: number;
  seed: number;
  sparsityTarget: number | null;
  status: string;
  testAccuracy: number;
  testLoss: number;
  sparsity: number;
  inferenceSeconds: number;
  inferenceRatio: number;
  samplesUsed: number;
  seconds: number;
  key: string;
}

export function recordRows(records: RunRecord[]): RunRow[] {
  return records.map((r) => {
    const m = r.metrics;
    return {
      label: r.label,
      method: r.method,
      budget: r.budget,
      seed: r.seed,
      sparsityTarget: r.sparsityTarget,
      status: r.status,
      testAccuracy: m?.testAccuracy ?? NaN,
      testLoss: m?.testLoss ?? NaN,
      sparsity: m?.sparsity ?? NaN,
      inferenceSeconds: m?.inferenceMedianSeconds ?? NaN,
      inferenceRatio: m ? m.inferenceMedianSeconds / m.inferenceDenseMedianSeconds : NaN,
      samplesUsed: m?.samplesUsed ?? NaN,
      seconds: m?.seconds.total ?? NaN,
      key: r.key,
    };
  });
}

export const AGGREGATED_METRICS = ["testAccuracy", "testLoss", "sparsity", "inferenceSeconds", "inferenceRatio", "samplesUsed", "seconds"] as const;
export type AggregatedMetric = (typeof AGGREGATED_METRICS)[number];

/** One row per method (label) × budget × target sparsity: count of ok/failed runs and Stats of every metric. */
export type AggregateRow = {
  label: string;
  method: string;
  budget: number;
  sparsityTarget: number | null;
  runs: number;
  failed: number;
} & { [M in AggregatedMetric]: Stats };

export function aggregateRecords(records: RunRecord[]): AggregateRow[] {
  const groups = new Map<string, RunRow[]>();
  for (const row of recordRows(records)) {
    const id = JSON.stringify([row.label, row.budget, row.sparsityTarget]);
    const list = groups.get(id) ?? [];
    list.push(row);
    groups.set(id, list);
  }
  const labelOrder = [...new Set(records.map((r) => r.label))];
  const out: AggregateRow[] = [];
  for (const rows of groups.values()) {
    const ok = rows.filter((r) => r.status === "ok");
    const first = rows[0];
    const stats = Object.fromEntries(AGGREGATED_METRICS.map((m) => [m, summarize(ok.map((r) => r[m]))])) as { [M in AggregatedMetric]: Stats };
    out.push({ label: first.label, method: first.method, budget: first.budget, sparsityTarget: first.sparsityTarget, runs: rows.length, failed: rows.length - ok.length, ...stats });
  }
  return out.sort((a, b) => labelOrder.indexOf(a.label) - labelOrder.indexOf(b.label) || a.budget - b.budget || (a.sparsityTarget ?? 0) - (b.sparsityTarget ?? 0));
}

/** The aggregate as flat columns: `<metric>_mean`, `_std`, `_ci95`, `_count` (NaN → null, for CSV and JSON). */
export function flatAggregate(rows: AggregateRow[]): Record<string, string | number | null>[] {
  const clean = (v: number) => (Number.isFinite(v) ? v : null);
  return rows.map((r) => {
    const flat: Record<string, string | number | null> = { method: r.label, baseMethod: r.method, budget: r.budget, sparsityTarget: r.sparsityTarget, runs: r.runs, failed: r.failed };
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
  const header = ["method", "budget", "target", "n", "accuracy", "loss", "sparsity", "infer ratio", "seconds"];
  const lines = rows.map((r) => [
    r.label, String(r.budget), r.sparsityTarget === null ? "-" : String(r.sparsityTarget), `${r.runs - r.failed}${r.failed ? ` (+${r.failed} failed)` : ""}`,
    fmt(r.testAccuracy, 4), fmt(r.testLoss, 4), fmt(r.sparsity, 4), fmt(r.inferenceRatio, 2), fmt(r.seconds, 1),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  return [header, ...lines].map((l) => l.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}
