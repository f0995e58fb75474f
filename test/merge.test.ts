import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { RunRecord, checkpointFile, planRuns, resolveConfig, runFile, sweep, writeRecord } from "../src/experiment";

// fwprune merge and what fwprune results says about missing runs, through the built CLI (npm test builds it first),
// on records and checkpoints of a real (tiny) sweep.
const CLI = path.join(__dirname, "..", "dist", "cli.js");
const skip = !fs.existsSync(CLI) && "dist/cli.js not built";
const env = { ...process.env, FWPRUNE_QUIET: "1" };
const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `fwprune-merge-${name}-`));
const tiny = {
  preset: "quick",
  name: "tiny-merge-test",
  dataset: { name: "mnist-embedded", limitTrain: 300, limitTest: 200 },
  pretrain: { epochs: 1 },
  budgets: [1],
  methods: ["dense", "magnitude"],
  sparsity: [0.8, 0.9],
  inference: { repeats: 1 },
};

const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { env, encoding: "utf8" });
const snapshot = (dir: string) => {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(path.relative(dir, p), `${fs.readFileSync(p).toString("base64")} ${fs.statSync(p).mtimeMs}`);
    }
  };
  walk(dir);
  return out;
};

test(
  "merge: verifies what it copies, never overwrites a different record, repairs a corrupt target, is idempotent; results lists what is missing",
  { skip, timeout: 120_000 },
  async () => {
    const dir = tmp("cases");
    const config = resolveConfig(tiny);
    const source = path.join(dir, "source");
    const result = await sweep(config, { dataDir: source, workers: 0 });
    assert.equal(result.computed, 3);
    const [dense, magnitude80, magnitude90] = result.records;
    const pretrainKey = planRuns(config)[0].pretrainKey;
    fs.mkdirSync(path.join(source, "locks"), { recursive: true }); // a lease left behind: never merged

    // Into an empty folder: everything copied, byte for byte.
    const target = path.join(dir, "target");
    const first = cli("merge", source, "--into", target);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /records: 3 copied, 0 already there/);
    assert.match(first.stdout, /checkpoints: 1 copied/);
    assert.match(first.stdout, /pre-training logs: 1 copied/);
    for (const r of result.records) assert.deepEqual(fs.readFileSync(runFile(target, r.key)), fs.readFileSync(runFile(source, r.key)));
    assert.deepEqual(fs.readFileSync(checkpointFile(target, pretrainKey, 1)), fs.readFileSync(checkpointFile(source, pretrainKey, 1)));
    assert.ok(!fs.existsSync(path.join(target, "locks")));

    // Again: nothing changes, not even a modification time.
    const before = snapshot(target);
    const second = cli("merge", source, "--into", target);
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stdout, /records: 0 copied, 3 already there/);
    assert.deepEqual(snapshot(target), before);

    // A second source with: a record edited by hand (fails its checksum), a record of the same key computed again
    // (intact, different), a truncated checkpoint; and a target whose copy of the third record is corrupt.
    const other = path.join(dir, "other");
    fs.cpSync(source, other, { recursive: true });
    const edited = JSON.parse(fs.readFileSync(runFile(other, dense.key), "utf8")) as RunRecord;
    (edited.metrics as { testAccuracy: number }).testAccuracy = 0.999;
    fs.writeFileSync(runFile(other, dense.key), JSON.stringify(edited));
    writeRecord(other, { ...magnitude80, createdAt: new Date(Date.parse(magnitude80.createdAt) + 1000).toISOString(), pid: magnitude80.pid + 1 });
    const ckpt = checkpointFile(other, pretrainKey, 1);
    fs.truncateSync(ckpt, fs.statSync(ckpt).size - 10);
    fs.writeFileSync(runFile(target, magnitude90.key), '{"key":');
    const third = cli("merge", other, "--into", target);
    assert.equal(third.status, 1, "conflicts and invalid sources make the exit status 1");
    assert.match(third.stderr, new RegExp(`not copied \\(failed verification\\): .*${dense.key}\\.json: content does not match its checksum`));
    assert.match(third.stderr, /not copied \(failed verification\): .*epoch-001\.ckpt: does not match its SHA-256/);
    assert.match(third.stderr, new RegExp(`conflict: run ${magnitude80.key} \\(magnitude budget 1 seed 0 s=0\\.8\\): .* differs from .*; kept`));
    assert.match(third.stdout, /records: 0 copied, 0 already there, 1 corrupt in the target replaced/);
    assert.deepEqual(fs.readFileSync(runFile(target, dense.key)), fs.readFileSync(runFile(source, dense.key)), "the edited record did not get in");
    assert.deepEqual(fs.readFileSync(runFile(target, magnitude80.key)), fs.readFileSync(runFile(source, magnitude80.key)), "the target's record kept");
    assert.deepEqual(fs.readFileSync(runFile(target, magnitude90.key)), fs.readFileSync(runFile(source, magnitude90.key)), "the corrupt one repaired");
    assert.deepEqual(fs.readFileSync(checkpointFile(target, pretrainKey, 1)), fs.readFileSync(checkpointFile(source, pretrainKey, 1)));

    // Bad input: named, before anything is written.
    const nowhere = path.join(dir, "nowhere");
    const missing = cli("merge", path.join(dir, "no-such-folder"), "--into", nowhere);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /merge: source .*no-such-folder does not exist; expected a data folder/);
    assert.ok(!fs.existsSync(nowhere));
    const itself = cli("merge", target, "--into", target);
    assert.match(itself.stderr, /is the target folder itself/);
    fs.mkdirSync(path.join(dir, "empty"));
    assert.match(cli("merge", path.join(dir, "empty"), "--into", nowhere).stderr, /has neither runs\/ nor checkpoints\//);

    // results: how many runs are missing, and which.
    const configFile = path.join(dir, "tiny.json");
    fs.writeFileSync(configFile, JSON.stringify(tiny));
    fs.rmSync(runFile(target, magnitude90.key));
    const results = cli("results", "--preset", configFile, "--data-dir", target);
    assert.equal(results.status, 0, results.stderr);
    assert.match(results.stdout, /2 of 3 runs of tiny-merge-test found in .*; 1 missing/);
    assert.match(results.stdout, new RegExp(`missing: magnitude budget 1 seed 0 s=0\\.9 \\(run ${magnitude90.key}\\)`));
    assert.equal(cli("results", "--preset", configFile, "--data-dir", target, "--fail-if-missing").status, 1);
    assert.equal(cli("results", "--preset", configFile, "--data-dir", source, "--fail-if-missing").status, 0);
  },
);

