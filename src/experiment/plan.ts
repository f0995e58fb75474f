import { createHash } from "crypto";
import { configure } from "safe-stable-stringify";
import { DatasetSpec, datasetDigest, getDataset } from "../datasets";
import { describeParams, getMethod } from "../prune/method";
import { ExperimentConfig, MethodEntry, RetrainParams, budgetsOf, sparsitiesOf } from "./config";
import { ConfigModel, modelsOf } from "./config-model";

/** Bump when the meaning of a record changes, so old records are not mistaken for new ones. */
export const RECORD_FORMAT = 3;

// safe-stable-stringify: keys sorted at every level, undefined fields dropped; strict: a function, NaN or Infinity
// throws instead of being written as null (two different values must never hash alike).
const stableStringify = configure({ strict: true, deterministic: true });

/** JSON with object keys sorted at every level and undefined fields dropped: equal values, equal text. */
export function canonicalJson(value: unknown): string {
  const text = stableStringify(value);
  if (text === undefined) throw new Error(`canonicalJson: ${typeof value} has no JSON form`);
  return text;
}

export function hashKey(value: unknown): string {
  return createHash("sha256").update(canonicalJson(value)).digest("hex").slice(0, 32);
}

/** The dataset spec with defaults filled in, so `{name:"mnist-embedded"}` and its explicit defaults hash the same. */
export function canonicalDataset(spec: DatasetSpec): DatasetSpec {
  return { ...getDataset(spec.name).defaults, ...spec } as DatasetSpec;
}

/** Only what the training split depends on (the files' content included): test-side fields do not change a checkpoint. */
function trainSideDataset(spec: DatasetSpec): Record<string, unknown> {
  const rest: Record<string, unknown> = { ...canonicalDataset(spec) };
  for (const field of ["limitTest", ...getDataset(spec.name).testOnly]) delete rest[field];
  return { ...rest, digest: datasetDigest(spec).train };
}

/** Everything a dense pre-training run (and so each of its checkpoints) depends on. Max epochs is not among them. */
export interface PretrainInputs {
  format: number;
  dataset: Record<string, unknown>;
  model: ConfigModel;
  pretrain: { lr: number; momentum: number; batchSize: number };
  seed: number;
}

export interface PretrainPlan {
  key: string;
  inputs: PretrainInputs;
  /** The highest checkpoint epoch the planned runs need. */
  epochs: number;
  /** What to train on (the full spec: the worker loads it). */
  dataset: DatasetSpec;
}

/** The pre-training of `model` (default: the config's first) for one seed. */
export function pretrainInputs(config: ExperimentConfig, seed: number, model: ConfigModel = modelsOf(config)[0]): PretrainInputs {
  const { lr, momentum, batchSize } = config.pretrain;
  return {
    format: RECORD_FORMAT,
    dataset: trainSideDataset(config.dataset as DatasetSpec),
    model,
    pretrain: { lr, momentum, batchSize },
    seed,
  };
}

/** Exactly the fields that change a run's result; its key is their hash. */
export interface RunInputs {
  format: number;
  checkpoint: { pretrainKey: string; epoch: number };
  /** The test side of the data (the train side is in the checkpoint key). */
  dataset: Record<string, unknown>;
  method: string;
  /** Target sparsity (methods that prune), else absent. */
  sparsity?: number;
  /** The method's canonical description of its full parameters. */
  params: Record<string, unknown>;
  /**
   * The retraining after the method (absent when it does not retrain), whether the mask is held, and (structured
   * methods only, so that other runs' keys are unchanged) whether the smaller, surgered model is trained instead.
   */
  retrain?: RetrainParams & { masked: boolean; surgered?: true };
  /** Matched comparisons: the keys of the runs whose achieved sparsity / consumed samples this run takes. */
  match?: { sparsity?: string; samples?: string };
  inference: { repeats: number; batchSize: number };
}

export interface RunPlan {
  key: string;
  /** The method's name in the config (a variant's own name); not part of the key. */
  label: string;
  /** The name of the config's model it runs on (the model itself is in the checkpoint key). */
  model: string;
  method: string;
  /** The method's full parameters (custom schedules keep their functions: a notebook's run needs them). */
  params: Record<string, unknown>;
  seed: number;
  /** Pre-training epochs of the checkpoint the run starts from (configs and records call them budgets). */
  budget: number;
  /**
   * The method's target: a sparsity for a weight-mask method, a FLOP (or group) reduction for a structured one; null
   * for a method that does not prune. Configs, run keys and records call both `sparsity`.
   */
  sparsity: number | null;
  pretrainKey: string;
  inputs: RunInputs;
  dataset: DatasetSpec;
  /** The content the data files had when planned (train side, in the checkpoint key; test side, in this key). */
  datasetDigest: { train: string; test: string };
  /** Runs whose records this one needs first (matched comparisons). */
  dependsOn: string[];
}

/** Only what the test split depends on (the files' content included); the train side is in the checkpoint key. */
function testSideDataset(spec: DatasetSpec): Record<string, unknown> {
  const dataset = canonicalDataset(spec) as DatasetSpec & Record<string, unknown>;
  const testSide: Record<string, unknown> = { name: dataset.name, limitTest: dataset.limitTest, digest: datasetDigest(dataset).test };
  for (const field of getDataset(spec.name).testOnly) testSide[field] = dataset[field];
  return testSide;
}

