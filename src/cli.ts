#!/usr/bin/env node
import { Command } from "commander";
import type { BackendName } from "./backend";
import { BenchModel, benchStructured, formatBench, formatStructuredBench, runBench } from "./bench";
import { registerClusterCommands } from "./experiment/cluster-commands";
import { registerExperimentCommands } from "./experiment/commands";
import { registerExportCommand } from "./experiment/export";
import { formatModelSparseBenchLine, formatSparseBenchLine, runModelSparseBench, runSparseBench } from "./bench-sparse";
import { formatBrowserBenchLine, registerDemoCommand, runBrowserBench } from "./demo/browser-bench";
import { describeError } from "./errors";
import { dataDirFromFlag } from "./paths";
import { registerPruneCommand } from "./prune-model";
import { registerReproduceCommand } from "./reproduce";
import { ZOO_MODELS, ZooModelName } from "./zoo";
import { setKernelThreads, THREADS_HELP, threadsFlag } from "./kernels";

// commander: a well-kept, typed argument parser with generated --help for every subcommand.
const program = new Command();
program.name("fwprune").description("Projection-free CNN pruning via Frank-Wolfe with momentum: train, prune, sweep, report.").showHelpAfterError();

program
  .command("bench")
  .description(
    "time training (batch 64) and inference (batch 1000) of the paper CNN (--zoo: of a reference architecture; --model: of your model.json) on this machine; --sparse: dense vs sparse inference; --browser: the same in headless Chromium, tfjs against the fwprune runtime; --structured: a filter-pruned model vs the dense one",
  )
  .option("--json", "print JSON: exactly one line (with --sparse, one line per sparsity × batch; with --browser, one per batch)")
  .option("--backend <name>", "tensorflow | wasm | cpu (default: the fastest available)")
  .option("--samples <n>", "samples to time, at least 2000", "4096")
  .option("--profile", "also time each kernel of a training step")
  .option("--threads <n>", THREADS_HELP, threadsFlag)
  .option("--model <path>", "instead of the paper CNN, time this TensorFlow.js layers model (model.json, as fwprune prune reads it)")
  .option("--zoo [name]", `instead of the paper CNN, time a reference architecture: ${ZOO_MODELS.join(" | ")} (default: each)`)
  .option(
    "--sparse",
    "instead: dense vs sparse inference of the pruned paper CNN (with --model: of your model, and the standalone runtime on its .fwsparse), side by side, one line per sparsity × batch",
  )
  .option(
    "--browser",
    "instead: the demo page's benchmark in headless Chromium: tfjs-wasm dense vs the fwprune runtime at sparsity 0.95, with the bytes each downloads",
  )
  .option("--sparsities <list>", "with --sparse: global magnitude sparsities", "0.9,0.95,0.98")
  .option("--batches <list>", "with --sparse or --browser: batch sizes", "1000,1")
  .option("--rounds <n>", "with --sparse or --browser: interleaved timing rounds (medians; default 15, --browser 9)")
  .option("--budget <epochs>", "with --sparse: the quick preset checkpoint's epoch", "2")
  .option("--data-dir <dir>", "with --sparse or --browser: where the quick preset's checkpoint (and the demo export) is cached (default: the data folder)")
  .option("--structured [reduction]", "instead: time the paper CNN cut to this FLOP reduction by L1 filter pruning beside the dense one (batch 1000 and 1)")
  .option("--repeats <n>", "with --structured: timed repeats per model (medians)", "9")
  .action(
    async (
      opts: {
        json?: boolean;
        backend?: BackendName;
        samples: string;
        profile?: boolean;
        zoo?: string | boolean;
        sparse?: boolean;
        browser?: boolean;
        sparsities: string;
        batches: string;
        rounds?: string;
        budget: string;
        dataDir?: string;
        structured?: string | boolean;
        repeats: string;
        model?: string;
        threads?: number;
      },
      command: Command,
    ) => {
      if (opts.model && (opts.browser || opts.structured !== undefined || opts.zoo !== undefined)) {
        const other = opts.browser ? "--browser" : opts.structured !== undefined ? "--structured" : "--zoo";
        throw new Error(
          `bench --model times your model's training and inference (with --sparse: dense against sparse); the demo page and structured surgery do not take an imported model here yet; drop ${other}`,
        );
      }
      const modes = [opts.sparse && "--sparse", opts.browser && "--browser", opts.structured !== undefined && "--structured"].filter(Boolean);
      if (modes.length > 1) throw new Error(`bench: ${modes.join(" and ")} are different benchmarks; give one`);
      // A flag of another benchmark than the one asked for would be silently ignored: refuse it instead.
      const mode = modes[0] || "the training/inference bench";
      const flagsOf: Record<string, string[]> = {
        "--sparse": ["sparsities", "batches", "rounds", "budget", "dataDir", "model"],
        "--browser": ["batches", "rounds", "dataDir"],
        "--structured": ["repeats"],
        "the training/inference bench": ["samples", "profile", "zoo", "model"],
      };
      for (const [owner, flags] of Object.entries(flagsOf)) {
        if (owner === mode) continue;
        const given = flags.find((f) => command.getOptionValueSource(f) === "cli" && !flagsOf[mode].includes(f));
        if (given) throw new Error(`bench: --${given.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())} belongs to ${owner}, not to ${mode}`);
      }
      if (opts.threads !== undefined) {
        if (opts.browser) throw new Error("bench: --threads does not apply to --browser (the page's tfjs and runtime run one thread)");
        setKernelThreads(opts.threads);
      }
      if (opts.structured !== undefined) {
        const reduction = opts.structured === true ? 0.5 : Number(opts.structured);
        if (typeof opts.structured === "string" && (opts.structured.trim() === "" || !Number.isFinite(reduction))) {
          throw new Error(`--structured: got ${JSON.stringify(opts.structured)}; expected a FLOP reduction in (0, 1), e.g. 0.5`);
        }
        const b = await benchStructured(reduction, { backend: opts.backend, repeats: Number(opts.repeats) });
        console.log(opts.json ? JSON.stringify(b) : formatStructuredBench(b));
        return;
      }
      const list = (flag: string, text: string) =>
        text.split(",").map((t) => {
          const n = Number(t);
          if (t.trim() === "" || !Number.isFinite(n)) throw new Error(`${flag}: expected comma-separated numbers, got ${JSON.stringify(text)}`);
          return n;
        });
      if (opts.browser) {
        if (opts.backend) throw new Error("bench: --backend does not apply to --browser (the page runs tfjs's wasm backend beside the fwprune runtime)");
        const lines = await runBrowserBench({
          batches: list("--batches", opts.batches),
          rounds: opts.rounds === undefined ? undefined : Number(opts.rounds),
          dataDir: dataDirFromFlag(opts.dataDir),
          onStatus: (m) => process.stderr.write(`fwprune bench: ${m}\n`),
        });
        for (const l of lines) console.log(opts.json ? JSON.stringify(l) : formatBrowserBenchLine(l));
        return;
      }
      if (opts.sparse && opts.model) {
        const given = ["budget", "dataDir"].find((f) => command.getOptionValueSource(f) === "cli");
        if (given)
          throw new Error(`bench: --${given === "dataDir" ? "data-dir" : given} is the quick preset checkpoint's; with --model the weights are your model's`);
        if (opts.backend) process.env.FWPRUNE_BACKEND = opts.backend;
        await runModelSparseBench({
          modelFile: opts.model,
          sparsities: list("--sparsities", opts.sparsities),
          batches: list("--batches", opts.batches),
          rounds: Number(opts.rounds ?? 15),
          onStatus: (m) => process.stderr.write(`fwprune bench: ${m}\n`),
          onLine: (l) => console.log(opts.json ? JSON.stringify(l) : formatModelSparseBenchLine(l)),
        });
        return;
      }
      if (opts.sparse) {
        if (opts.backend) process.env.FWPRUNE_BACKEND = opts.backend;
        await runSparseBench({
          sparsities: list("--sparsities", opts.sparsities),
          batches: list("--batches", opts.batches),
          rounds: Number(opts.rounds ?? 15),
          budget: Number(opts.budget),
          dataDir: dataDirFromFlag(opts.dataDir),
          onStatus: (m) => process.stderr.write(`fwprune bench: ${m}\n`),
          onLine: (l) => console.log(opts.json ? JSON.stringify(l) : formatSparseBenchLine(l)),
        });
        return;
      }
      if (typeof opts.zoo === "string" && !ZOO_MODELS.includes(opts.zoo as ZooModelName)) {
        throw new Error(`--zoo: got ${JSON.stringify(opts.zoo)}; expected one of ${ZOO_MODELS.join(", ")}`);
      }
      const models: BenchModel[] = opts.zoo === undefined ? ["paper-cnn"] : opts.zoo === true ? [...ZOO_MODELS] : [opts.zoo as ZooModelName];
      for (const model of models) {
        const report = await runBench({ backend: opts.backend, model, samples: Number(opts.samples), profile: opts.profile, modelFile: opts.model });
        console.log(opts.json ? JSON.stringify(report.profile ? { ...report.result, profile: report.profile } : report.result) : formatBench(report));
      }
    },
  );

registerExperimentCommands(program);
registerExportCommand(program);
registerPruneCommand(program);
registerClusterCommands(program);
registerReproduceCommand(program);
registerDemoCommand(program);

export { program };

if (require.main === module) {
  const fail = (err: unknown) => {
    console.error(`fwprune: ${describeError(err)}`);
    process.exit(1);
  };
  process.on("uncaughtException", fail);
  process.on("unhandledRejection", fail);
  program.parseAsync(process.argv).catch(fail);
}
