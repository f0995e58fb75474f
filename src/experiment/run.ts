import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend";
import { Dataset, DatasetSpec, loadDataset } from "../data";
import { writeFileAtomic } from "../fsutil";
import { Model, cloneModel, createModel, disposeModel } from "../model";
import { applyMask, weightSparsity } from "../prune/mask";
import { retrainInPlace } from "../prune/retrain";
import { DivergenceError, evaluate, loadCheckpoint, saveCheckpoint, timeInferenceSideBySide, train } from "../train";
import { pruneWith } from "./methods";
import { PretrainPlan, RECORD_FORMAT, RunPlan, canonicalJson } from "./plan";
import {
  RunMetrics, RunRecord, checkpointDir, checkpointFile, readRecord, waitForLock, writeRecord,
} from "./store";

// ---------------------------------------------------------------- checkpoints

/** True when the checkpoint file is complete (magic, header, and exactly the weight bytes it announces); no tfjs needed. */
export function checkpointIntact(file: string): boolean {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch {
    return false;
  }
  if (buf.length < 12 || buf.subarray(0, 8).toString() !== "FWPCKPT1") return false;
  const headerLen = buf.readUInt32LE(8);
  if (12 + headerLen > buf.length) return false;
  try {
    const header = JSON.parse(buf.subarray(12, 12 + headerLen).toString("utf8")) as { params: { length: number }[] };
    const total = header.params.reduce((n, p) => n + p.length, 0);
    return buf.length === 12 + headerLen + 4 * total;
  } catch {
    return false;
  }
}

export function intactEpochs(dataDir: string, pretrainKey: string, upTo: number): number[] {
  const out: number[] = [];
  for (let e = 1; e <= upTo; e++) if (checkpointIntact(checkpointFile(dataDir, pretrainKey, e))) out.push(e);
  return out;
}

export class PretrainFailed extends Error {}

const pretrainInfoFile = (dataDir: string, key: string) => path.join(checkpointDir(dataDir, key), "pretrain.json");

/**
 * Dense pre-training of one seed up to plan.epochs, a checkpoint after every epoch. Checkpoints already on disk are
 * kept (never rewritten); if any needed one is missing, training restarts from the seeded init (the optimizer's
 * momentum is not checkpointed, and training is deterministic, so the result is the same). Locked per key.
 * Throws PretrainFailed when the loss diverges.
 */
export async function pretrain(
  plan: PretrainPlan,
  dataDir: string,
  onCheckpoint: (epoch: number) => void = () => {},
  opts: { retryFailed?: boolean } = {},
): Promise<void> {
  const reported = new Set<number>();
  const reportIntact = () => {
    const intact = intactEpochs(dataDir, plan.key, plan.epochs);
    for (const e of intact) if (!reported.has(e)) { reported.add(e); onCheckpoint(e); }
    return intact.length === plan.epochs;
  };
  const release = await waitForLock(dataDir, `pretrain-${plan.key}`, () => !reportIntact());
  if (!release) return;
  try {
    const previous = readPretrainInfo(dataDir, plan.key);
    if (previous?.failed && !opts.retryFailed) throw new PretrainFailed(previous.failed);
    const dataset = datasetFor(plan.dataset);
    const model = createModel(plan.inputs.model, plan.inputs.seed);
    const epochSeconds: number[] = [];
    const losses: number[] = [];
    try {
      await train(model, dataset.train, {
        epochs: plan.epochs,
        ...plan.inputs.pretrain,
        seed: plan.inputs.seed,
        streamLabel: "pretrain",
        onEpoch: ({ epoch, meanLoss, seconds }) => {
          epochSeconds.push(seconds);
          losses.push(meanLoss);
          const file = checkpointFile(dataDir, plan.key, epoch);
          if (!checkpointIntact(file)) saveCheckpoint(file, model, { pretrainKey: plan.key, epoch, meanLoss, inputs: plan.inputs });
          writePretrainInfo(dataDir, plan, { epochsDone: epoch, losses, epochSeconds });
          if (!reported.has(epoch)) { reported.add(epoch); onCheckpoint(epoch); }
        },
      });
    } catch (err) {
      if (!(err instanceof DivergenceError)) throw err;
      // Divergence is deterministic: remember it, so later sweeps do not pre-train again to fail again.
      const reason = `pretraining (seed ${plan.inputs.seed}) failed: ${err.message}`;
      writePretrainInfo(dataDir, plan, { epochsDone: losses.length, losses, epochSeconds, failed: reason });
      throw new PretrainFailed(reason);
    } finally {
      disposeModel(model);
    }
  } finally {
    release();
  }
}

