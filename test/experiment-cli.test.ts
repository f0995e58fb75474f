import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { RunRecord } from "../src/experiment";

// The CLI as users run it: the compiled dist/cli.js (npm test builds first).
const ROOT = path.join(__dirname, "..");
const CLI = path.join(ROOT, "dist", "cli.js");
const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `fwprune-cli-${name}-`));
// Locks of killed processes are taken over after 3 s without renewal (60 s by default).
const env = { ...process.env, FWPRUNE_QUIET: "1", FWPRUNE_LOCK_STALE_SECONDS: "3" };

function writeConfig(dir: string, config: unknown): string {
  const file = path.join(dir, "config.json");
  fs.writeFileSync(file, JSON.stringify(config));
  return file;
}

const tiny = {
  preset: "quick",
  dataset: { name: "mnist-embedded", limitTrain: 500, limitTest: 200 },
  pretrain: { epochs: 2 },
  budgets: [1, 2],
  methods: ["dense", "magnitude", "fw-momentum"],
  sparsity: [0.8, 0.9],
  params: { "fw-momentum": { iterations: 20, batchSize: 64 } },
  inference: { repeats: 1 },
};

test("a bad config exits non-zero, names the field, and writes nothing", { skip: !fs.existsSync(CLI) && "dist/cli.js not built" }, () => {
  const cases: [object, RegExp][] = [
    [{ sparsity: 1.5 }, /sparsity: .*got 1\.5/],
    [{ methods: ["dense", "foo"] }, /methods\.1\.method: no method is called "foo"; expected one of .*\(got "foo"\)/],
    [{ pretrain: { epochs: 0 } }, /pretrain\.epochs: .*got 0/],
    [{ dataset: { name: "idx", dir: "/no/such/folder" } }, /dataset\.dir: folder "\/no\/such\/folder" does not exist/],
  ];
  for (const [bad, pattern] of cases) {
    const dir = tmp("bad");
    const dataDir = path.join(dir, "data");
    const r = spawnSync(process.execPath, [CLI, "sweep", "--preset", writeConfig(dir, { ...tiny, ...bad }), "--data-dir", dataDir, "--no-progress"], {
      env,
      encoding: "utf8",
    });
    assert.notEqual(r.status, 0, JSON.stringify(bad));
    assert.match(r.stderr, pattern);
    assert.ok(!fs.existsSync(dataDir), `nothing written for ${JSON.stringify(bad)}`);
  }
  const help = spawnSync(process.execPath, [CLI, "results", "--help"], { env, encoding: "utf8" });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--csv <file>/);
});

function readRecords(dataDir: string): RunRecord[] {
  const dir = path.join(dataDir, "runs");
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")) as RunRecord);
}

test(
  "kill -9 in the middle of a sweep, then the same command: completes, no record lost, corrupted or recomputed",
  { skip: !fs.existsSync(CLI) && "dist/cli.js not built", timeout: 240_000 },
  async () => {
    const dir = tmp("kill");
    const dataDir = path.join(dir, "data");
    const args = [CLI, "sweep", "--preset", writeConfig(dir, tiny), "--data-dir", dataDir, "--workers", "2", "--no-progress"];
    const child = spawn(process.execPath, args, { env, detached: true, stdio: "ignore" });
    const deadline = Date.now() + 180_000;
    while (readRecords(dataDir).length < 3) {
      if (Date.now() > deadline) throw new Error("no records appeared within 180 s");
      if (child.exitCode !== null) throw new Error(`the sweep ended (code ${child.exitCode}) before it could be killed`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    process.kill(-(child.pid as number), "SIGKILL"); // the whole process group: the CLI and its workers
    await new Promise((resolve) => setTimeout(resolve, 500));
    const before = readRecords(dataDir);
    assert.ok(before.length >= 3 && before.length < 10, `killed in the middle (${before.length} of 10 records)`);

    const again = spawnSync(process.execPath, args, { env, encoding: "utf8", timeout: 180_000 });
    assert.equal(again.status, 0, again.stderr);
    const after = readRecords(dataDir);
    assert.equal(after.length, 10);
    assert.equal(new Set(after.map((r) => r.key)).size, 10, "no duplicates");
    assert.ok(after.every((r) => r.status === "ok"));
    for (const r of before) assert.equal(after.find((a) => a.key === r.key)?.createdAt, r.createdAt, "finished before the kill: not recomputed");
    assert.match(again.stdout, new RegExp(`10 runs: computed ${10 - before.length}, cached ${before.length}, failed 0, corrupt 0`));
    assert.ok(
      fs.readdirSync(path.join(dataDir, "runs")).every((f) => f.endsWith(".json") || f.endsWith(".model")),
      "no temp files left among the records and final models",
    );

    const results = spawnSync(
      process.execPath,
      [CLI, "results", "--preset", path.join(dir, "config.json"), "--data-dir", dataDir, "--csv", path.join(dir, "t.csv")],
      { env, encoding: "utf8" },
    );
    assert.equal(results.status, 0, results.stderr);
    assert.match(results.stdout, /10 of 10 runs of config found/);
    assert.match(results.stdout, /^fw-momentum\s+2\s+0\.9\s+1\s+0\.\d{4}/m);
    assert.equal(fs.readFileSync(path.join(dir, "t.csv"), "utf8").trim().split("\n").length, 1 + 2 + 4 + 4);
  },
);

test("workers whose sweep is killed exit promptly and quietly", { skip: !fs.existsSync(CLI) && "dist/cli.js not built", timeout: 240_000 }, async () => {
  const dir = tmp("orphans");
  const dataDir = path.join(dir, "data");
  const args = [CLI, "sweep", "--preset", writeConfig(dir, tiny), "--data-dir", dataDir, "--workers", "2", "--no-progress"];
  const child = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const deadline = Date.now() + 180_000;
  while (readRecords(dataDir).length < 1) {
    if (Date.now() > deadline) throw new Error("no record appeared within 180 s");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const workers = spawnSync("ps", ["-o", "pid=", "--ppid", String(child.pid)], { encoding: "utf8" })
    .stdout.trim()
    .split(/\s+/)
    .filter(Boolean)
    .map(Number);
  assert.equal(workers.length, 2, "two worker processes");
  process.kill(child.pid as number, "SIGKILL"); // the parent only: its workers are orphaned in the middle of a task
  const alive = () =>
    workers.filter((pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    });
  const killedAt = Date.now();
  while (alive().length > 0 && Date.now() - killedAt < 10_000) await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(alive(), [], "every worker gone within 10 s of its parent");
  console.log(`# orphaned workers exited ${((Date.now() - killedAt) / 1000).toFixed(1)} s after their parent`);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.doesNotMatch(stderr, /Error|at .*\.js:\d+/, "no stack trace in the user's terminal");
});

test(
  "the build leaves dist/cli.js executable, so `npx fwprune` (the README's commands) can run it",
  { skip: !fs.existsSync(CLI) && "dist/cli.js not built" },
  () => {
    assert.doesNotThrow(() => fs.accessSync(CLI, fs.constants.X_OK), `${CLI} is not executable`);
    const r = spawnSync(CLI, ["--help"], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Usage: fwprune/);
  },
);
