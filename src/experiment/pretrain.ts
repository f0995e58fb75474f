import * as fs from "fs";
import * as path from "path";
import { datasetFor } from "../datasets";
import { checkDatasetDigest } from "../digest";
import { writeFileAtomic } from "../fsutil";
import { createModel, disposeModel } from "../model";
import { Checkpoint, DivergenceError, checkpointProblem, loadCheckpoint, saveCheckpoint, train } from "../train";
import { modelLike } from "./config-model";
import { tryLock, waitForLock } from "./lock";
import { PretrainPlan } from "./plan";
import { checkpointDir, checkpointFile, sealedJson, unsealJson } from "./store";

/** What a cached checkpoint says it is: the pre-training it comes from and its epoch (checked on every read). */
export const checkpointIdentity = (pretrainKey: string, epoch: number) => ({ pretrainKey, epoch });

/** Why the cached checkpoint of (pretrainKey, epoch) cannot be used (missing, corrupt, another's), or undefined. */
export function cachedCheckpointProblem(dataDir: string, pretrainKey: string, epoch: number): string | undefined {
  return checkpointProblem(checkpointFile(dataDir, pretrainKey, epoch), checkpointIdentity(pretrainKey, epoch));
}

/** The cached checkpoint of (pretrainKey, epoch), verified to be that one; throws naming the file. */
export function loadCachedCheckpoint(dataDir: string, pretrainKey: string, epoch: number): Checkpoint {
  return loadCheckpoint(checkpointFile(dataDir, pretrainKey, epoch), checkpointIdentity(pretrainKey, epoch));
}

/** The epochs 1..upTo whose checkpoint is on disk and intact (verified, and saying it is that one). */
export function intactEpochs(dataDir: string, pretrainKey: string, upTo: number): number[] {
  const out: number[] = [];
  for (let e = 1; e <= upTo; e++) if (cachedCheckpointProblem(dataDir, pretrainKey, e) === undefined) out.push(e);
  return out;
}

export class PretrainFailed extends Error {}

const pretrainInfoFile = (dataDir: string, key: string) => path.join(checkpointDir(dataDir, key), "pretrain.json");

/** What dense pre-training of one seed recorded beside its checkpoints. */
export interface PretrainInfo {
  epochsDone: number;
  /** Mean training loss of each epoch (epoch i at index i − 1). */
  losses: number[];
  epochSeconds: number[];
  failed?: string;
}

/** The pre-training log of `key`; undefined when it is missing, edited or corrupt (its checksum), or another key's. */
export function readPretrainInfo(dataDir: string, key: string): PretrainInfo | undefined {
  let text: string;
  try {
    text = fs.readFileSync(pretrainInfoFile(dataDir, key), "utf8");
  } catch {
    return undefined;
  }
  const info = unsealJson(text) as (PretrainInfo & { key?: unknown }) | undefined;
  return info && info.key === key && Array.isArray(info.losses) && Array.isArray(info.epochSeconds) ? info : undefined;
}

function writePretrainInfo(dataDir: string, plan: PretrainPlan, info: PretrainInfo): void {
  writeFileAtomic(pretrainInfoFile(dataDir, plan.key), sealedJson({ key: plan.key, inputs: plan.inputs, ...info, updatedAt: new Date().toISOString() }));
}

/**
 * Dense pre-training of one seed up to plan.epochs, a checkpoint after every epoch. Checkpoints already on disk are
 * kept (never rewritten); if any needed one is missing, training restarts from the seeded init (the optimizer's
 * momentum is not checkpointed, and training is deterministic, so the result is the same). Locked per key.
 * Throws PretrainFailed when the loss diverges (and remembers it, so later sweeps do not pre-train to fail again).
 * With `yieldIfHeld`, a lock another process holds is not waited for: "held-elsewhere" is returned at once (a sweep
 * then uses the other's checkpoints as they appear).
 */
export async function pretrain(
  plan: PretrainPlan,
  dataDir: string,
  onCheckpoint: (epoch: number) => void = () => {},
  opts: { retryFailed?: boolean; yieldIfHeld?: boolean } = {},
): Promise<"done" | "held-elsewhere"> {
  const reported = new Set<number>();
  const report = (epoch: number) => {
    if (!reported.has(epoch)) {
      reported.add(epoch);
      onCheckpoint(epoch);
    }
  };
  const allIntact = () => {
    const intact = intactEpochs(dataDir, plan.key, plan.epochs);
    intact.forEach(report);
    return intact.length === plan.epochs;
  };
  const lockKey = `pretrain-${plan.key}`;
  let heldElsewhere = false;
  const lockIfFree = async () => {
    if (allIntact()) return undefined;
    const taken = await tryLock(dataDir, lockKey);
    heldElsewhere = taken === undefined;
    if (taken && allIntact()) {
      await taken();
      return undefined;
    }
    return taken;
  };
  const release = opts.yieldIfHeld ? await lockIfFree() : await waitForLock(dataDir, lockKey, () => !allIntact());
  if (!release) return heldElsewhere ? "held-elsewhere" : "done";
  try {
    const previous = readPretrainInfo(dataDir, plan.key);
    if (previous?.failed && !opts.retryFailed) throw new PretrainFailed(previous.failed);
    const planned = { train: plan.inputs.dataset.digest as string };
    const dataset = datasetFor(plan.dataset, planned);
    checkDatasetDigest(dataset, planned);
    const model = createModel(modelLike(plan.inputs.model), plan.inputs.seed, plan.inputs.model.init);
    const epochSeconds: number[] = [];
    const losses: number[] = [];
    try {
      await train(model, dataset.train, {
        epochs: plan.epochs,
        ...plan.inputs.pretrain,
        seed: plan.inputs.seed,
        streamLabel: "pretrain",
        onEpoch: async ({ epoch, meanLoss, seconds }) => {
          epochSeconds.push(seconds);
          losses.push(meanLoss);
          const file = checkpointFile(dataDir, plan.key, epoch);
          if (cachedCheckpointProblem(dataDir, plan.key, epoch) !== undefined)
            await saveCheckpoint(file, model, checkpointIdentity(plan.key, epoch), { meanLoss, inputs: plan.inputs });
          writePretrainInfo(dataDir, plan, { epochsDone: epoch, losses, epochSeconds });
          report(epoch);
        },
      });
    } catch (err) {
      if (!(err instanceof DivergenceError)) throw err;
      const reason = `pretraining (seed ${plan.inputs.seed}) failed: ${err.message}`;
      writePretrainInfo(dataDir, plan, { epochsDone: losses.length, losses, epochSeconds, failed: reason });
      throw new PretrainFailed(reason);
    } finally {
      disposeModel(model);
    }
  } finally {
    await release();
  }
  return "done";
}