interface PretrainInfo {
  epochsDone: number;
  losses: number[];
  epochSeconds: number[];
  failed?: string;
}

function readPretrainInfo(dataDir: string, key: string): PretrainInfo | undefined {
  try {
    return JSON.parse(fs.readFileSync(pretrainInfoFile(dataDir, key), "utf8")) as PretrainInfo;
  } catch {
    return undefined;
  }
}

function writePretrainInfo(dataDir: string, plan: PretrainPlan, info: PretrainInfo): void {
  writeFileAtomic(pretrainInfoFile(dataDir, plan.key), JSON.stringify({ key: plan.key, inputs: plan.inputs, ...info, updatedAt: new Date().toISOString() }, null, 1));
}

// ---------------------------------------------------------------- one run

const datasets = new Map<string, Dataset>();

/** Datasets stay loaded for the life of the process (a worker runs many runs on the same data). */
export function datasetFor(spec: DatasetSpec): Dataset {
  const id = canonicalJson(spec);
  let ds = datasets.get(id);
  if (!ds) {
    ds = loadDataset(spec);
    datasets.set(id, ds);
  }
  return ds;
}

let versionCache: RunRecord["versions"] | undefined;
export function versions(): RunRecord["versions"] {
  if (!versionCache) {
    let fwprune = "unknown";
    try {
      fwprune = (JSON.parse(fs.readFileSync(path.join(__dirname, "..", "..", "package.json"), "utf8")) as { version: string }).version;
    } catch {
      // not inside the package tree
    }
    versionCache = { fwprune, tfjs: tf.version_core, node: process.version };
  }
  return versionCache;
}

function baseRecord(plan: RunPlan, config: unknown, backend = tf.getBackend()): Omit<RunRecord, "status"> {
  return {
    format: RECORD_FORMAT,
    key: plan.key,
    label: plan.label,
    method: plan.method,
    seed: plan.seed,
    budget: plan.budget,
    sparsityTarget: plan.sparsity,
    inputs: plan.inputs,
    config,
    backend,
    versions: versions(),
    createdAt: new Date().toISOString(),
    host: os.hostname(),
    pid: process.pid,
  };
}

/** A failed record for a run that could not start (its pre-training diverged); `backend` as none ran. */
export function failedRecord(plan: RunPlan, config: unknown, reason: string, backend: string): RunRecord {
  return { ...baseRecord(plan, config, backend), status: "failed", reason };
}

/**
 * Compute one run from its checkpoint (which must exist): prune, retrain, evaluate, time. Any error, a diverging
 * loss included, makes a `failed` record with the reason. Does not touch the cache; see computeRun.
 */
