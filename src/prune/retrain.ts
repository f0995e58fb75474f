import { Split } from "../data";
import { Model } from "../model";
import { TrainResult, train } from "../train";
import { Mask, SparsityReport, applyMask, weightSparsity } from "./mask";

export interface RetrainOptions {
  epochs?: number;
  batchSize?: number;
  lr?: number;
  momentum?: number;
  seed: number;
  /** Retrain WITHOUT the mask (the paper's Algorithm 2 as written): pruned weights may come back. */
  regrow?: boolean;
  /** Epoch numbering for the shuffling stream (default 1). */
  firstEpoch?: number;
  /** Names the shuffling stream (default "retrain"); the sweep uses one per pre-training budget. */
  streamLabel?: string;
  onBatch?: Parameters<typeof train>[2]["onBatch"];
}

export interface RetrainResult {
  /** A new model: the checkpoint with the mask folded in, then retrained. */
  model: Model;
  training: TrainResult;
  /** Measured on the retrained weights, so regrowth shows. */
  sparsity: SparsityReport;
}

/** Fold the mask into a copy of the checkpoint and retrain it (mask held fixed unless `regrow`); sparsity is measured. */
export async function retrainPruned(checkpoint: Model, mask: Mask, split: Split, opts: RetrainOptions): Promise<RetrainResult> {
  const model = applyMask(checkpoint, mask);
  const training = await retrainInPlace(model, mask, split, opts);
  return { model, training, sparsity: weightSparsity(model) };
}

/** Retrain a pruned model in place: the mask is held fixed (pruned weights stay exactly zero) unless `regrow`. */
export function retrainInPlace(model: Model, mask: Mask, split: Split, opts: RetrainOptions): Promise<TrainResult> {
  return train(model, split, {
    epochs: opts.epochs ?? 1,
    batchSize: opts.batchSize,
    lr: opts.lr,
    momentum: opts.momentum,
    seed: opts.seed,
    mask: opts.regrow ? undefined : mask,
    firstEpoch: opts.firstEpoch,
    streamLabel: opts.streamLabel ?? "retrain",
    onBatch: opts.onBatch,
  });
}
