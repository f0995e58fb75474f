import { Command } from "commander";
import { PRESET_NAMES } from "../paths";
import { getMethod, methodNames } from "../prune/method";
import { ExperimentConfig } from "./config";
import { modelsOf } from "./config-model";
import { RunPlan, planRuns } from "./plan";

export const PRESET_HELP = `${PRESET_NAMES.join(" | ")} | path of a JSON config (deep-merged over the preset it names, or over defaults)`;
export const DATA_DIR_HELP = "where checkpoints, run records and locks live (default: $FWPRUNE_DATA_DIR from the repository root, else <repository>/data)";

/** A commander parser for an integer flag ≥ min, with an error naming the flag and the value. */
export function positiveInteger(flag: string, min = 0) {
  return (text: string) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min) throw new Error(`${flag}: expected an integer ≥ ${min}, got ${JSON.stringify(text)}`);
    return n;
  };
}

/** A commander parser for a fraction in [0, 1) (a sparsity, a FLOP reduction), with an error naming the flag and the value. */
export function fraction(flag: string) {
  return (text: string): number => {
    const n = Number(text);
    if (text.trim() === "" || !(n >= 0 && n < 1)) throw new Error(`${flag}: expected a number in [0, 1), got ${JSON.stringify(text)}`);
    return n;
  };
}

/** The flags that pick one run of a config (fwprune run, fwprune export). */
export interface RunSelectionFlags {
  preset: string;
  /** The model, by name, of a config that lists several (default: its first). */
  model?: string;
  method: string;
  budget: number;
  seed?: number;
  sparsity?: number;
  flopReduction?: number;
  dataDir?: string;
}

/** Add the run-selection flags to a command: --preset, --method, --budget, --seed, --sparsity | --flop-reduction, --data-dir. */
export function runSelectionOptions(command: Command): Command {
  return command
    .requiredOption("--preset <name|file>", PRESET_HELP)
    .requiredOption("--method <name>", `a method name of the config (${methodNames().join(", ")}, or a variant's name)`)
    .requiredOption("--budget <epochs>", "pre-training epochs of the checkpoint the run starts from", positiveInteger("--budget", 1))
    .option("--model <name>", "the model, of a config that lists several (default: its first)")
    .option("--seed <n>", "seed (default: the config's first)", positiveInteger("--seed"))
    .option("--sparsity <s>", "weight-level methods: the target fraction of prunable weights removed (default: the config's first)", fraction("--sparsity"))
    .option(
      "--flop-reduction <r>",
      "structured methods: the target fraction of multiply-adds removed (default: the config's first)",
      fraction("--flop-reduction"),
    )
    .option("--data-dir <dir>", DATA_DIR_HELP);
}

/**
 * The run of `config` the flags name, or an error naming the flag, the value and what the config has, before any
 * work. The record's `sparsityTarget` (a run key input) holds either target: `target` is that value.
 */
export function selectRun(config: ExperimentConfig, flags: Omit<RunSelectionFlags, "preset" | "dataDir">): RunPlan & { target?: number } {
  const models = modelsOf(config).map((m) => m.name);
  if (flags.model !== undefined && !models.includes(flags.model))
    throw new Error(`--model ${JSON.stringify(flags.model)}: the config has no such model; expected one of ${models.join(", ")}`);
  const plans = planRuns(config).filter((p) => p.model === (flags.model ?? models[0]));
  const runs = plans.filter((p) => p.label === flags.method);
  if (runs.length === 0)
    throw new Error(`--method: ${JSON.stringify(flags.method)} is not a method of ${config.name} (${[...new Set(plans.map((p) => p.label))].join(", ")})`);
  const structured = getMethod(runs[0].method).retrain(runs[0].params) === "surgered";
  if (structured && flags.sparsity !== undefined)
    throw new Error(`--sparsity is the target of weight-level methods; ${flags.method} is structured: give --flop-reduction instead`);
  if (!structured && flags.flopReduction !== undefined)
    throw new Error(`--flop-reduction is the target of structured methods; ${flags.method} is weight-level: give --sparsity instead`);
  const target = structured ? flags.flopReduction : flags.sparsity;
  const seed = flags.seed ?? config.seeds[0];
  const run = runs.find((p) => p.budget === flags.budget && p.seed === seed && (target === undefined || p.sparsity === target));
  if (!run) {
    const values = (f: (p: RunPlan) => unknown) => [...new Set(runs.map(f))].join(", ");
    const what = structured ? "FLOP reduction" : "sparsity";
    throw new Error(
      `${flags.method} of ${config.name} has no run at budget ${flags.budget}, seed ${seed}${target === undefined ? "" : `, ${what} ${target}`}; ` +
        `its runs have budgets ${values((p) => p.budget)}, seeds ${values((p) => p.seed)}, ${what} targets ${values((p) => p.sparsity ?? "none")}`,
    );
  }
  return { ...run, target };
}