export async function executeRun(plan: RunPlan, dataDir: string, config: unknown): Promise<RunRecord> {
  const start = performance.now();
  const dataset = datasetFor(plan.dataset);
  const { model: checkpoint } = loadCheckpoint(checkpointFile(dataDir, plan.pretrainKey, plan.budget));
  let model: Model | undefined;
  try {
    const seconds = { prune: 0, retrain: 0, evaluate: 0, total: 0 };
    let samplesUsed = 0;
    let history: unknown;
    let pruned: { accuracy: number; loss: number } | undefined;
    const retrain = plan.inputs.retrain;
    const retrainSeed = plan.seed;
    const streamLabel = `retrain/${plan.budget}`;
    if (plan.method === "dense") {
      model = checkpoint;
    } else if (plan.method === "dense-retrained") {
      model = cloneModel(checkpoint);
      if (retrain && retrain.epochs > 0) {
        const r = await train(model, dataset.train, { ...retrain, seed: retrainSeed, streamLabel });
        seconds.retrain = r.seconds;
        samplesUsed += r.samples;
      }
    } else {
      const outcome = await pruneWith(plan.method, checkpoint, dataset.train, plan.inputs.params, plan.seed);
      seconds.prune = outcome.seconds;
      samplesUsed += outcome.samplesUsed;
      history = outcome.history;
      model = applyMask(checkpoint, outcome.mask);
      pruned = evaluate(model, dataset.test);
      if (retrain && retrain.epochs > 0) {
        const regrow = (plan.inputs.params as { regrow?: boolean }).regrow === true;
        const r = await retrainInPlace(model, outcome.mask, dataset.train, { ...retrain, seed: retrainSeed, streamLabel, regrow });
        seconds.retrain = r.seconds;
        samplesUsed += r.samples;
      }
    }
    const evalStart = performance.now();
    const final = evaluate(model, dataset.test);
    // The dense checkpoint (left untouched above) is timed beside the final model, interleaved, so their ratio
    // survives a busy machine.
    const [timing, denseTiming] = timeInferenceSideBySide(model === checkpoint ? [model] : [model, checkpoint], dataset.test, plan.inputs.inference);
    const sparsity = weightSparsity(model);
    seconds.evaluate = (performance.now() - evalStart) / 1000;
    seconds.total = (performance.now() - start) / 1000;
    const metrics: RunMetrics = {
      testAccuracy: final.accuracy,
      testLoss: final.loss,
      prunedAccuracy: pruned?.accuracy,
      prunedLoss: pruned?.loss,
      sparsity: sparsity.global,
      sparsityPerLayer: sparsity.perLayer,
      inferenceMedianSeconds: timing.medianSeconds,
      inferenceSeconds: timing.seconds,
      inferenceDenseMedianSeconds: (denseTiming ?? timing).medianSeconds,
      samplesUsed,
      pretrainSamples: plan.budget * dataset.train.count,
      seconds,
    };
    return { ...baseRecord(plan, config), status: "ok", metrics, history };
  } catch (err) {
    const kind = err instanceof DivergenceError ? "DivergenceError" : (err as Error).name;
    return { ...baseRecord(plan, config), status: "failed", reason: `${kind}: ${(err as Error).message}` };
  } finally {
    if (model && model !== checkpoint) disposeModel(model);
    disposeModel(checkpoint);
  }
}

export interface ComputeOutcome {
  record: RunRecord;
  /** False when another process finished it while this one waited for its lock. */
  computed: boolean;
}

/**
 * Under the run's lock: return the cached record if one appeared meanwhile, else compute and store it. With
 * retryFailedBefore (an ISO time), failed records created before it do not count as cached.
 */
export async function computeRun(plan: RunPlan, dataDir: string, config: unknown, opts: { retryFailedBefore?: string } = {}): Promise<ComputeOutcome> {
  const cached = () => {
    const r = readRecord(dataDir, plan.key);
    if (r.kind !== "ok") return undefined;
    const stale = opts.retryFailedBefore !== undefined && r.record.status === "failed" && r.record.createdAt < opts.retryFailedBefore;
    return stale ? undefined : r.record;
  };
  const release = await waitForLock(dataDir, plan.key, () => cached() === undefined);
  if (!release) return { record: cached() as RunRecord, computed: false };
  try {
    const record = await executeRun(plan, dataDir, config);
    writeRecord(dataDir, record);
    return { record, computed: true };
  } finally {
    release();
  }
}

let backendReady: Promise<string> | undefined;
/** Initialise the backend once per process (the fastest available unless FWPRUNE_BACKEND says otherwise). */
export function ensureBackend(): Promise<string> {
  backendReady ??= initBackend(undefined, { quiet: true });
  return backendReady;
}
