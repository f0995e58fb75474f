import { test } from "node:test";
import * as assert from "node:assert/strict";
import { fork } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { RunRecord, listRecords, planRuns, recordChecksum, resolveConfig, runFile, runOne, sweep } from "../src/experiment";
import { workerNodeFlags, workerThreads } from "../src/experiment/sweep";
import { Task, WorkerMessage } from "../src/experiment/worker";
import { aggregateCsv, aggregateFrame, aggregateRecords } from "../src/report/frame";

// Tiny real runs: 500 training digits, 200 test digits, 2 pre-training epochs, FW with 5 iterations.
const tiny = {
  preset: "quick",
  dataset: { name: "mnist-embedded", limitTrain: 500, limitTest: 200 },
  pretrain: { epochs: 2 },
  budgets: [1, 2],
  methods: ["dense", "magnitude", "fw-momentum"],
  params: { "fw-momentum": { iterations: 5, batchSize: 64 } },
  inference: { repeats: 1 },
};
const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `fwprune-${name}-`));

test("a cached run is not recomputed; changing one method parameter recomputes only that method's runs", async () => {
  const dataDir = tmp("cache");
  const config = resolveConfig(tiny);
  const first = await sweep(config, { dataDir, workers: 0 });
  assert.equal(first.runs, 6);
  assert.equal(first.computed, 6);
  assert.ok(
    first.records.every((r) => r.status === "ok"),
    JSON.stringify(first.records.map((r) => r.reason)),
  );
  const mag = first.records.find((r) => r.method === "magnitude" && r.budget === 2);
  assert.ok(mag?.metrics && Math.abs(mag.metrics.sparsity - 0.9) < 1e-3, "magnitude reaches its target sparsity");
  assert.ok(first.records.filter((r) => r.method === "dense").every((r) => r.metrics?.sparsity === 0));
  const fwm = first.records.find((r) => r.method === "fw-momentum");
  assert.ok(fwm && Array.isArray(fwm.history) && (fwm.history as unknown[]).length === 5, "the FW history is stored");
  assert.equal(fwm.metrics?.samplesUsed, 5 * 64 + 500);

  const again = await sweep(config, { dataDir, workers: 0 });
  assert.deepEqual([again.computed, again.cached], [0, 6]);
  assert.deepEqual(
    again.records.map((r) => r.createdAt),
    first.records.map((r) => r.createdAt),
  );

  const changed = await sweep(resolveConfig({ ...tiny, params: { "fw-momentum": { ...tiny.params["fw-momentum"], momentum: { kind: "mokhtari" } } } }), {
    dataDir,
    workers: 0,
  });
  assert.deepEqual([changed.computed, changed.cached], [2, 4]);
  assert.ok(changed.records.filter((r) => r.method === "fw-momentum").every((r) => !first.records.some((f) => f.key === r.key)));
  assert.equal(listRecords(dataDir).records.length, 8);

  // Aggregation: one row per method × budget, CSV through danfo.
  const rows = aggregateRecords(first.records);
  assert.equal(rows.length, 6);
  assert.ok(rows.every((r) => r.testAccuracy.count === 1 && r.runs === 1));
  assert.equal(rows.find((r) => r.label === "dense")?.inferenceRatio.mean, 1);
  assert.deepEqual(aggregateFrame(first.records).shape, [6, 6 + 13 * 4]);
  aggregateCsv(first.records, path.join(dataDir, "table.csv"));
  const [header, ...lines] = fs
    .readFileSync(path.join(dataDir, "table.csv"), "utf8")
    .trim()
    .split("\n")
    .map((l) => l.split(","));
  assert.deepEqual(header.slice(0, 7), ["method", "baseMethod", "budget", "sparsityTarget", "runs", "failed", "testAccuracy_mean"]);
  for (const r of first.records) {
    const line = lines.find((l) => l[0] === r.label && Number(l[2]) === r.budget);
    assert.equal(Number(line?.[6]), r.metrics?.testAccuracy, `${r.label} budget ${r.budget}: the CSV holds the run's accuracy`);
  }

  // A truncated record is reported and recomputed, never trusted.
  const victim = runFile(dataDir, first.records[1].key);
  const text = fs.readFileSync(victim, "utf8");
  fs.writeFileSync(victim, text.slice(0, text.length >> 1));
  const repaired = await sweep(config, { dataDir, workers: 0 });
  assert.deepEqual([repaired.computed, repaired.cached, repaired.corrupt.length], [1, 5, 1]);
  assert.match(repaired.corrupt[0], /not valid JSON/);
  assert.doesNotThrow(() => JSON.parse(fs.readFileSync(victim, "utf8")));

  // A record edited by hand (valid JSON, other numbers) fails its checksum; one sealed with a valid checksum but an
  // impossible value fails the schema: both reported and recomputed, never served.
  const edited = JSON.parse(fs.readFileSync(victim, "utf8")) as RunRecord;
  edited.metrics!.testAccuracy = 0.999;
  fs.writeFileSync(victim, JSON.stringify(edited));
  const afterEdit = await sweep(config, { dataDir, workers: 0 });
  assert.match(afterEdit.corrupt[0] ?? "", /content does not match its checksum/);
  const impossible = JSON.parse(fs.readFileSync(victim, "utf8")) as RunRecord;
  impossible.metrics!.testAccuracy = 1.5;
  impossible.checksum = recordChecksum(impossible);
  fs.writeFileSync(victim, JSON.stringify(impossible));
  const afterSchema = await sweep(config, { dataDir, workers: 0 });
  assert.match(afterSchema.corrupt[0] ?? "", /metrics\.testAccuracy: Number must be less than or equal to 1/);
  assert.equal(afterSchema.computed, 1);

  // runOne goes through the same cache.
  const one = await runOne(config, { method: "magnitude", budget: 2 }, { dataDir });
  assert.equal(one.key, mag?.key);
  assert.equal(one.createdAt, mag?.createdAt);
});

