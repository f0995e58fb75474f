import { Command } from "commander";
import * as fs from "fs";
import * as path from "path";
import { PRESET_NAMES, dataDirFromFlag, displayPath, resolvePreset } from "../paths";
import { countingBar } from "./commands";
import { positiveInteger } from "./flags";
import { loadConfig } from "./config";
import { formatMergeReport, mergeDataDirs } from "./merge";
import { planRuns } from "./plan";
import { defaultCli, slurmScripts, submitSlurm, writeSlurmScripts } from "./slurm";

const PRESET_HELP = `${PRESET_NAMES.join(" | ")} | path of a JSON config (on a file system the compute nodes share)`;

export function registerClusterCommands(program: Command): void {
  program
    .command("merge")
    .description(
      "merge data folders (e.g. shards computed apart) into one: every record and checkpoint verified, never overwriting a different record of the same key",
    )
    .argument("<sources...>", "data folders to merge from (each with runs/ and/or checkpoints/)")
    .requiredOption("--into <dir>", "the data folder to merge into (created if needed)")
    .action((sources: string[], opts: { into: string }) => {
      const into = path.resolve(opts.into);
      const progress = countingBar("merge {bar} {value}/{total} files");
      let report;
      try {
        report = mergeDataDirs(
          sources.map((s) => path.resolve(s)),
          into,
          (p) => progress.update(p.done, p.total),
        );
      } finally {
        progress.stop();
      }
      for (const c of report.conflicts) console.error(`fwprune: conflict: ${c}`);
      for (const bad of report.invalid) console.error(`fwprune: not copied (failed verification): ${bad}`);
      console.log(formatMergeReport(report, displayPath(into)));
      if (report.conflicts.length || report.invalid.length) process.exitCode = 1;
    });

  program
    .command("slurm")
    .description("write (and with --submit, submit) a Slurm job array running a sweep's shards, and a report job after it")
    .requiredOption("--preset <name|file>", PRESET_HELP)
    .option("--shards <n>", "array tasks, one shard each (default: 4, or fewer when the config has fewer independent runs)", positiveInteger("--shards", 1))
    .option(
      "--data-dir <dir>",
      "the data folder on a shared file system: all tasks write there (their locks keep them apart), or, with --task-dirs, the report job merges into it (default: as for sweep)",
    )
    .option("--task-dirs <dir>", "give each task its own data folder, <dir>/shard-<i>, merged into --data-dir by the report job")
    .option("--cpus-per-task <n>", "CPUs per task; each task runs one sweep worker per CPU", positiveInteger("--cpus-per-task", 1), 2)
    .option("--partition <name>", "Slurm partition (default: the cluster's)")
    .option("--time <limit>", "time limit per task, as sbatch takes it (e.g. 2:00:00)")
    .option("--mem <size>", "memory per task, as sbatch takes it (e.g. 4G)")
    .option("--script-dir <dir>", "where the scripts and the jobs' logs go (default: <data-dir>/slurm)")
    .option("--submit", "submit with sbatch and print the job ids (default: write the scripts and print them)")
    .action(
      (opts: {
        preset: string;
        shards?: number;
        dataDir?: string;
        taskDirs?: string;
        cpusPerTask: number;
        partition?: string;
        time?: string;
        mem?: string;
        scriptDir?: string;
        submit?: boolean;
      }) => {
        const config = loadConfig(opts.preset);
        const independent = planRuns(config).filter((r) => r.dependsOn.length === 0).length;
        if (opts.shards !== undefined && opts.shards > independent) {
          throw new Error(
            `--shards: ${config.name} has ${independent} independent runs (matched runs go with the run they match); expected at most ${independent}, got ${opts.shards}`,
          );
        }
        const cli = defaultCli();
        if (!fs.existsSync(cli)) throw new Error(`${cli} does not exist: build fwprune first (npm run build); the tasks run it`);
        const dataDir = dataDirFromFlag(opts.dataDir);
        const taskDirs = opts.taskDirs === undefined ? undefined : path.resolve(opts.taskDirs);
        const scriptDir = opts.scriptDir === undefined ? path.join(dataDir, "slurm") : path.resolve(opts.scriptDir);
        const shards = opts.shards ?? Math.min(4, independent);
        const scripts = slurmScripts({
          preset: resolvePreset(opts.preset),
          name: config.name,
          shards,
          dataDir,
          taskDirs,
          scriptDir,
          cpusPerTask: opts.cpusPerTask,
          partition: opts.partition,
          time: opts.time,
          mem: opts.mem,
        });
        writeSlurmScripts(scripts);
        if (!opts.submit) {
          console.log(`# ${displayPath(scripts.arrayFile)}\n${scripts.array}\n# ${displayPath(scripts.reportFile)}\n${scripts.report}`);
          console.log(`# submit with:\narray=$(sbatch --parsable ${scripts.arrayFile})\nsbatch --dependency=afterany:\${array%%;*} ${scripts.reportFile}`);
          return;
        }
        const { arrayJob, reportJob } = submitSlurm(scripts);
        console.log(`array job ${arrayJob}: ${shards} tasks (${scripts.arrayFile})`);
        console.log(`report job ${reportJob}: after the array ends (${scripts.reportFile})`);
        console.log(`logs in ${scriptDir}; watch with: squeue -j ${arrayJob},${reportJob}`);
      },
    );
}
