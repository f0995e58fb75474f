import { Command } from "commander";
import * as fs from "fs";
import * as os from "os";
import { datasetNames, getDataset } from "../datasets";
import { claimsByModel } from "../analysis/architectures";
import { setKernelThreads, THREADS_HELP, threadsFlag } from "../kernels";
import { compareAgainst, comparisonRows } from "../analysis/claims";
import { showTable } from "../report/display";
import { aggregateCsv, aggregateRecords, formatAggregate } from "../report/frame";
import { loadConfig } from "./config";
import { modelsOf } from "./config-model";
import { parseShard, planRuns, shardRuns } from "./plan";
import { dataDirFromFlag, displayPath, fileInside } from "../paths";
import { describeParams, getMethod, methodNames, parseParams } from "../prune/method";
import { SHIPPED_DIR } from "./shipped";
import { RunRecord, readRecord, writeShipped } from "./store";
import { runOne } from "./run-one";
import { SweepProgress, sweep } from "./sweep";
import { DATA_DIR_HELP, PRESET_HELP, RunSelectionFlags, positiveInteger, runSelectionOptions, selectRun } from "./flags";

/** cli-progress on a terminal; one line per event otherwise (logs, CI, tests). */
export function progressReporter(enabled: boolean): { update: (p: SweepProgress) => void; stop: () => void } {
  if (!enabled) return { update: () => {}, stop: () => {} };
  if (!process.stderr.isTTY) {
    return { update: (p) => p.event && console.error(`[${p.done}/${p.total}] ${p.event}`), stop: () => {} };
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const cliProgress = require("cli-progress") as typeof import("cli-progress");
  const bar = new cliProgress.SingleBar(
    {
      format: "{bar} {value}/{total} steps | runs {runs} | ETA {eta_formatted} | {current}",
      stream: process.stderr,
      hideCursor: true,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(p) {
      const payload = {
        runs: `${p.runsDone}/${p.runsTotal}`,
        current:
          p.current
            .filter((c) => c !== "idle")
            .join(" ; ")
            .slice(0, 100) || "-",
      };
      if (!started) {
        bar.start(p.total, p.done, payload);
        started = true;
      } else {
        bar.setTotal(p.total);
        bar.update(p.done, payload);
      }
      if (p.event && /corrupt|FAILED|failed|waiting/.test(p.event)) process.stderr.write(`\n${p.event}\n`);
    },
    stop: () => started && bar.stop(),
  };
}

/** A plain counting bar (cli-progress) on a terminal, e.g. "{bar} {value}/{total} files"; nothing otherwise. */
export function countingBar(format: string): { update: (done: number, total: number) => void; stop: () => void } {
  if (!process.stderr.isTTY) return { update: () => {}, stop: () => {} };
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const cliProgress = require("cli-progress") as typeof import("cli-progress");
  const bar = new cliProgress.SingleBar({ format, stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic);
  let state: "new" | "running" | "stopped" = "new";
  const stop = () => {
    if (state === "running") bar.stop();
    state = "stopped";
  };
  return {
    update(done, total) {
      if (state === "stopped") return;
      if (state === "new") bar.start(total, done);
      else bar.update(done);
      state = "running";
      if (done >= total) stop();
    },
    stop,
  };
}

export function registerExperimentCommands(program: Command): void {
  program
    .command("methods")
    .description("list the methods a config can name, with their parameters and defaults")
    .action(() => {
      for (const name of methodNames()) {
        const method = getMethod(name);
        const defaults = parseParams(method);
        const params = describeParams(method, defaults);
        const target = method.retrain(defaults) === "surgered" ? " (prunes to the target FLOP reduction)" : " (prunes to the target sparsity)";
        console.log(`${name}${method.prune ? target : ""}: ${method.summary}`);
        for (const [key, value] of Object.entries(params)) console.log(`    ${key}: ${JSON.stringify(value)}`);
      }
    });

  program
    .command("datasets")
    .description('list the datasets a config can name (its "dataset" field), with their fields and defaults')
    .action(() => {
      for (const name of datasetNames()) {
        const kind = getDataset(name);
        console.log(`${name}: ${kind.summary}`);
        const shape = kind.schema.shape as Record<string, { isOptional(): boolean }>;
        for (const [key, field] of Object.entries(shape)) {
          if (key === "name") continue;
          const fallback = (kind.defaults as Record<string, unknown>)[key];
          console.log(`    ${key}${field.isOptional() ? (fallback === undefined ? " (optional)" : `: ${JSON.stringify(fallback)}`) : " (required)"}`);
        }
      }
    });

  program
    .command("sweep")
    .description("run every (seed, budget, method, sparsity) run of a config that is not in the cache yet")
    .requiredOption("--preset <name|file>", PRESET_HELP)
    .option("--workers <n>", "worker processes (0 = in this process)", positiveInteger("--workers"), os.cpus().length)
    .option("--shard <i/n>", "run only slice i of n of the key-sorted run list (merge the shards' data folders with fwprune merge)")
    .option("--model <name>", "only the runs of this model, of a config that lists several (e.g. one architecture at a time)")
    .option("--data-dir <dir>", DATA_DIR_HELP)
    .option("--retry-failed", "recompute runs recorded as failed")
    .option("--no-progress", "no progress output")
    .option("--csv <file>", "also write the aggregated table as CSV")
    .action(
      async (opts: {
        preset: string;
        workers: number;
        shard?: string;
        model?: string;
        dataDir?: string;
        retryFailed?: boolean;
        progress: boolean;
        csv?: string;
      }) => {
        const config = loadConfig(opts.preset);
        const dataDir = dataDirFromFlag(opts.dataDir);
        const shard = opts.shard === undefined ? undefined : parseShard(opts.shard);
        const reporter = progressReporter(opts.progress);
        let result;
        try {
          result = await sweep(config, {
            dataDir,
            workers: opts.workers,
            shard,
            model: opts.model,
            retryFailed: opts.retryFailed,
            onProgress: reporter.update,
          });
        } finally {
          reporter.stop();
        }
        for (const reason of result.corrupt) console.error(`fwprune: recomputed a corrupt record: ${reason}`);
        console.log(formatAggregate(aggregateRecords(result.records)));
        console.log(
          `sweep ${config.name}${shard ? ` shard ${shard.index}/${shard.count}` : ""}: ${result.runs} runs: computed ${result.computed}, cached ${result.cached}, ` +
            `failed ${result.failed}, corrupt ${result.corrupt.length}; ${result.seconds.toFixed(1)} s with ${opts.workers} worker(s); data in ${displayPath(dataDir)}`,
        );
        for (const r of result.records) if (r.status === "failed") console.error(`failed: ${r.label} budget ${r.budget} seed ${r.seed}: ${r.reason}`);
        if (opts.csv) aggregateCsv(result.records, opts.csv);
        if (result.failed > 0) {
          console.error(`fwprune: ${result.failed} of ${result.runs} runs failed (listed above); fwprune sweep --retry-failed computes them again`);
          process.exitCode = 1;
        }
      },
    );

  program
    .command("results")
    .description("print the aggregated table (mean, std, 95% CI per method × budget × sparsity) of a config's cached runs")
    .requiredOption("--preset <name|file>", PRESET_HELP)
    .option("--data-dir <dir>", DATA_DIR_HELP)
    .option("--shard <i/n>", "only this shard's runs")
    .option("--csv <file>", "write the aggregated table as CSV")
    .option("--list-missing", "list every missing run (default: the first 20)")
    .option("--fail-if-missing", "exit with status 1 when a run is missing, failed, or its record corrupt (scripts: the Slurm report job)")
    .option(
      "--against <name>",
      "also print every other method (or named variant) of the config minus this one, paired by checkpoint: accuracy and sparsity differences per budget and pooled, 95% intervals, verdicts",
    )
    .action((opts: { preset: string; dataDir?: string; shard?: string; csv?: string; listMissing?: boolean; failIfMissing?: boolean; against?: string }) => {
      const config = loadConfig(opts.preset);
      if (opts.against !== undefined && !config.methods.some((m) => m.name === opts.against)) {
        throw new Error(
          `--against: ${JSON.stringify(opts.against)} is not a method of config "${config.name}"; expected one of ${config.methods.map((m) => m.name).join(", ")}`,
        );
      }
      const dataDir = dataDirFromFlag(opts.dataDir);
      const methodOrder = new Map(config.methods.map((m, i) => [m.name, i]));
      const modelOrder = new Map(modelsOf(config).map((m, i) => [m.name, i]));
      const runs = shardRuns(planRuns(config), opts.shard === undefined ? undefined : parseShard(opts.shard)).sort(
        (a, b) =>
          (modelOrder.get(a.model) ?? 0) - (modelOrder.get(b.model) ?? 0) ||
          (methodOrder.get(a.label) ?? 0) - (methodOrder.get(b.label) ?? 0) ||
          a.budget - b.budget ||
          a.seed - b.seed,
      );
      const records: RunRecord[] = [];
      const missing: string[] = [];
      for (const run of runs) {
        const r = readRecord(dataDir, run.key);
        if (r.kind === "ok") records.push({ ...r.record, label: run.label, model: run.model });
        else {
          const what = `${modelsOf(config).length > 1 ? `${run.model}: ` : ""}${run.label} budget ${run.budget} seed ${run.seed}${run.sparsity === null ? "" : ` s=${run.sparsity}`} (run ${run.key})`;
          missing.push(r.kind === "corrupt" ? `${what}: corrupt record, ignored (a sweep recomputes it): ${r.reason}` : what);
        }
      }
      const failed = records.filter((r) => r.status === "failed");
      console.log(formatAggregate(aggregateRecords(records)));
      // A config of several architectures: the paper's claims on each, and pooled over them.
      if (modelsOf(config).length > 1) {
        for (const { model, rows } of claimsByModel(records)) {
          console.log("");
          showTable(
            rows.map(({ claim, measured, verdict }) => ({ claim, measured, verdict })),
            {
              title: `the paper's claims on ${model === "pooled" ? "all architectures, pooled" : model} (fw-momentum against each; paired 95% intervals, pooled over budgets)`,
              maxRows: Infinity,
            },
          );
        }
      }
      if (opts.against !== undefined) {
        const others = config.methods.map((m) => m.name).filter((name) => name !== opts.against);
        console.log("");
        showTable(comparisonRows(compareAgainst(records, opts.against, others)), {
          title: `each method − ${opts.against}, paired by checkpoint (seed, budget); pooled: per seed over budgets, then over seeds; "holds": more accurate / sparser (95% interval above 0)`,
          maxRows: Infinity,
        });
        console.log("");
      }
      console.log(
        `${records.length} of ${runs.length} runs of ${config.name} found in ${displayPath(dataDir)}${failed.length ? ` (${failed.length} of them failed)` : ""}${missing.length ? `; ${missing.length} missing: run fwprune sweep --preset ${opts.preset}${opts.dataDir === undefined ? "" : ` --data-dir ${opts.dataDir}`}` : ""}`,
      );
      for (const r of failed.slice(0, opts.listMissing ? undefined : 20)) console.log(`  failed: ${r.label} budget ${r.budget} seed ${r.seed}: ${r.reason}`);
      const shown = opts.listMissing ? missing : missing.slice(0, 20);
      for (const m of shown) console.log(`  missing: ${m}`);
      if (shown.length < missing.length) console.log(`  … and ${missing.length - shown.length} more (--list-missing lists them all)`);
      if (opts.csv) {
        aggregateCsv(records, opts.csv);
        console.log(`wrote ${opts.csv}`);
      }
      if (opts.failIfMissing && (missing.length || failed.length)) process.exitCode = 1;
    });

  program
    .command("ship")
    .description("write a config's records (as far as they exist) to data/shipped/<name>.jsonl.gz, which every clone reads as cached")
    .requiredOption("--preset <name|file>", PRESET_HELP)
    .option("--data-dir <dir>", DATA_DIR_HELP)
    .action((opts: { preset: string; dataDir?: string }) => {
      const config = loadConfig(opts.preset);
      const dataDir = dataDirFromFlag(opts.dataDir);
      const runs = planRuns(config);
      const records = runs.map((run) => readRecord(dataDir, run.key)).flatMap((r) => (r.kind === "ok" ? [r.record] : []));
      const file = fileInside(SHIPPED_DIR, config.name, ".jsonl.gz");
      writeShipped(file, records);
      console.log(`wrote ${records.length} of ${runs.length} records of ${config.name} to ${displayPath(file)} (${fs.statSync(file).size} bytes)`);
    });

  runSelectionOptions(
    program.command("run").description("compute (or fetch from the cache) one run of a config, in this process, and print its record as JSON"),
  )
    .option("--threads <n>", THREADS_HELP, threadsFlag)
    .action(async (opts: RunSelectionFlags & { threads?: number }) => {
      if (opts.threads !== undefined) setKernelThreads(opts.threads);
      const config = loadConfig(opts.preset);
      const plan = selectRun(config, opts);
      const record = await runOne(
        config,
        { model: plan.model, method: opts.method, budget: plan.budget, seed: plan.seed, sparsity: plan.sparsity ?? undefined },
        { dataDir: dataDirFromFlag(opts.dataDir) },
      );
      const { config: _config, history: _history, ...rest } = record;
      console.log(JSON.stringify(rest, null, 1));
    });
}
