import type { RunRecord } from "../experiment/store";
import { modelOfRecord } from "../report/frame";
import { ClaimOptions, ClaimRow, describeScope, paperClaims } from "./claims";
import { ciHalfWidth, summarize } from "./stats";

/** The claims of one architecture, or pooled over all of them ("pooled"). */
export interface ModelClaims {
  model: string;
  rows: ClaimRow[];
}

/** The models among the records, in the order they first appear. */
export function recordModels(records: RunRecord[]): string[] {
  return [...new Set(records.map(modelOfRecord))];
}

/**
 * The records with each (architecture, seed) made one replicate: its seed replaced by a replicate number, so the
 * claims' pairing (same seed, same budget) stays within one architecture and the pooled interval runs over
 * architectures × seeds. Architecture-to-architecture spread thus enters the interval, as it should for a claim
 * about architectures in general.
 */
export function pooledOverModels(records: RunRecord[]): RunRecord[] {
  const models = recordModels(records);
  const seeds = [...new Set(records.map((r) => r.seed))].sort((a, b) => a - b);
  return records.map((r) => ({ ...r, seed: models.indexOf(modelOfRecord(r)) * seeds.length + seeds.indexOf(r.seed) }));
}

/** The paper's claims on each architecture's records, then pooled over the architectures (see pooledOverModels). */
export function claimsByModel(records: RunRecord[], opts: ClaimOptions = {}): ModelClaims[] {
  const models = recordModels(records);
  const out = models.map((model) => ({
    model,
    rows: paperClaims(
      records.filter((r) => modelOfRecord(r) === model),
      opts,
    ),
  }));
  if (models.length > 1) {
    const seeds = new Set(records.map((r) => r.seed)).size;
    const scope = `${describeScope(records).replace(/, model [^,]*\)?/, "")}; pooled over ${models.join(", ")}: each (architecture, seed) is one replicate (${models.length} × ${seeds})`;
    out.push({ model: "pooled", rows: paperClaims(pooledOverModels(records), { ...opts, scope }) });
  }
  return out;
}

/** A type alias so rows pass as plain table rows. */
export type SpeedupRow = { model: string; method: string; budget: number; runs: number; measured: string; "FLOP bound": string; how: string };

/**
 * The measured inference speed-ups per architecture, method and budget (mean and 95% interval over seeds): weight-
 * pruned models through fwprune's sparse kernels against the dense checkpoint timed beside them; structured methods'
 * surgered (smaller) models through tfjs against the dense checkpoint, at the config's batch and at batch 1.
 */
export function speedupRows(records: RunRecord[]): SpeedupRow[] {
  const ok = records.filter((r) => r.status === "ok" && r.metrics);
  const rows: SpeedupRow[] = [];
  const text = (values: number[]) => {
    const s = summarize(values);
    const half = ciHalfWidth(s.std, s.count);
    return `×${s.mean.toFixed(2)}${Number.isFinite(half) ? ` [${(s.mean - half).toFixed(2)}, ${(s.mean + half).toFixed(2)}]` : ""}`;
  };
  const groups = new Map<string, RunRecord[]>();
  for (const r of ok) {
    const id = JSON.stringify([modelOfRecord(r), r.label, r.budget]);
    groups.set(id, [...(groups.get(id) ?? []), r]);
  }
  for (const runs of groups.values()) {
    const [first] = runs;
    const base = { model: modelOfRecord(first), method: first.label, budget: first.budget, runs: runs.length };
    const surgered = runs.filter((r) => r.metrics!.surgered);
    if (surgered.length > 0) {
      const bound = text(surgered.map((r) => r.metrics!.surgered!.flopSpeedup));
      rows.push({
        ...base,
        measured: text(surgered.map((r) => r.metrics!.surgered!.batch.speedup)),
        "FLOP bound": bound,
        how: "surgered model, tfjs, config batch",
      });
      rows.push({
        ...base,
        measured: text(surgered.map((r) => r.metrics!.surgered!.batchOne.speedup)),
        "FLOP bound": bound,
        how: "surgered model, tfjs, batch 1",
      });
      continue;
    }
    const sparse = runs.filter((r) => r.metrics!.inferenceSparseMedianSeconds !== undefined && r.metrics!.sparsity > 0);
    if (sparse.length === 0) continue;
    rows.push({
      ...base,
      runs: sparse.length,
      measured: text(sparse.map((r) => r.metrics!.inferenceDenseMedianSeconds / r.metrics!.inferenceSparseMedianSeconds!)),
      "FLOP bound": text(sparse.map((r) => r.metrics!.flops.speedup)),
      how: "fwprune sparse kernels, config batch",
    });
  }
  return rows;
}
