import type { RunRecord } from "../experiment/store";
import { modelOfRecord } from "../report/frame";
import { ClaimOptions, ClaimRow, describeScope, paperClaims } from "./claims";

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
