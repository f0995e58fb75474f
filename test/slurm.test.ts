import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { RunRecord, loadConfig, planRuns, readRecord, shardRuns } from "../src/experiment";
import { SlurmCluster, slurmSkipReason, startCluster } from "./slurm-cluster";
import { TINY } from "./tiny-config";

// A sweep as a Slurm job array on a real one-node cluster (Debian's slurm-wlm + munge, started here without systemd):
// per-task folders merged by the report job, then a shared folder with one task killed mid-run and the array
// resubmitted. Runs where Slurm can be set up (root, packages present or installable); skipped with the reason otherwise.
const ROOT = path.join(__dirname, "..");
const CLI = path.join(ROOT, "dist", "cli.js");
const SHARDS = 3;
// Locks of a killed task are taken over after 3 s without renewal (60 s by default); sbatch passes the environment on.
const env = { ...process.env, FWPRUNE_QUIET: "1", FWPRUNE_LOCK_STALE_SECONDS: "3" };

const skip = !fs.existsSync(CLI) ? "dist/cli.js not built (npm test builds it)" : slurmSkipReason();
if (skip) console.log(`# skipped: ${skip}`);

function records(dataDir: string): Map<string, RunRecord> {
  const dir = path.join(dataDir, "runs");
  const out = new Map<string, RunRecord>();
  for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    if (!name.endsWith(".json")) continue;
    const r = readRecord(dataDir, name.slice(0, -5), { shipped: false });
    assert.equal(r.kind, "ok", `${name}: ${r.kind === "corrupt" ? r.reason : r.kind}`);
    if (r.kind === "ok") out.set(r.record.key, r.record);
  }
  return out;
}

/** What must not depend on where and how a run was computed: the same keys, statuses and metrics. */
function assertSameResults(actual: Map<string, RunRecord>, expected: Map<string, RunRecord>, what: string): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort(), `${what}: the same run keys`);
  const deterministic = (r: RunRecord) => ({
    status: r.status,
    method: r.method,
    budget: r.budget,
    seed: r.seed,
    testAccuracy: r.metrics?.testAccuracy,
    testLoss: r.metrics?.testLoss,
    prunedAccuracy: r.metrics?.prunedAccuracy,
    sparsity: r.metrics?.sparsity,
    zeros: r.metrics?.zeros,
    samplesUsed: r.metrics?.samplesUsed,
  });
  for (const [key, r] of expected) assert.deepEqual(deterministic(actual.get(key) as RunRecord), deterministic(r), `${what}: run ${key} (${r.label})`);
}

