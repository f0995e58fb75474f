import { ExperimentConfig, sparsitiesOf, validateConfig } from "./config";
import { modelsOf } from "./config-model";
import { RunRecord } from "./store";
import { SweepOptions, sweep } from "./sweep";

/** Which run of a config `runOne` computes: a method (by its name in the config), a budget, a seed, a sparsity. */
export interface RunSelection {
  /** The model, by name, of a config that lists several (default: its first). */
  model?: string;
  method: string;
  budget: number;
  seed?: number;
  sparsity?: number;
}

/**
 * One run (pre-training its checkpoint first if needed), in this process, through the same cache as sweeps: for a
 * notebook exploring one checkpoint. Defaults: the config's first seed and first sparsity.
 */
export async function runOne(
  configInput: ExperimentConfig | unknown,
  selection: RunSelection,
  opts: Omit<SweepOptions, "workers" | "shard"> = {},
): Promise<RunRecord> {
  const config = validateConfig(configInput);
  const entry = config.methods.find((m) => m.name === selection.method);
  if (!entry)
    throw new Error(`runOne: method ${JSON.stringify(selection.method)} is not in the config's methods (${config.methods.map((m) => m.name).join(", ")})`);
  const models = modelsOf(config);
  const model = selection.model === undefined ? models[0] : models.find((m) => m.name === selection.model);
  if (!model)
    throw new Error(`--model ${JSON.stringify(selection.model)}: the config has no such model; expected one of ${models.map((m) => m.name).join(", ")}`);
  const seed = selection.seed ?? config.seeds[0];
  const sparsity = selection.sparsity ?? sparsitiesOf(config, entry)[0] ?? undefined;
  const matchedNames = new Set(Object.values(entry.match ?? {}));
  const matched = config.methods.filter((m) => matchedNames.has(m.name)).map((m) => ({ ...m, budgets: undefined }));
  const single = validateConfig(
    {
      ...config,
      model,
      budgets: [selection.budget],
      seeds: [seed],
      methods: [{ ...entry, budgets: undefined, sparsity: entry.match?.sparsity ? undefined : sparsity }, ...matched],
    },
    "runOne config",
  );
  const result = await sweep(single, { ...opts, workers: 0 });
  return result.records.find((r) => r.label === entry.name && (r.sparsityTarget ?? undefined) === sparsity) as RunRecord;
}
