import * as fs from "fs";
import * as path from "path";
import { assertWritableFolder, writeFileAtomic } from "../fsutil";
import { containerProblem } from "../container";
import { checkpointBytesProblem } from "../train";
import { FINAL_MODEL_KIND } from "./final-model";
import { checkpointIdentity } from "./pretrain";
import { RunRecord, runFile, unsealJson, verifyRecordText } from "./store";

/**
 * Merging data folders (the shards of a sweep computed apart, e.g. one folder per Slurm task) into one. Every record
 * and checkpoint is verified (checksum, schema) before it is copied; a record never replaces a different intact one of
 * the same key (a conflict, reported; the target's is kept); files are written atomically, so an interrupted merge
 * leaves nothing half-written, and merging again changes nothing.
 */
export interface MergeCounts {
  copied: number;
  /** Already in the target, byte for byte (or, for records, with the same checksum). */
  identical: number;
  /** The target's copy failed verification and was replaced by the verified source. */
  replacedCorrupt: number;
}

export interface MergeReport {
  records: MergeCounts;
  checkpoints: MergeCounts;
  /** Pre-training logs (checkpoints/<key>/pretrain.json): copied, or replaced by one that covers more epochs. */
  pretrainLogs: MergeCounts;
  /** Runs' final models (runs/<key>.model): verified to be that run's before they are copied. */
  finalModels: MergeCounts;
  /** Same key, different intact content in a source and in the target: the target's is kept. */
  conflicts: string[];
  /** Source files that failed verification: not copied. */
  invalid: string[];
}

export interface MergeProgress {
  done: number;
  total: number;
  file: string;
}

const RECORD_NAME = /^[0-9a-f]{32}\.json$/;
const FINAL_MODEL_NAME = /^([0-9a-f]{32})\.model$/;
const CHECKPOINT_NAME = /^epoch-(\d+)\.ckpt$/;
const KEY_DIR = /^[0-9a-f]{32}$/;

type Item = { kind: "record" | "checkpoint" | "final-model" | "pretrain-log"; source: string; target: string };

/** Throw (naming the folder) unless every source is an fwprune data folder distinct from the target. */
function checkFolders(sources: string[], into: string): void {
  if (sources.length === 0) throw new Error("merge: expected at least one source data folder");
  const target = fs.existsSync(into) ? fs.realpathSync(into) : path.resolve(into);
  for (const source of sources) {
    if (!fs.existsSync(source)) throw new Error(`merge: source ${source} does not exist; expected a data folder (with runs/ or checkpoints/)`);
    if (!fs.statSync(source).isDirectory()) throw new Error(`merge: source ${source} is a file; expected a data folder`);
    if (!fs.existsSync(path.join(source, "runs")) && !fs.existsSync(path.join(source, "checkpoints"))) {
      throw new Error(`merge: source ${source} has neither runs/ nor checkpoints/; expected an fwprune data folder`);
    }
    if (fs.realpathSync(source) === target) throw new Error(`merge: source ${source} is the target folder itself`);
  }
  assertWritableFolder(into, "merge target");
}

function listItems(source: string, into: string): Item[] {
  const items: Item[] = [];
  const list = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []);
  const checkpoints = path.join(source, "checkpoints");
  for (const key of list(checkpoints).filter((k) => KEY_DIR.test(k))) {
    for (const name of list(path.join(checkpoints, key))) {
      const item = (kind: Item["kind"]) => ({ kind, source: path.join(checkpoints, key, name), target: path.join(into, "checkpoints", key, name) });
      if (CHECKPOINT_NAME.test(name)) items.push(item("checkpoint"));
      else if (name === "pretrain.json") items.push(item("pretrain-log"));
    }
  }
  for (const name of list(path.join(source, "runs")).filter((n) => RECORD_NAME.test(n))) {
    items.push({ kind: "record", source: path.join(source, "runs", name), target: runFile(into, name.slice(0, -5)) });
  }
  for (const name of list(path.join(source, "runs")).filter((n) => FINAL_MODEL_NAME.test(n))) {
    items.push({ kind: "final-model", source: path.join(source, "runs", name), target: path.join(into, "runs", name) });
  }
  return items;
}

