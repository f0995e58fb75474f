import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { writeFileAtomic } from "../fsutil";
import { RECORD_FORMAT, RunInputs } from "./plan";
import type { MethodName } from "./config";

/**
 * The result cache under a data folder:
 *   runs/<key>.json                      one record per run (atomic writes)
 *   checkpoints/<pretrainKey>/epoch-<e>.ckpt, pretrain.json
 *   locks/<key>.lock                     held while a process computes that key
 * Folders of several shards merge by copying: every file name is a key.
 */
export function defaultDataDir(): string {
  return process.env.FWPRUNE_DATA_DIR ?? "data";
}

export const runFile = (dataDir: string, key: string) => path.join(dataDir, "runs", `${key}.json`);
export const checkpointDir = (dataDir: string, pretrainKey: string) => path.join(dataDir, "checkpoints", pretrainKey);
export const checkpointFile = (dataDir: string, pretrainKey: string, epoch: number) =>
  path.join(checkpointDir(dataDir, pretrainKey), `epoch-${String(epoch).padStart(3, "0")}.ckpt`);
export const lockFile = (dataDir: string, key: string) => path.join(dataDir, "locks", `${key}.lock`);

export interface RunMetrics {
  testAccuracy: number;
  testLoss: number;
  /** Right after pruning, before retraining (pruning methods only). */
  prunedAccuracy?: number;
  prunedLoss?: number;
  /** Fraction of exact zeros over all prunable kernels, and per kernel. */
  sparsity: number;
  sparsityPerLayer: Record<string, number>;
  inferenceMedianSeconds: number;
  inferenceSeconds: number[];
  /** The dense checkpoint of the same budget, timed interleaved with this run's model (the ratio's denominator). */
  inferenceDenseMedianSeconds: number;
  /** Training samples the method itself consumed (FW gradient minibatches + retraining), and pre-training's. */
  samplesUsed: number;
  pretrainSamples: number;
  seconds: { prune: number; retrain: number; evaluate: number; total: number };
}

export interface RunRecord {
  format: number;
  key: string;
  status: "ok" | "failed";
  reason?: string;
  label: string;
  method: MethodName;
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
  history?: unknown;
}

export type ReadResult = { kind: "missing" } | { kind: "ok"; record: RunRecord } | { kind: "corrupt"; reason: string };

/** Read a record; anything that does not parse or does not look like a record of `key` is "corrupt", never trusted. */
export function readRecord(dataDir: string, key: string): ReadResult {
  const file = runFile(dataDir, key);
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { kind: "missing" };
    return { kind: "corrupt", reason: `${file}: unreadable (${(err as Error).message})` };
  }
  let record: RunRecord;
  try {
    record = JSON.parse(text) as RunRecord;
  } catch (err) {
    return { kind: "corrupt", reason: `${file}: not valid JSON (${(err as Error).message})` };
  }
  const problem = recordProblem(record, key);
  return problem ? { kind: "corrupt", reason: `${file}: ${problem}` } : { kind: "ok", record };
}

function recordProblem(r: RunRecord, key: string): string | undefined {
  if (r === null || typeof r !== "object") return "expected a JSON object";
  if (r.format !== RECORD_FORMAT) return `format ${JSON.stringify(r.format)}, expected ${RECORD_FORMAT}`;
  if (r.key !== key) return `key ${JSON.stringify(r.key)}, expected ${key} (the file name)`;
  if (r.status !== "ok" && r.status !== "failed") return `status ${JSON.stringify(r.status)}, expected "ok" or "failed"`;
  if (r.status === "ok") {
    const m = r.metrics;
    if (!m || typeof m.testAccuracy !== "number" || typeof m.sparsity !== "number" || typeof m.inferenceMedianSeconds !== "number") {
      return "status ok but metrics.testAccuracy / sparsity / inferenceMedianSeconds missing";
    }
  }
  return undefined;
}

export function writeRecord(dataDir: string, record: RunRecord): void {
  writeFileAtomic(runFile(dataDir, record.key), JSON.stringify(record, null, 1) + "\n");
}

// ---------------------------------------------------------------- locks

export interface LockOwner {
  pid: number;
  host: string;
  since: string;
}

/** A lock held by a process on another host is considered abandoned after this long (no heartbeat across hosts). */
export const FOREIGN_LOCK_STALE_MS = 12 * 3600 * 1000;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Why a lock is stale (its owner is gone), or undefined while it is live. */
export function staleLockReason(file: string): string | undefined {
  let owner: LockOwner;
  let mtimeMs: number;
  try {
    owner = JSON.parse(fs.readFileSync(file, "utf8")) as LockOwner;
    mtimeMs = fs.statSync(file).mtimeMs;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "gone";
    // Written by O_EXCL create then one small write: an unparsable lock is a writer that died in between, or one
    // still writing; give it a few seconds.
    try {
      return Date.now() - fs.statSync(file).mtimeMs > 5000 ? "unreadable and older than 5 s" : undefined;
    } catch {
      return "gone";
    }
  }
  if (owner.host === os.hostname()) return processAlive(owner.pid) ? undefined : `owner pid ${owner.pid} is not running`;
  return Date.now() - mtimeMs > FOREIGN_LOCK_STALE_MS ? `owner on host ${owner.host} silent for > 12 h` : undefined;
}

/**
 * Take the lock for `key` (O_EXCL create). A stale lock (dead owner) is removed and retaken. Returns a release
 * function, or undefined when a live process holds it. Two processes racing over the same stale lock can, rarely,
 * both proceed; each then computes the same run and writes the same record atomically: wasted work, no corruption.
 */
export function tryLock(dataDir: string, key: string): (() => void) | undefined {
  const file = lockFile(dataDir, key);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = fs.openSync(file, "wx");
      const owner = JSON.stringify({ pid: process.pid, host: os.hostname(), since: new Date().toISOString() } satisfies LockOwner);
      fs.writeSync(fd, owner);
      fs.closeSync(fd);
      return () => releaseLock(file, owner);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    if (staleLockReason(file) === undefined) return undefined;
    fs.rmSync(file, { force: true });
  }
  return undefined;
}

/** Remove the lock file only if it is still ours (after a stale-lock takeover it may belong to another process). */
function releaseLock(file: string, owner: string): void {
  try {
    if (fs.readFileSync(file, "utf8") === owner) fs.rmSync(file, { force: true });
  } catch {
    // already gone
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Wait for the lock (polling), calling `stillNeeded` between tries and once more after taking it: when it returns
 * false (another process did the work meanwhile), give up (undefined).
 */
export async function waitForLock(dataDir: string, key: string, stillNeeded: () => boolean, pollMs = 1000): Promise<(() => void) | undefined> {
  for (;;) {
    if (!stillNeeded()) return undefined;
    const release = tryLock(dataDir, key);
    if (release) {
      if (stillNeeded()) return release;
      release();
      return undefined;
    }
    await sleep(pollMs);
  }
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