/** Exactly what changes the result of `entry` at (seed's checkpoint after `epochs`, target): its run key hashes this. */
export function runInputs(
  config: ExperimentConfig,
  entry: MethodEntry,
  pretrainKey: string,
  epochs: number,
  target: number | null,
  testSide: Record<string, unknown> = testSideDataset(config.dataset as DatasetSpec),
  match?: RunInputs["match"],
): RunInputs {
  const method = getMethod(entry.method);
  const mode = method.retrain(entry.params);
  return {
    format: RECORD_FORMAT,
    checkpoint: { pretrainKey, epoch: epochs },
    dataset: testSide,
    method: entry.method,
    sparsity: target ?? undefined,
    params: describeParams(method, entry.params),
    retrain:
      mode === "none"
        ? undefined
        : { ...config.retrain, ...entry.retrain, masked: mode === "masked", ...(mode === "surgered" ? { surgered: true as const } : {}) },
    match,
    inference: { ...config.inference },
  };
}

/** Every run the config asks for, sorted by key (a stable order, which sharding slices). */
export function planRuns(config: ExperimentConfig): RunPlan[] {
  const dataset = canonicalDataset(config.dataset as DatasetSpec);
  const testSide = testSideDataset(dataset); // the data files are read (or their digests looked up) once per plan
  const runs: RunPlan[] = [];
  const keyOf = new Map<string, string>(); // entry name/seed/budget/sparsity → key, for matched entries
  const id = (model: string, name: string, seed: number, budget: number, sparsity: number | null) => JSON.stringify([model, name, seed, budget, sparsity]);
  // Entries without `match` first: a matched run's key includes the key of the run it matches.
  const ordered = [...config.methods.filter((m) => !m.match), ...config.methods.filter((m) => m.match)];
  for (const model of modelsOf(config))
    for (const seed of config.seeds) {
      const pretrain = pretrainInputs(config, seed, model);
      const pretrainKey = hashKey(pretrain);
      const datasetDigest = { train: pretrain.dataset.digest as string, test: testSide.digest as string };
      for (const entry of ordered) {
        for (const budget of budgetsOf(config, entry)) {
          for (const sparsity of sparsitiesOf(config, entry)) {
            let match: RunInputs["match"];
            if (entry.match) {
              const other = (name: string | undefined) => {
                if (name === undefined) return undefined;
                const target = config.methods.find((m) => m.name === name) as MethodEntry;
                return keyOf.get(id(model.name, name, seed, budget, entry.match?.sparsity ? sparsity : sparsitiesOf(config, target)[0]));
              };
              match = { sparsity: other(entry.match.sparsity), samples: other(entry.match.samples) };
            }
            const inputs = runInputs(config, entry, pretrainKey, budget, sparsity, testSide, match);
            const key = hashKey(inputs);
            keyOf.set(id(model.name, entry.name, seed, budget, sparsity), key);
            const dependsOn = [match?.sparsity, match?.samples].filter((k): k is string => k !== undefined);
            runs.push({
              key,
              label: entry.name,
              model: model.name,
              method: entry.method,
              params: entry.params,
              seed,
              budget,
              sparsity,
              pretrainKey,
              inputs,
              dataset,
              datasetDigest,
              dependsOn,
            });
          }
        }
      }
    }
  const byKey = new Map<string, RunPlan>();
  for (const r of runs) if (!byKey.has(r.key)) byKey.set(r.key, r); // two variants with identical parameters share one run
  return [...byKey.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** The pre-training each seed needs, up to the highest budget among `runs`. */
export function planPretraining(config: ExperimentConfig, runs: RunPlan[]): PretrainPlan[] {
  const out = new Map<string, PretrainPlan>();
  for (const run of runs) {
    const existing = out.get(run.pretrainKey);
    if (existing) existing.epochs = Math.max(existing.epochs, run.budget);
    else {
      const model = modelsOf(config).find((m) => m.name === run.model);
      out.set(run.pretrainKey, { key: run.pretrainKey, inputs: pretrainInputs(config, run.seed, model), epochs: run.budget, dataset: run.dataset });
    }
  }
  return [...out.values()];
}

export interface Shard {
  index: number;
  count: number;
}

/** "i/n" with 1 ≤ i ≤ n. */
export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) throw new Error(`--shard: expected i/n with 1 ≤ i ≤ n (e.g. 1/2), got ${JSON.stringify(text)}`);
  return { index, count };
}

/**
 * Shard i/n of the key-sorted run list: the runs without dependencies at positions p with p mod n = i − 1, and
 * every run that depends on one of them (a matched run goes where the run it matches goes).
 */
export function shardRuns<T extends { key: string; dependsOn?: string[] }>(sortedRuns: T[], shard?: Shard): T[] {
  if (!shard || shard.count === 1) return sortedRuns;
  const roots = sortedRuns.filter((r) => !r.dependsOn?.length);
  const mine = new Set(roots.filter((_, p) => p % shard.count === shard.index - 1).map((r) => r.key));
  return sortedRuns.filter((r) => mine.has(r.key) || (r.dependsOn ?? []).some((k) => mine.has(k)));
}
