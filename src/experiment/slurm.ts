import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { writeFileAtomic } from "../fsutil";
import { REPO_ROOT } from "../paths";

/**
 * A sweep as a Slurm job array: task i of N runs `fwprune sweep --shard i/N` (shards are 1-based, as
 * SLURM_ARRAY_TASK_ID is with --array=1-N) with one worker per allocated CPU, and a report job, submitted with
 * --dependency=afterany on the array, merges the tasks' folders (when each task has its own) and prints the results,
 * failing when a run is missing. Resubmitting the same scripts computes only what is missing: records are written
 * atomically and the locks of a killed task go stale.
 */
export interface SlurmJobOptions {
  /** A preset name or the absolute path of a config file (tasks read it, so it must be on a shared file system). */
  preset: string;
  /** The config's name (job names). */
  name: string;
  shards: number;
  /** Absolute: the data folder every task shares, or (with taskDirs) the one the report job merges into. */
  dataDir: string;
  /** Absolute: when given, task i writes to <taskDirs>/shard-i instead of dataDir. */
  taskDirs?: string;
  /** Absolute: where the scripts and the jobs' logs go. */
  scriptDir: string;
  cpusPerTask: number;
  partition?: string;
  time?: string;
  mem?: string;
  /** Absolute paths of node and of the built CLI: tasks run whatever PATH the compute nodes have. */
  node?: string;
  cli?: string;
}

export interface SlurmScripts {
  jobName: string;
  arrayFile: string;
  reportFile: string;
  array: string;
  report: string;
}

/** A word for bash, quoted only when it needs to be. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export function defaultCli(): string {
  return path.join(REPO_ROOT, "dist", "cli.js");
}

/** A job name Slurm and file names both accept. */
const jobNameOf = (name: string) => `fwprune-${name.replace(/[^A-Za-z0-9_.-]+/g, "-")}`;

export function slurmScripts(opts: SlurmJobOptions): SlurmScripts {
  const node = opts.node ?? process.execPath;
  const cli = opts.cli ?? defaultCli();
  const jobName = jobNameOf(opts.name);
  const arrayFile = path.join(opts.scriptDir, `${jobName}.array.sbatch`);
  const reportFile = path.join(opts.scriptDir, `${jobName}.report.sbatch`);
  const fwprune = `${shellQuote(node)} ${shellQuote(cli)}`;
  const common = [
    ...(opts.partition ? [`#SBATCH --partition=${opts.partition}`] : []),
    ...(opts.time ? [`#SBATCH --time=${opts.time}`] : []),
  ];
  const resubmit = `sbatch ${shellQuote(arrayFile)}, then sbatch --dependency=afterany:<its job id> ${shellQuote(reportFile)} (or the same fwprune slurm command with --submit)`;
  const shardDir = (i: string) => `${shellQuote(opts.taskDirs as string)}/shard-${i}`;
  const array = [
    "#!/bin/bash",
    `# fwprune sweep of ${opts.name} as a Slurm job array: task i computes shard i/${opts.shards}.`,
    `# Written by fwprune slurm. A task that dies leaves nothing corrupt; to compute what is missing, submit again:`,
    `#   ${resubmit}`,
    `#SBATCH --job-name=${jobName}`,
    `#SBATCH --array=1-${opts.shards}`,
    `#SBATCH --cpus-per-task=${opts.cpusPerTask}`,
    ...(opts.mem ? [`#SBATCH --mem=${opts.mem}`] : []),
    ...common,
    `#SBATCH --output=${opts.scriptDir}/%x-%A_%a.out`,
    "set -euo pipefail",
    'shard="${SLURM_ARRAY_TASK_ID:?submit this script with sbatch: it is a job array}"',
    `exec ${fwprune} sweep --preset ${shellQuote(opts.preset)} --shard "$shard/${opts.shards}" \\`,
    `  --workers "\${SLURM_CPUS_PER_TASK:-${opts.cpusPerTask}}" --data-dir ${opts.taskDirs ? shardDir("$shard") : shellQuote(opts.dataDir)}`,
    "",
  ].join("\n");
  const merge = opts.taskDirs
    ? [
        "# Merge the tasks' folders (each record and checkpoint verified; conflicts reported, never overwritten).",
        "sources=()",
        `for i in $(seq 1 ${opts.shards}); do dir=${shardDir("$i")}; if [ -d "$dir" ]; then sources+=("$dir"); else echo "no folder $dir: task $i never started" >&2; fi; done`,
        `if [ \${#sources[@]} -gt 0 ]; then ${fwprune} merge "\${sources[@]}" --into ${shellQuote(opts.dataDir)} || status=1; fi`,
      ]
    : [];
  const report = [
    "#!/bin/bash",
    `# fwprune: report on the ${opts.name} job array (submitted with --dependency=afterany on it). Fails when a run is`,
    "# missing (a task died or ran out of time); to compute what is missing, submit the array again:",
    `#   ${resubmit}`,
    `#SBATCH --job-name=${jobName}-report`,
    "#SBATCH --cpus-per-task=1",
    ...common,
    `#SBATCH --output=${opts.scriptDir}/%x-%j.out`,
    "set -uo pipefail",
    "status=0",
    ...merge,
    `${fwprune} results --preset ${shellQuote(opts.preset)} --data-dir ${shellQuote(opts.dataDir)} --fail-if-missing || status=1`,
    `if [ "$status" -ne 0 ]; then echo "fwprune: incomplete; to compute what is missing: ${resubmit.replace(/["$`\\]/g, "\\$&")}" >&2; fi`,
    'exit "$status"',
    "",
  ].join("\n");
  return { jobName, arrayFile, reportFile, array, report };
}

export function writeSlurmScripts(scripts: SlurmScripts): void {
  for (const [file, text] of [[scripts.arrayFile, scripts.array], [scripts.reportFile, scripts.report]]) {
    writeFileAtomic(file, text);
    fs.chmodSync(file, 0o755);
  }
}

/** Submit the array, then the report job after it (afterany); returns their job ids. */
export function submitSlurm(scripts: SlurmScripts, sbatch = "sbatch"): { arrayJob: string; reportJob: string } {
  const run = (args: string[]) => {
    try {
      // --parsable prints "<id>" or "<id>;<cluster>".
      return execFileSync(sbatch, ["--parsable", ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim().split(";")[0];
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      if (e.code === "ENOENT") throw new Error(`${sbatch} not found on PATH: run fwprune slurm --submit where Slurm's commands are (a login node), or submit the written scripts yourself`);
      throw new Error(`${sbatch} ${args.join(" ")} failed: ${(e.stderr ?? e.message).trim()}`);
    }
  };
  const arrayJob = run([scripts.arrayFile]);
  if (!/^\d+$/.test(arrayJob)) throw new Error(`${sbatch} printed ${JSON.stringify(arrayJob)}; expected a job id`);
  const reportJob = run([`--dependency=afterany:${arrayJob}`, scripts.reportFile]);
  return { arrayJob, reportJob };
}
