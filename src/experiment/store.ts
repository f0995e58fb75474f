import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { configure } from "safe-stable-stringify";
import { z } from "zod";
import { writeFileAtomic } from "../fsutil";
import type { PruneDetails } from "../prune/method";
import { RECORD_FORMAT, RunInputs } from "./plan";
import { SHIPPED_DIR, takeShippedLines, writeShippedLines } from "./shipped";

/**
 * The result cache under a data folder:
 *   runs/<key>.json                      one record per run (atomic writes)
 *   runs/<key>.model                     its final weights and mask (final-model.ts), when computed here
 *   checkpoints/<pretrainKey>/epoch-<e>.ckpt, pretrain.json
 *   locks/<key>.lock/                    held (and renewed) while a process computes that key
 * Folders of several shards merge by copying: every file name is a key.
 */

export const runFile = (dataDir: string, key: string) => path.join(dataDir, "runs", `${key}.json`);
export const checkpointDir = (dataDir: string, pretrainKey: string) => path.join(dataDir, "checkpoints", pretrainKey);
export const checkpointFile = (dataDir: string, pretrainKey: string, epoch: number) =>
  path.join(checkpointDir(dataDir, pretrainKey), `epoch-${String(epoch).padStart(3, "0")}.ckpt`);

export interface RunMetrics {
  testAccuracy: number;
  testLoss: number;
  /** Right after pruning, before retraining (pruning methods only). */
  prunedAccuracy?: number;
  prunedLoss?: number;
  /** Fraction of exact zeros over all prunable kernels, and per kernel; the counts behind it. */
  sparsity: number;
  sparsityPerLayer: Record<string, number>;
  zeros: number;
  prunableWeights: number;
  /** Prunable weights / non-zero prunable weights. */
  compressionRatio: number;
  /**
   * Multiply-adds per image of the conv and dense kernels (ShrinkBench's FLOPs): the dense model's and those left on
   * the non-zero weights, per kernel and in all; speedup = dense / remaining (the theoretical bound).
   */
  flops: { dense: number; remaining: number; speedup: number; perLayer: Record<string, { dense: number; remaining: number }> };
  /** Training samples consumed by pre-training (to this budget), by the pruning itself (FW's minibatches), by retraining. */
  samples: { pretrain: number; prune: number; retrain: number };
  inferenceMedianSeconds: number;
  inferenceSeconds: number[];
  /** The dense checkpoint of the same budget, timed interleaved with this run's model (the ratio's denominator). */
  inferenceDenseMedianSeconds: number;
  /**
   * This run's model compiled for fwprune's sparse kernels (src/inference/sparse-model.ts), timed in the same
   * interleaved rounds, and the path each conv/dense layer took there. Absent from records made before it existed
   * (the shipped paper, tradeoff and fashion records) and where the kernels cannot run (backends other than wasm).
   */
  inferenceSparseMedianSeconds?: number;
  inferenceSparsePaths?: Record<string, "dense" | "sparse">;
  /** Training samples the method itself consumed (FW gradient minibatches + retraining), and pre-training's. */
  samplesUsed: number;
  pretrainSamples: number;
  seconds: { prune: number; retrain: number; evaluate: number; total: number };
  /**
   * Structured methods only (their model is cut down, "surgered", then retrained): kept filters/neurons per layer,
   * parameters and FLOPs of the smaller model beside the dense one's, and its inference time beside the dense
   * checkpoint's, interleaved in one run, at the config's batch size and at batch 1 (medians; speedup = dense / it).
   */
  surgered?: {
    groups: Record<string, { kept: number; of: number }>;
    params: number;
    denseParams: number;
    flops: number;
    denseFlops: number;
    flopSpeedup: number;
    batch: SideBySideTiming & { batchSize: number };
    batchOne: SideBySideTiming & { samples: number };
  };
}

export interface SideBySideTiming {
  medianSeconds: number;
  denseMedianSeconds: number;
  speedup: number;
}

export interface RunRecord {
  format: number;
  key: string;
  status: "ok" | "failed";
  reason?: string;
  label: string;
  /** The config model's name (records made before configs could list several models lack it). */
  model?: string;
  method: string;
  seed: number;
  budget: number;
  sparsityTarget: number | null;
  inputs: RunInputs;
  /** The full experiment config the run was planned from (informational; the key covers `inputs` only). */
  config: unknown;
  backend: string;
  versions: { fwprune: string; tfjs: string; node: string };
  createdAt: string;
  host: string;
  pid: number;
  metrics?: RunMetrics;
  /** Per FW iteration: gap and minibatch loss (and whatever else the pruning method reports). */
  history?: unknown[];
  /** What else the method reported (FW: a summary of the relaxed mask and its rounding). */
  details?: PruneDetails;
  /** SHA-256 of the record's canonical JSON without this field: checked on every read. */
  checksum?: string;
}

