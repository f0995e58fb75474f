import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../backend";
import { datasetFor } from "../datasets";
import { DatasetChangedError, checkDatasetDigest } from "../digest";
import { compileSparseModel } from "../inference/sparse-model";
import { startInferenceWorkers, whenInferenceWorkersReady } from "../inference/split-predict";
import { sparseKernelsAvailable } from "../kernels/sparse";
import { totalFlops } from "../graph";
import { Model, cloneModel, countParams, disposeModel, getWeights, modelFromWeights } from "../model";
import { groupLayout, keptGroups } from "../prune/groups";
import { surgery, unsurgery } from "../prune/surgery";
import { Mask, applyMask, sparsityOfWeights } from "../prune/mask";
import { PruneOutcome, getMethod } from "../prune/method";
import { retrainInPlace } from "../prune/retrain";
import { DivergenceError, evaluate, train } from "../train";
import { writeFileAtomic } from "../fsutil";
import { InferenceTiming, flopsOf, timeInferenceSideBySide } from "../measure";
import { FinalModel, encodeFinalModel, finalModelFile, readFinalModel } from "./final-model";
import { waitForLock } from "./lock";
import { ExperimentConfig } from "./config";
import { RECORD_FORMAT, RunPlan, planPretraining } from "./plan";
import { loadCachedCheckpoint, pretrain } from "./pretrain";
import { RunMetrics, RunRecord, readRecord, writeRecord } from "./store";

