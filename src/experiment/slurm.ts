import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { writeFileAtomic } from "../fsutil";
import { REPO_ROOT, SAFE_NAME, SAFE_NAME_RULE } from "../paths";

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

/**
 * A word for bash, quoted only when it needs to be: '…' in general; $'…' (every character literal, control
 * characters escaped) when it holds a $, a backquote or a control character (a newline cannot end a line of the script).
 */
export function shellQuote(word: string): string {
  if (word.includes("\0")) throw new Error(`${JSON.stringify(word)}: a NUL character cannot reach a script`);
  if (/^[A-Za-z0-9_./:=@%+,-]+$/.test(word)) return word;
  if (!/[$`\p{Cc}]/u.test(word)) return `'${word.replace(/'/g, `'\\''`)}'`;
  const escaped = word
    .replace(/[\\']/g, "\\$&")
    .replace(/\p{Cc}/gu, (c) => (c < "\x80" ? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}` : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`));
  return `$'${escaped}'`;
}

/** Paths Slurm's #SBATCH lines and the scripts carry as they are (#SBATCH lines cannot quote). */
function assertPlainPath(what: string, dir: string): void {
  if (!/^[\p{L}\p{N}_./:@%+,=~-]+$/u.test(dir))
    throw new Error(
      `${what}: ${JSON.stringify(dir)} holds a character other than letters, digits and _./:@%+,=~-; expected a plain path (Slurm's #SBATCH lines cannot quote)`,
    );
}

/** Refuse, naming the option, anything that could not be written into the scripts as plain data. */
function checkScriptOptions(opts: SlurmJobOptions, node: string, cli: string): void {
  if (!SAFE_NAME.test(opts.name)) throw new Error(`config name ${JSON.stringify(opts.name)}: expected ${SAFE_NAME_RULE}`);
  for (const [what, value] of [
    ["--shards", opts.shards],
    ["--cpus-per-task", opts.cpusPerTask],
  ] as const) {
    if (!(Number.isInteger(value) && value >= 1)) throw new Error(`${what}: expected an integer ≥ 1, got ${JSON.stringify(value)}`);
  }
  for (const [what, dir] of [
    ["--data-dir", opts.dataDir],
    ["--task-dirs", opts.taskDirs],
    ["--script-dir", opts.scriptDir],
    ["node", node],
    ["fwprune", cli],
  ] as const) {
    if (dir !== undefined) assertPlainPath(what, dir);
  }
  for (const [what, value] of [
    ["--partition", opts.partition],
    ["--time", opts.time],
    ["--mem", opts.mem],
  ] as const) {
    if (value !== undefined && !/^[A-Za-z0-9_.:,+-]+$/.test(value))
      throw new Error(`${what}: expected a plain Slurm value (letters, digits, _.:,+-), got ${JSON.stringify(value)}`);
  }
}

export function defaultCli(): string {
  return path.join(REPO_ROOT, "dist", "cli.js");
}

export function slurmScripts(opts: SlurmJobOptions): SlurmScripts {
  const node = opts.node ?? process.execPath;
  const cli = opts.cli ?? defaultCli();
  checkScriptOptions(opts, node, cli);
  const jobName = `fwprune-${opts.name}`;
  const arrayFile = path.join(opts.scriptDir, `${jobName}.array.sbatch`);
  const reportFile = path.join(opts.scriptDir, `${jobName}.report.sbatch`);
  const fwprune = `${shellQuote(node)} ${shellQuote(cli)}`;
  const common = [...(opts.partition ? [`#SBATCH --partition=${opts.partition}`] : []), ...(opts.time ? [`#SBATCH --time=${opts.time}`] : [])];
  const resubmit = `sbatch ${shellQuote(arrayFile)}, then sbatch --dependency=afterany:<its job id> ${shellQuote(reportFile)} (or the same fwprune slurm command with --submit)`;
  const shardDir = (i: string) => `${shellQuote(opts.taskDirs as string)}/shard-"${i}"`;
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
  for (const [file, text] of [
    [scripts.arrayFile, scripts.array],
    [scripts.reportFile, scripts.report],
  ]) {
    writeFileAtomic(file, text);
    fs.chmodSync(file, 0o755);
  }
}

/** Submit the array, then the report job after it (afterany); returns their job ids. */
export function submitSlurm(scripts: SlurmScripts, sbatch = "sbatch"): { arrayJob: string; reportJob: string } {
  const run = (args: string[]) => {
    try {
      // --parsable prints "<id>" or "<id>;<cluster>".
      return execFileSync(sbatch, ["--parsable", ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
        .trim()
        .split(";")[0];
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      if (e.code === "ENOENT")
        throw new Error(
          `${sbatch} not found on PATH: run fwprune slurm --submit where Slurm's commands are (a login node), or submit the written scripts yourself`,
        );
      throw new Error(`${sbatch} ${args.join(" ")} failed: ${(e.stderr ?? e.message).trim()}`);
    }
  };
  const arrayJob = run([scripts.arrayFile]);
  if (!/^\d+$/.test(arrayJob)) throw new Error(`${sbatch} printed ${JSON.stringify(arrayJob)}; expected a job id`);
  const reportJob = run([`--dependency=afterany:${arrayJob}`, scripts.reportFile]);
  return { arrayJob, reportJob };
}
