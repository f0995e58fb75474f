#!/usr/bin/env node
import { Command } from "commander";

// commander: a well-kept, typed argument parser with generated --help for every subcommand.
const program = new Command();
program
  .name("fwprune")
  .description("Projection-free CNN pruning via Frank-Wolfe with momentum: train, prune, sweep, report.")
  .showHelpAfterError();

export { program };

if (require.main === module) {
  program.parseAsync(process.argv).catch((err: unknown) => {
    console.error(`fwprune: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