test("slurm: the scripts it writes (1-based shards, one worker per CPU, absolute paths, the report after any end), and its checks", { skip }, () => {
  const dir = tmp("scripts");
  const configDir = path.join(dir, "with space");
  fs.mkdirSync(configDir);
  const configFile = path.join(configDir, "tiny.json");
  fs.writeFileSync(configFile, JSON.stringify(tiny));
  const dataDir = path.join(dir, "data");
  const r = cli(
    "slurm",
    "--preset",
    configFile,
    "--shards",
    "3",
    "--data-dir",
    dataDir,
    "--task-dirs",
    path.join(dir, "tasks"),
    "--time",
    "1:00:00",
    "--partition",
    "short",
  );
  assert.equal(r.status, 0, r.stderr);
  const arrayFile = path.join(dataDir, "slurm", "fwprune-tiny-merge-test.array.sbatch");
  const array = fs.readFileSync(arrayFile, "utf8");
  const report = fs.readFileSync(path.join(dataDir, "slurm", "fwprune-tiny-merge-test.report.sbatch"), "utf8");
  assert.ok(r.stdout.includes(array) && r.stdout.includes(report), "prints what it writes");
  assert.match(array, /^#SBATCH --array=1-3$/m);
  assert.match(array, /^#SBATCH --cpus-per-task=2$/m);
  assert.match(array, /^#SBATCH --time=1:00:00$/m);
  assert.match(array, /^#SBATCH --partition=short$/m);
  assert.ok(array.includes(`exec ${process.execPath} ${CLI} sweep --preset '${configFile}' --shard "$shard/3"`), array);
  assert.ok(array.includes(`--workers "\${SLURM_CPUS_PER_TASK:-2}" --data-dir ${dir}/tasks/shard-"$shard"`), array);
  assert.ok(report.includes(`merge "\${sources[@]}" --into ${dataDir}`), report);
  assert.ok(report.includes(`results --preset '${configFile}' --data-dir ${dataDir} --fail-if-missing`), report);
  assert.match(r.stdout, /sbatch --dependency=afterany:/);
  for (const script of [array, report]) assert.equal(spawnSync("bash", ["-n"], { input: script }).status, 0, "valid bash");
  // Outside Slurm the array script stops at once, saying why.
  const outside = spawnSync("bash", [arrayFile], { encoding: "utf8", env: { PATH: process.env.PATH } });
  assert.notEqual(outside.status, 0);
  assert.match(outside.stderr, /submit this script with sbatch/);

  const tooMany = cli("slurm", "--preset", configFile, "--shards", "4", "--data-dir", dataDir);
  assert.match(tooMany.stderr, /--shards: tiny-merge-test has 3 independent runs .*expected at most 3, got 4/);
  assert.match(
    cli("slurm", "--preset", configFile, "--data-dir", path.join(dir, "a b")).stderr,
    /--data-dir: .* holds a character other than letters, digits and .*; expected a plain path/,
  );
  assert.match(cli("slurm", "--preset", configFile, "--time", "1 hour").stderr, /--time: expected a plain Slurm value/);
});