let versionCache: RunRecord["versions"] | undefined;
function versions(): RunRecord["versions"] {
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
    model: plan.model,
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
 * Compute one run from its checkpoint (which must exist): the method (prune, if it does), retraining as the method
 * says, evaluation, inference timing beside the dense checkpoint and through the sparse kernels. Any error, a
 * diverging loss included, makes a `failed` record with the reason. Touches no cache; see ensureRecord.
 * `onFinalModel` sees the final model and the method's outcome (its mask) before they are disposed.
 */
export async function computeRecord(
  plan: RunPlan,
  dataDir: string,
  config: unknown,
  onProgress?: (done: number, total: number) => void,
  onFinalModel?: (final: Model, outcome?: PruneOutcome) => Promise<void>,
): Promise<RunRecord> {
  const start = performance.now();
  startInferenceWorkers(); // evaluation splits its batches between them (and the timing waits for them)
  const dataset = datasetFor(plan.dataset, plan.datasetDigest);
  checkDatasetDigest(dataset, plan.datasetDigest); // throws: nothing is recorded under the key of other data
  const method = getMethod(plan.method);
  const matched = matchedRecords(plan, dataDir);
  if (typeof matched === "string") return { ...baseRecord(plan, config), status: "failed", reason: matched };
  const { model: checkpoint } = loadCachedCheckpoint(dataDir, plan.pretrainKey, plan.budget);
  let model: Model | undefined;
  try {
    const seconds = { prune: 0, retrain: 0, evaluate: 0, total: 0 };
    const samples = { pretrain: plan.budget * dataset.train.count, prune: 0, retrain: 0 };
    let outcome: PruneOutcome | undefined;
    let pruned: { accuracy: number; loss: number } | undefined;
    if (method.prune) {
      const pruneStart = performance.now();
      // Matched: exactly the other run's zeros (zeros/n → round(s·n) = zeros, see removedCount).
      const target = matched.sparsity ? matched.sparsity.zeros / matched.sparsity.prunableWeights : (plan.sparsity as number);
      outcome = await method.prune(checkpoint, plan.params, { train: dataset.train, seed: plan.seed, target, progress: onProgress });
      seconds.prune = (performance.now() - pruneStart) / 1000;
      samples.prune = outcome.samplesUsed;
      if (plan.inputs.retrain?.surgered) {
        if (!outcome.groups) throw new Error(`method "${plan.method}" retrains its surgered model but returned no group mask`);
        const smaller = surgery(checkpoint.spec ?? checkpoint.graph, getWeights(checkpoint), outcome.groups);
        model = modelFromWeights(smaller.spec ?? smaller.graph, smaller.weights);
      } else {
        model = applyMask(checkpoint, outcome.mask);
      }
      pruned = evaluate(model, dataset.test);
    } else {
      model = method.retrain(plan.params) === "none" ? checkpoint : cloneModel(checkpoint);
    }
    const retrain = plan.inputs.retrain;
    const matchedSamples = matched.samples ? matched.samples.samples.prune + matched.samples.samples.retrain : undefined;
    if (retrain && (retrain.epochs > 0 || matchedSamples !== undefined)) {
      const { masked, surgered: _surgered, ...opts } = retrain; // a surgered model trains densely, like a free one
      const streamLabel = `retrain/${plan.budget}`;
      const r =
        outcome && masked
          ? await retrainInPlace(model, outcome.mask as Mask, dataset.train, { ...opts, seed: plan.seed, streamLabel })
          : await train(model, dataset.train, { ...opts, samples: matchedSamples, seed: plan.seed, streamLabel });
      seconds.retrain = r.seconds;
      samples.retrain = r.samples;
    }
    const evalStart = performance.now();
    const final = evaluate(model, dataset.test);
    // The dense checkpoint (left untouched above) is timed beside the final model, interleaved, so their ratio
    // survives a busy machine; so is the final model compiled for the sparse kernels, where they run (wasm).
    const inference = plan.inputs.inference;
    const finalWeights = getWeights(model);
    const sparseModel = sparseKernelsAvailable()
      ? compileSparseModel(model.graph, finalWeights, { calibrationBatch: Math.min(128, inference.batchSize ?? 1000), calibrationRepeats: 3 })
      : undefined;
    if (sparseModel) await whenInferenceWorkersReady(); // so that every timed pass splits its batches alike
    const timed = [model, ...(model === checkpoint ? [] : [checkpoint]), ...(sparseModel ? [sparseModel] : [])];
    let timings;
    try {
      timings = timeInferenceSideBySide(timed, dataset.test, inference);
    } finally {
      sparseModel?.dispose();
    }
    const timing = timings[0];
    const denseTiming = model === checkpoint ? undefined : timings[1];
    const sparseTiming = sparseModel ? timings[timings.length - 1] : undefined;
    const groups = plan.inputs.retrain?.surgered ? outcome?.groups : undefined;
    // A surgered model is measured against the original: its weights written back into the original shapes.
    const sparsity = groups
      ? sparsityOfWeights(checkpoint.graph, unsurgery(checkpoint.graph, finalWeights, groups))
      : sparsityOfWeights(model.graph, finalWeights);
    // A surgered model is never the checkpoint, so the checkpoint was timed beside it (timings[1]).
    const surgered = groups ? surgeredMetrics(model, checkpoint, groups, dataset.test, inference, [timing, timings[1]]) : undefined;
    seconds.evaluate = (performance.now() - evalStart) / 1000;
    seconds.total = (performance.now() - start) / 1000;
    await onFinalModel?.(model, outcome); // after the clock: keeping the model is not part of the run's time
    const metrics: RunMetrics = {
      testAccuracy: final.accuracy,
      testLoss: final.loss,
      prunedAccuracy: pruned?.accuracy,
      prunedLoss: pruned?.loss,
      sparsity: sparsity.global,
      sparsityPerLayer: sparsity.perLayer,
      zeros: sparsity.zeros,
      prunableWeights: sparsity.total,
      compressionRatio: sparsity.total / (sparsity.total - sparsity.zeros),
      flops: flopsOf(checkpoint.graph, sparsity.perLayer),
      samples,
      inferenceMedianSeconds: timing.medianSeconds,
      inferenceSeconds: timing.seconds,
      inferenceDenseMedianSeconds: (denseTiming ?? timing).medianSeconds,
      inferenceSparseMedianSeconds: sparseTiming?.medianSeconds,
      inferenceSparsePaths: sparseModel ? Object.fromEntries(sparseModel.layers.map((l) => [l.layer, l.path])) : undefined,
      samplesUsed: samples.prune + samples.retrain,
      pretrainSamples: samples.pretrain,
      seconds,
      surgered,
    };
    return { ...baseRecord(plan, config), status: "ok", metrics, history: outcome?.history, details: outcome?.details };
  } catch (err) {
    const kind = err instanceof DivergenceError ? "DivergenceError" : (err as Error).name;
    return { ...baseRecord(plan, config), status: "failed", reason: `${kind}: ${(err as Error).message}` };
  } finally {
    if (model && model !== checkpoint) disposeModel(model);
    disposeModel(checkpoint);
  }
}

/** Images timed one at a time (batch 1) for a surgered model, beside the dense checkpoint. */
export const SINGLE_IMAGE_TIMING_SAMPLES = 200;

/** The surgered model beside the dense checkpoint: size, FLOPs, and inference speed at the config's batch and at batch 1. */
function surgeredMetrics(
  model: Model,
  checkpoint: Model,
  groups: Float32Array,
  test: Parameters<typeof timeInferenceSideBySide>[1],
  inference: { repeats: number; batchSize: number; samples?: number },
  [timing, denseTiming]: [InferenceTiming, InferenceTiming],
): NonNullable<RunMetrics["surgered"]> {
  const layout = groupLayout(checkpoint.graph);
  const flops = totalFlops(model.graph);
  const denseFlops = totalFlops(checkpoint.graph);
  const [one, denseOne] = timeInferenceSideBySide([model, checkpoint], test, {
    repeats: inference.repeats,
    batchSize: 1,
    samples: SINGLE_IMAGE_TIMING_SAMPLES,
  });
  return {
    groups: keptGroups(layout, groups),
    params: countParams(model.graph),
    denseParams: countParams(checkpoint.graph),
    flops,
    denseFlops,
    flopSpeedup: denseFlops / flops,
    batch: {
      batchSize: inference.batchSize,
      medianSeconds: timing.medianSeconds,
      denseMedianSeconds: denseTiming.medianSeconds,
      speedup: denseTiming.medianSeconds / timing.medianSeconds,
    },
    batchOne: {
      samples: Math.min(SINGLE_IMAGE_TIMING_SAMPLES, test.count),
      medianSeconds: one.medianSeconds,
      denseMedianSeconds: denseOne.medianSeconds,
      speedup: denseOne.medianSeconds / one.medianSeconds,
    },
  };
}

/** The metrics of the runs this one is matched to, or why it cannot run (a matched run missing or failed). */
function matchedRecords(plan: RunPlan, dataDir: string): { sparsity?: RunMetrics; samples?: RunMetrics } | string {
  const out: { sparsity?: RunMetrics; samples?: RunMetrics } = {};
  for (const [what, key] of Object.entries(plan.inputs.match ?? {}) as ["sparsity" | "samples", string | undefined][]) {
    if (key === undefined) continue;
    const r = readRecord(dataDir, key);
    if (r.kind !== "ok") return `the run it is matched to (${what}, key ${key}) is ${r.kind === "missing" ? "missing" : `corrupt: ${r.reason}`}`;
    if (r.record.status !== "ok" || !r.record.metrics)
      return `the run it is matched to (${what}: ${r.record.label} budget ${r.record.budget} seed ${r.record.seed}) failed: ${r.record.reason}`;
    out[what] = r.record.metrics;
  }
  return out;
}

export interface EnsureOutcome {
  record: RunRecord;
  /** False when another process finished it while this one waited for its lock. */
  computed: boolean;
  /** False when the record is a failure kept out of the cache (the data changed after planning). */
  stored?: boolean;
}

/**
 * The run's record: under the run's lock, the cached one if it appeared meanwhile, else computed and stored with its
 * final model (runs/<key>.model, see final-model.ts). With
 * retryFailedBefore (an ISO time), failed records created before it do not count as cached.
 */
export async function ensureRecord(
  plan: RunPlan,
  dataDir: string,
  config: unknown,
  opts: { retryFailedBefore?: string; onProgress?: (done: number, total: number) => void; onWait?: (seconds: number) => void } = {},
): Promise<EnsureOutcome> {
  const cached = () => {
    const r = readRecord(dataDir, plan.key);
    if (r.kind !== "ok") return undefined;
    const stale = opts.retryFailedBefore !== undefined && r.record.status === "failed" && r.record.createdAt < opts.retryFailedBefore;
    return stale ? undefined : r.record;
  };
  const release = await waitForLock(dataDir, plan.key, () => cached() === undefined, { onWait: opts.onWait });
  if (!release) return { record: cached() as RunRecord, computed: false };
  try {
    let record: RunRecord;
    let finalModel: Buffer | undefined;
    try {
      record = await computeRecord(plan, dataDir, config, opts.onProgress, async (model, outcome) => {
        finalModel = await encodeFinalModel(plan.key, model, outcome?.mask, outcome?.groups);
      });
    } catch (err) {
      if (!(err instanceof DatasetChangedError)) throw err;
      return { record: failedRecord(plan, config, err.message, "none"), computed: true, stored: false };
    }
    // The model first: a record whose model is missing recomputes it when asked for (fwprune export), never the reverse.
    if (finalModel && record.status === "ok") writeFileAtomic(finalModelFile(dataDir, plan.key), finalModel);
    writeRecord(dataDir, record);
    return { record, computed: true };
  } finally {
    await release();
  }
}

/**
 * A run's final model from the store; recomputed once from its checkpoint (and kept) when it is missing (a shipped
 * record) or refused (corrupt, another run's). The recomputed run must reproduce its record's test accuracy and zeros.
 */
export async function ensureFinalModel(
  config: ExperimentConfig,
  plan: RunPlan,
  record: RunRecord,
  dataDir: string,
  opts: { onStatus?: (message: string) => void; onProgress?: (done: number, total: number) => void } = {},
): Promise<FinalModel> {
  const file = finalModelFile(dataDir, plan.key);
  let refused: string;
  try {
    return readFinalModel(dataDir, plan.key);
  } catch (err) {
    refused = fs.existsSync(file) ? `the stored one is refused: ${(err as Error).message}` : "not stored";
  }
  opts.onStatus?.(`recomputing run ${plan.key} to get its final model (${refused})`);
  for (const p of planPretraining(config, [plan])) await pretrain(p, dataDir); // a shipped record's checkpoint may be missing
  let bytes: Buffer | undefined;
  const again = await computeRecord(plan, dataDir, record.config, opts.onProgress, async (model, outcome) => {
    bytes = await encodeFinalModel(plan.key, model, outcome?.mask, outcome?.groups);
  });
  if (again.status !== "ok" || !again.metrics || !bytes) throw new Error(`recomputing the run failed: ${again.reason ?? "no final model"}`);
  const recorded = record.metrics as RunMetrics;
  if (again.metrics.testAccuracy !== recorded.testAccuracy || again.metrics.zeros !== recorded.zeros) {
    throw new Error(
      `recomputing ${record.label} (budget ${record.budget}, seed ${record.seed}) gave test accuracy ${again.metrics.testAccuracy} with ${again.metrics.zeros} zeros; ` +
        `the record (${record.backend}, tfjs ${record.versions.tfjs}, ${record.host}) says ${recorded.testAccuracy} with ${recorded.zeros}: ` +
        "the run does not reproduce here, so these weights are not the recorded model; nothing was written",
    );
  }
  writeFileAtomic(file, bytes);
  return readFinalModel(dataDir, plan.key);
}

let backendReady: Promise<string> | undefined;
/** Initialise the backend once per process (the fastest available unless FWPRUNE_BACKEND says otherwise). */
export function ensureBackend(): Promise<string> {
  backendReady ??= initBackend(undefined, { quiet: true });
  return backendReady;
}