export type ReadResult = { kind: "missing" } | { kind: "ok"; record: RunRecord } | { kind: "corrupt"; reason: string };

// Keys sorted, NaN written as null (as JSON.parse will read it back): the same record always gives the same text.
const stableJson = configure({ deterministic: true });

/** SHA-256 of an object's canonical JSON without its `checksum` field: a record's (or a pre-training log's) seal. */
function checksumOf(value: object): string {
  const { checksum: _checksum, ...rest } = value as { checksum?: unknown };
  return createHash("sha256")
    .update(stableJson(rest) as string)
    .digest("hex");
}

export function recordChecksum(record: RunRecord): string {
  return checksumOf(record);
}

/** JSON text of `value` sealed with a checksum (see checksumOf), as records are. */
export function sealedJson(value: object): string {
  const sealed = { ...value, checksum: undefined };
  return JSON.stringify({ ...sealed, checksum: checksumOf(sealed) }, null, 1) + "\n";
}

/** The object a sealed JSON text holds, or undefined when it does not parse or its checksum does not match. */
export function unsealJson(text: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(text) as Record<string, unknown>;
    return value !== null && typeof value === "object" && value.checksum === checksumOf(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** By folder, by key: the shipped record found (checked), or null where none of its lines passed. */
const shippedChecked = new Map<string, Map<string, RunRecord | null>>();

/** The shipped record of `key`: the last of its lines that parses and passes recordProblem (every other is reported). */
export function shippedRecord(key: string, dir = SHIPPED_DIR): RunRecord | undefined {
  let checked = shippedChecked.get(dir);
  if (!checked) shippedChecked.set(dir, (checked = new Map()));
  const known = checked.get(key);
  if (known !== undefined) return known ?? undefined;
  let valid: RunRecord | undefined;
  for (const { where, text } of takeShippedLines(key, dir)) {
    let record: RunRecord;
    try {
      record = JSON.parse(text) as RunRecord;
    } catch {
      console.error(`fwprune: ignoring ${where}: not valid JSON`);
      continue;
    }
    const problem = recordProblem(record, key);
    if (problem) console.error(`fwprune: ignoring ${where}: ${problem}`);
    else valid = record;
  }
  checked.set(key, valid ?? null);
  return valid;
}

/** Write the records (sorted by key) as a shipped file and its index (shipped.ts). */
export function writeShipped(file: string, records: RunRecord[]): void {
  writeShippedLines(
    file,
    [...records].sort((a, b) => (a.key < b.key ? -1 : 1)).map((r) => JSON.stringify(r)),
  );
  shippedChecked.clear();
}

/**
 * Read a record from the data folder, else from the shipped records; anything that does not parse, does not match
 * its checksum or does not look like a record of `key` is "corrupt", never trusted. `shipped: false` reads the data
 * folder only.
 */
export function readRecord(dataDir: string, key: string, opts: { shipped?: boolean } = {}): ReadResult {
  const file = runFile(dataDir, key);
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      const record = opts.shipped === false ? undefined : shippedRecord(key);
      return record ? { kind: "ok", record } : { kind: "missing" };
    }
    return { kind: "corrupt", reason: `${file}: unreadable (${(err as Error).message})` };
  }
  return verifyRecordText(text, key, file);
}

/** A record's text (as read from `file`) parsed and checked as readRecord checks it: format, key, checksum, schema. */
export function verifyRecordText(text: string, key: string, file: string): ReadResult {
  let record: RunRecord;
  try {
    record = JSON.parse(text) as RunRecord;
  } catch (err) {
    return { kind: "corrupt", reason: `${file}: not valid JSON (${(err as Error).message})` };
  }
  const problem = recordProblem(record, key);
  return problem ? { kind: "corrupt", reason: `${file}: ${problem}` } : { kind: "ok", record };
}