test("a diverging run (absurd learning rate) is recorded as failed while the other runs finish", async () => {
  const dataDir = tmp("nan");
  const config = resolveConfig({
    ...tiny,
    budgets: [2],
    methods: ["dense", "magnitude", { name: "magnitude-lr1e12", method: "magnitude", retrain: { lr: 1e12 } }],
  });
  const result = await sweep(config, { dataDir, workers: 0 });
  assert.equal(result.runs, 3);
  const bad = result.records.find((r) => r.label === "magnitude-lr1e12");
  assert.equal(bad?.status, "failed");
  assert.match(bad?.reason ?? "", /DivergenceError: training loss became (NaN|Infinity|[\d.]+e\+\d+, more than 100× max\(its first minibatch's, 1\))/);
  assert.equal(result.failed, 1);
  assert.ok(result.records.filter((r) => r.label !== "magnitude-lr1e12").every((r) => r.status === "ok"));
  // A failed record is a result too: cached, unless asked to retry.
  assert.deepEqual([(await sweep(config, { dataDir, workers: 0 })).computed], [0]);
  assert.equal((await sweep(config, { dataDir, workers: 0, retryFailed: true })).computed, 1);
  const rows = aggregateRecords(result.records);
  assert.deepEqual(
    rows.map((r) => [r.label, r.failed]),
    [
      ["dense", 0],
      ["magnitude", 0],
      ["magnitude-lr1e12", 1],
    ],
  );
});

test("shards 1/2 and 2/2 (in-process) together equal the unsharded sweep (two worker processes)", async () => {
  const config = resolveConfig({ ...tiny, sparsity: [0.8, 0.9] });
  const whole = await sweep(config, { dataDir: tmp("whole"), workers: 2 });
  assert.equal(whole.runs, 10);
  assert.equal(whole.computed, 10);
  const a = await sweep(config, { dataDir: tmp("shard1"), workers: 0, shard: "1/2" });
  const b = await sweep(config, { dataDir: tmp("shard2"), workers: 0, shard: { index: 2, count: 2 } });
  assert.equal(a.runs + b.runs, 10);
  assert.ok(Math.abs(a.runs - b.runs) <= 1);
  const merged = new Map([...a.records, ...b.records].map((r) => [r.key, r]));
  assert.deepEqual([...merged.keys()].sort(), whole.records.map((r) => r.key).sort());
  assert.deepEqual(new Set(planRuns(config).map((r) => r.key)), new Set(merged.keys()));
  for (const r of whole.records) {
    const m = merged.get(r.key);
    assert.equal(m?.metrics?.testAccuracy, r.metrics?.testAccuracy, `${r.label} budget ${r.budget}: same accuracy in a shard and in the whole sweep`);
    assert.equal(m?.metrics?.sparsity, r.metrics?.sparsity);
  }
});

test("W workers share the threads a single run would use: max(1, T / W) each", () => {
  assert.equal(workerThreads(1, 2), 2);
  assert.equal(workerThreads(2, 2), 1);
  assert.equal(workerThreads(3, 2), 1);
  assert.equal(workerThreads(2, 16), 8);
  const before = process.env.FWPRUNE_THREADS;
  process.env.FWPRUNE_THREADS = "1";
  try {
    assert.equal(workerThreads(1), 1, "FWPRUNE_THREADS=1: one thread, even for a single worker");
  } finally {
    if (before === undefined) delete process.env.FWPRUNE_THREADS;
    else process.env.FWPRUNE_THREADS = before;
  }
});

test("a worker on a full machine collects garbage on its own thread, and computes the same record as this process", async () => {
  assert.deepEqual(workerNodeFlags(2, 2), ["--single-threaded-gc"], "a worker on every core");
  assert.deepEqual(workerNodeFlags(1, 2), [], "a core to spare");
  assert.deepEqual(workerNodeFlags(2, 16), []);
  const config = resolveConfig({ ...tiny, methods: ["fw-momentum"], budgets: [1] });
  const dataDir = tmp("gc-flags");
  const [here] = (await sweep(config, { dataDir, workers: 0 })).records;
  fs.rmSync(runFile(dataDir, here.key));
  const [plan] = planRuns(config);
  const child = fork(path.join(__dirname, "..", "src", "experiment", "worker.ts"), [], {
    execArgv: [...workerNodeFlags(2, 2), "--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  try {
    const there = await new Promise<RunRecord>((resolve, reject) => {
      child.on("message", (m: WorkerMessage) => {
        if (m.type === "run-done") resolve(m.record);
        if (m.type === "error") reject(new Error(m.message));
      });
      child.on("exit", (code) => reject(new Error(`worker exited (code ${code})`)));
      child.send({ type: "run", plan, dataDir, config } satisfies Task);
    });
    assert.equal(there.key, here.key);
    assert.notEqual(there.pid, process.pid, "computed in the worker");
    assert.deepEqual(there.history, here.history);
    const same = ["testAccuracy", "testLoss", "prunedAccuracy", "prunedLoss", "sparsity", "zeros", "sparsityPerLayer"] as const;
    for (const field of same) assert.deepEqual(there.metrics?.[field], here.metrics?.[field], field);
  } finally {
    child.disconnect();
  }
});
