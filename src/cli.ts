#!/usr/bin/env node
import { Command } from "commander";
import type { BackendName } from "./backend";
import { formatBench, runBench } from "./bench";
import { registerClusterCommands } from "./experiment/cluster-commands";
import { registerExperimentCommands } from "./experiment/commands";
import { registerReproduceCommand } from "./reproduce";

// commander: a well-kept, typed argument parser with generated --help for every subcommand.
const program = new Command();
program
  .name("fwprune")
  .description("Projection-free CNN pruning via Frank-Wolfe with momentum: train, prune, sweep, report.")
  .showHelpAfterError();

program
  .command("bench")
  .description("time training (batch 64) and inference (batch 1000) of the paper CNN on this machine")
  .option("--json", "print exactly one JSON line")
  .option("--backend <name>", "tensorflow | wasm | cpu (default: the fastest available)")
  .option("--samples <n>", "samples to time, at least 2000", "4096")
  .option("--profile", "also time each kernel of a training step")
  .action(async (opts: { json?: boolean; backend?: BackendName; samples: string; profile?: boolean }) => {
    const report = await runBench({ backend: opts.backend, samples: Number(opts.samples), profile: opts.profile });
    console.log(opts.json ? JSON.stringify(report.profile ? { ...report.result, profile: report.profile } : report.result) : formatBench(report));
  });

registerExperimentCommands(program);
registerClusterCommands(program);
registerReproduceCommand(program);

export { program };

if (require.main === module) {
  program.parseAsync(process.argv).catch((err: unknown) => {
    console.error(`fwprune: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