function readIfExists(file: string): Buffer | undefined {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

const describe = (r: RunRecord) => `${r.label} budget ${r.budget} seed ${r.seed}${r.sparsityTarget === null ? "" : ` s=${r.sparsityTarget}`}`;
const origin = (r: RunRecord) => `${r.status}, created ${r.createdAt} by pid ${r.pid} on ${r.host}`;

/** A pre-training log's epoch count, or undefined when it is not an intact one (its checksum) for checkpoint key `key`. */
function pretrainLogEpochs(bytes: Buffer, key: string): number | undefined {
  const log = unsealJson(bytes.toString("utf8"));
  return log && log.key === key && Number.isInteger(log.epochsDone) && Array.isArray(log.losses) ? (log.epochsDone as number) : undefined;
}

/** Merge the data folders `sources` into `into` (created if needed): see the module comment. */
export function mergeDataDirs(sources: string[], into: string, onProgress: (p: MergeProgress) => void = () => {}): MergeReport {
  checkFolders(sources, into);
  const zero = (): MergeCounts => ({ copied: 0, identical: 0, replacedCorrupt: 0 });
  const report: MergeReport = { records: zero(), checkpoints: zero(), pretrainLogs: zero(), finalModels: zero(), conflicts: [], invalid: [] };
  const items = sources.flatMap((source) => listItems(source, into));
  items.forEach((item, i) => {
    onProgress({ done: i, total: items.length, file: item.source });
    const bytes = fs.readFileSync(item.source);
    const existing = readIfExists(item.target);
    if (item.kind === "pretrain-log") {
      const key = path.basename(path.dirname(item.source));
      const epochs = pretrainLogEpochs(bytes, key);
      if (epochs === undefined) return report.invalid.push(`${item.source}: not a pre-training log of ${key}`);
      const existingEpochs = existing && pretrainLogEpochs(existing, key);
      if (existing && existing.equals(bytes)) report.pretrainLogs.identical++;
      else if (existingEpochs !== undefined && existingEpochs >= epochs) report.pretrainLogs.identical++;
      else {
        writeFileAtomic(item.target, bytes);
        report.pretrainLogs[existing && existingEpochs === undefined ? "replacedCorrupt" : "copied"]++;
      }
      return;
    }
    if (item.kind === "checkpoint" || item.kind === "final-model") {
      // The file must say it is the one its place names: a file copied over another's name is refused.
      const name = path.basename(item.source);
      const problemOf =
        item.kind === "checkpoint"
          ? (b: Buffer, file: string) =>
              checkpointBytesProblem(b, file, checkpointIdentity(path.basename(path.dirname(item.source)), Number(CHECKPOINT_NAME.exec(name)?.[1])))
          : (b: Buffer, file: string) =>
              containerProblem(b, file, { kind: FINAL_MODEL_KIND, identity: { runKey: FINAL_MODEL_NAME.exec(name)?.[1] as string } });
      const counts = item.kind === "checkpoint" ? report.checkpoints : report.finalModels;
      const problem = problemOf(bytes, item.source);
      if (problem) return report.invalid.push(problem);
      if (!existing) {
        writeFileAtomic(item.target, bytes);
        counts.copied++;
      } else if (existing.equals(bytes)) counts.identical++;
      else if (problemOf(existing, item.target)) {
        writeFileAtomic(item.target, bytes);
        counts.replacedCorrupt++;
      } else report.conflicts.push(`${item.target}: ${item.source} holds different weights (both intact); kept ${item.target}`);
      return;
    }
    const key = path.basename(item.source, ".json");
    const incoming = verifyRecordText(bytes.toString("utf8"), key, item.source);
    if (incoming.kind !== "ok") return report.invalid.push(incoming.kind === "corrupt" ? incoming.reason : `${item.source}: missing`);
    if (!existing) {
      writeFileAtomic(item.target, bytes);
      report.records.copied++;
      return;
    }
    const current = verifyRecordText(existing.toString("utf8"), key, item.target);
    if (current.kind !== "ok") {
      writeFileAtomic(item.target, bytes);
      report.records.replacedCorrupt++;
    } else if (current.record.checksum === incoming.record.checksum) report.records.identical++;
    else {
      report.conflicts.push(
        `run ${key} (${describe(current.record)}): ${item.source} (${origin(incoming.record)}) differs from ${item.target} ` +
          `(${origin(current.record)}); kept ${item.target}`,
      );
    }
  });
  onProgress({ done: items.length, total: items.length, file: "" });
  return report;
}

/** One line per kind: what was copied, already there, replaced; then the conflicts and invalid files. */
export function formatMergeReport(report: MergeReport, into: string): string {
  const line = (what: string, c: MergeCounts) =>
    `${what}: ${c.copied} copied, ${c.identical} already there${c.replacedCorrupt ? `, ${c.replacedCorrupt} corrupt in the target replaced` : ""}`;
  return [
    `merged into ${into}`,
    line("  records", report.records),
    line("  checkpoints", report.checkpoints),
    line("  pre-training logs", report.pretrainLogs),
    line("  final models", report.finalModels),
    `  conflicts (same key, different content; the target's kept): ${report.conflicts.length}`,
    `  invalid source files (failed verification; not copied): ${report.invalid.length}`,
  ].join("\n");
}