function submit(args: string[], clusterEnv: NodeJS.ProcessEnv): { arrayJob: string; reportJob: string } {
  const r = spawnSync(process.execPath, [CLI, "slurm", ...args, "--submit"], { env: { ...clusterEnv, ...env }, encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const arrayJob = /array job (\d+): 3 tasks/.exec(r.stdout)?.[1];
  const reportJob = /report job (\d+): after the array ends/.exec(r.stdout)?.[1];
  assert.ok(arrayJob && reportJob, r.stdout);
  return { arrayJob, reportJob };
}

const log = (dir: string, prefix: string) => {
  const file = fs.readdirSync(dir).find((f) => f.startsWith(prefix));
  return file ? fs.readFileSync(path.join(dir, file), "utf8") : `(no log ${prefix}* in ${dir})`;
};

/** The "computed N" of each task's sweep summary, from its log. */
function computedByTasks(logDir: string, arrayJob: string): number[] {
  return Array.from({ length: SHARDS }, (_, i) => {
    const text = log(logDir, `fwprune-tiny-slurm-test-${arrayJob}_${i + 1}.out`);
    const m = /runs: computed (\d+), cached (\d+)/.exec(text);
    assert.ok(m, `task ${i + 1}'s log has a sweep summary:\n${text}`);
    return Number(m[1]);
  });
}

/** Processes (other than this one) whose command line names `needle`. */
function processesNaming(needle: string): string[] {
  return fs
    .readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)
    .flatMap((p) => {
      try {
        const cmd = fs.readFileSync(`/proc/${p}/cmdline`, "utf8").replace(/\0/g, " ");
        return cmd.includes(needle) ? [`${p}: ${cmd}`] : [];
      } catch {
        return [];
      }
    });
}

test(
  "a sweep as a Slurm job array: merged per-task folders equal an unsharded sweep; a task killed mid-run, resubmitted, computes only what is missing",
  { skip, timeout: 300_000 },
  async (t) => {
    const started = Date.now();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-slurm-test-"));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const configFile = path.join(dir, "tiny.json");
    fs.writeFileSync(configFile, JSON.stringify({ ...TINY, name: "tiny-slurm-test" }));

    // The reference, unsharded and outside Slurm, computed while the cluster starts.
    const refDir = path.join(dir, "reference");
    const reference = spawn(process.execPath, [CLI, "sweep", "--preset", configFile, "--data-dir", refDir, "--workers", "1", "--no-progress"], {
      env,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let referenceErr = "";
    reference.stderr.on("data", (d) => (referenceErr += d));
    const referenceDone = new Promise<number | null>((resolve) => reference.on("exit", resolve));
    t.after(() => {
      if (reference.exitCode === null) reference.kill("SIGKILL");
    });
    const cluster: SlurmCluster = await startCluster(); // stops what it started when it fails
    t.after(() => cluster.stop());
    assert.equal(await referenceDone, 0, referenceErr);
    const expected = records(refDir);
    const runs = planRuns(loadConfig(configFile));
    assert.equal(expected.size, runs.length);
    console.log(`# cluster up, reference sweep done: ${((Date.now() - started) / 1000).toFixed(1)} s`);

    // 1. Each task its own folder; the report job merges them into one and prints the results.
    const merged = path.join(dir, "merged");
    const perTask = submit(
      ["--preset", configFile, "--shards", "3", "--cpus-per-task", "1", "--data-dir", merged, "--task-dirs", path.join(dir, "tasks")],
      cluster.env,
    );
    await cluster.waitForJobs([perTask.arrayJob, perTask.reportJob], 180_000);
    const logDir = path.join(merged, "slurm");
    const report1 = log(logDir, `fwprune-tiny-slurm-test-report-${perTask.reportJob}`);
    assert.equal(cluster.job(perTask.reportJob).state, "COMPLETED", report1);
    assert.match(report1, new RegExp(`conflicts \\(same key, different content; the target's kept\\): 0`));
    assert.match(report1, new RegExp(`${runs.length} of ${runs.length} runs of tiny-slurm-test found`));
    assert.deepEqual(
      computedByTasks(logDir, perTask.arrayJob).reduce((a, b) => a + b),
      runs.length,
      "each run computed by one task",
    );
    assertSameResults(records(merged), expected, "merged per-task folders");
    // Merging again changes nothing.
    const again = spawnSync(process.execPath, [CLI, "merge", ...[1, 2, 3].map((i) => path.join(dir, "tasks", `shard-${i}`)), "--into", merged], {
      env,
      encoding: "utf8",
    });
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`records: 0 copied, ${runs.length} already there`));
    console.log(`# per-task folders merged: ${((Date.now() - started) / 1000).toFixed(1)} s`);

    // 2. One shared folder; the task with most runs is killed while it computes its second one.
    const shared = path.join(dir, "shared");
    const sharedArgs = ["--preset", configFile, "--shards", "3", "--cpus-per-task", "1", "--data-dir", shared];
    const first = submit(sharedArgs, cluster.env);
    const shards = Array.from({ length: SHARDS }, (_, i) => shardRuns(runs, { index: i + 1, count: SHARDS }).map((r) => r.key));
    const victim = shards.findIndex((keys) => keys.length === Math.max(...shards.map((k) => k.length))) + 1;
    const victimKeys = shards[victim - 1];
    assert.ok(victimKeys.length >= 2, "the killed task has at least two runs");
    const hasRecord = (key: string) => fs.existsSync(path.join(shared, "runs", `${key}.json`));
    const deadline = Date.now() + 180_000;
    let killedKey: string | undefined;
    while (!killedKey) {
      assert.ok(Date.now() < deadline, "the task never reached its second run");
      const done = victimKeys.filter(hasRecord);
      const computing = victimKeys.find((k) => !hasRecord(k) && fs.existsSync(path.join(shared, "locks", `${k}.lock`)));
      if (done.length >= 1 && computing) {
        cluster.command("scancel", [`${first.arrayJob}_${victim}`]);
        killedKey = computing;
      } else await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await cluster.waitForJobs([first.arrayJob, first.reportJob], 180_000);
    assert.equal(cluster.job(`${first.arrayJob}_${victim}`).state, "CANCELLED");
    const report2 = log(path.join(shared, "slurm"), `fwprune-tiny-slurm-test-report-${first.reportJob}`);
    assert.equal(cluster.job(first.reportJob).state, "FAILED", report2);
    assert.ok(!hasRecord(killedKey), "killed before its record was written");
    const killedRun = runs.find((r) => r.key === killedKey) as (typeof runs)[number];
    assert.match(report2, new RegExp(`${runs.length - 1} of ${runs.length} runs .*; 1 missing`));
    assert.match(report2, new RegExp(`missing: ${killedRun.label} budget 1 seed 0.*\\(run ${killedKey}\\)`));
    assert.match(report2, /to compute what is missing: sbatch /);
    assert.deepEqual(processesNaming(shared), [], "the killed task's processes are gone");
    const before = records(shared); // every record left is intact (records() asserts it)
    assert.equal(before.size, runs.length - 1);

    // Resubmitting the same array computes the killed run only; every other record stays as it was.
    const second = submit(sharedArgs, cluster.env);
    await cluster.waitForJobs([second.arrayJob, second.reportJob], 180_000);
    const report3 = log(path.join(shared, "slurm"), `fwprune-tiny-slurm-test-report-${second.reportJob}`);
    assert.equal(cluster.job(second.reportJob).state, "COMPLETED", report3);
    assert.match(report3, new RegExp(`${runs.length} of ${runs.length} runs of tiny-slurm-test found`));
    assert.deepEqual(
      computedByTasks(path.join(shared, "slurm"), second.arrayJob),
      shards.map((_, i) => (i + 1 === victim ? 1 : 0)),
    );
    const after = records(shared);
    for (const [key, r] of before) assert.deepEqual([after.get(key)?.createdAt, after.get(key)?.pid], [r.createdAt, r.pid], `run ${key} not recomputed`);
    assertSameResults(after, expected, "shared folder after the resubmission");
    console.log(`# slurm test: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  },
);