const finite = z.number().finite();
const count = z.number().int().nonnegative();
const MetricsSchema = z.object({
  testAccuracy: z.number().min(0).max(1),
  testLoss: finite,
  prunedAccuracy: z.number().min(0).max(1).optional(),
  prunedLoss: finite.optional(),
  sparsity: z.number().min(0).max(1),
  sparsityPerLayer: z.record(z.string(), z.number().min(0).max(1)),
  zeros: count,
  prunableWeights: count,
  compressionRatio: z.number().positive().or(z.null()),
  flops: z.object({
    dense: count,
    remaining: count,
    speedup: z.number().positive().or(z.null()),
    perLayer: z.record(z.string(), z.object({ dense: count, remaining: count })),
  }),
  samples: z.object({ pretrain: count, prune: count, retrain: count }),
  inferenceMedianSeconds: z.number().positive(),
  inferenceSeconds: z.array(z.number().positive()).nonempty(),
  inferenceDenseMedianSeconds: z.number().positive(),
  inferenceSparseMedianSeconds: z.number().positive().optional(),
  inferenceSparsePaths: z.record(z.string(), z.enum(["dense", "sparse"])).optional(),
  samplesUsed: count,
  pretrainSamples: count,
  seconds: z.object({ prune: finite, retrain: finite, evaluate: finite, total: finite }),
  surgered: z
    .object({
      groups: z.record(z.string(), z.object({ kept: count, of: count })),
      params: count,
      denseParams: count,
      flops: count,
      denseFlops: count,
      flopSpeedup: z.number().positive(),
      batch: z.object({ batchSize: count, medianSeconds: z.number().positive(), denseMedianSeconds: z.number().positive(), speedup: z.number().positive() }),
      batchOne: z.object({ samples: count, medianSeconds: z.number().positive(), denseMedianSeconds: z.number().positive(), speedup: z.number().positive() }),
    })
    .optional(),
});
/** Every field a record of this format has (extra fields are allowed: a newer writer may add some). */
const RecordSchema = z
  .object({
    format: z.literal(RECORD_FORMAT),
    key: z.string().regex(/^[0-9a-f]{32}$/),
    status: z.enum(["ok", "failed"]),
    reason: z.string().optional(),
    label: z.string().min(1),
    method: z.string().min(1),
    seed: count,
    budget: z.number().int().positive(),
    sparsityTarget: z.number().min(0).max(1).nullable(),
    inputs: z
      .object({ format: z.literal(RECORD_FORMAT), checkpoint: z.object({ pretrainKey: z.string(), epoch: z.number().int().positive() }), method: z.string() })
      .passthrough(),
    config: z.unknown(),
    backend: z.string(),
    versions: z.object({ fwprune: z.string(), tfjs: z.string(), node: z.string() }),
    createdAt: z.string().datetime(),
    host: z.string(),
    pid: count,
    metrics: MetricsSchema.optional(),
    history: z.array(z.unknown()).optional(),
    details: z.record(z.string(), z.unknown()).optional(),
    checksum: z.string().regex(/^[0-9a-f]{64}$/),
  })
  .superRefine((r, ctx) => {
    if (r.status === "ok" && !r.metrics) ctx.addIssue({ code: "custom", path: ["metrics"], message: "status ok without metrics" });
    if (r.status === "failed" && !r.reason) ctx.addIssue({ code: "custom", path: ["reason"], message: "status failed without a reason" });
  });

/** Why a parsed record of `key` cannot be trusted (format, file name, checksum, schema), or undefined. */
function recordProblem(r: RunRecord, key: string): string | undefined {
  if (r === null || typeof r !== "object") return "expected a JSON object";
  if (r.format !== RECORD_FORMAT) return `format ${JSON.stringify(r.format)}, expected ${RECORD_FORMAT}`;
  if (r.key !== key) return `key ${JSON.stringify(r.key)}, expected ${key} (the file name)`;
  if (r.checksum !== recordChecksum(r)) return "content does not match its checksum (edited or corrupted)";
  const parsed = RecordSchema.safeParse(r);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return `${issue.path.join(".") || "(record)"}: ${issue.message}`;
  }
  return undefined;
}

export function writeRecord(dataDir: string, record: RunRecord): void {
  writeFileAtomic(runFile(dataDir, record.key), sealedJson(record));
}

/** Every record in a data folder (all runs, of any config); corrupt files are listed apart. */
export function listRecords(dataDir: string): { records: RunRecord[]; corrupt: string[] } {
  const dir = path.join(dataDir, "runs");
  const records: RunRecord[] = [];
  const corrupt: string[] = [];
  if (!fs.existsSync(dir)) return { records, corrupt };
  for (const name of fs.readdirSync(dir).sort()) {
    if (!name.endsWith(".json")) continue;
    const r = readRecord(dataDir, name.slice(0, -5));
    if (r.kind === "ok") records.push(r.record);
    else if (r.kind === "corrupt") corrupt.push(r.reason);
  }
  return { records, corrupt };
}
