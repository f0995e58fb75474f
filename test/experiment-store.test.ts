// The store as several processes and a notebook see it: one method defined in this file alone and swept; a
// notebook's exploration and a sweep's run sharing one record; two sweeps on one data folder; locks as leases;
// pre-training restarted after a lost checkpoint; no tensor left behind by a run.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { fork } from "child_process";
import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import { initBackend } from "../src/backend";
import { datasetFor } from "../src/datasets";
import {
  PRESETS,
  checkpointFile,
  computeRecord,
  intactEpochs,
  lockPath,
  planPretraining,
  planRuns,
  resolveConfig,
  sweep,
  tryLock,
  waitForLock,
  modelLike,
  modelsOf,
} from "../src/experiment";
import { createModel, disposeModel, getWeights } from "../src/model";
import { flopsOf } from "../src/measure";
import { exploreFrankWolfe, exploreMethod, fwParams, methodParams, notebookConfig } from "../src/notebook";
import { cnnMaskOracle, getMethod, magnitudeMask, parseParams, registerMethod } from "../src/prune";
import { evaluate, train } from "../src/train";

const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `fwprune-store-${name}-`));
const tiny = {
  preset: "quick",
  name: "tiny-store",
  dataset: { name: "mnist-embedded", limitTrain: 400, limitTest: 200 },
  pretrain: { epochs: 2 },
  budgets: [1, 2],
  methods: ["dense", "magnitude"],
  params: { fw: { iterations: 6, batchSize: 64 }, "fw-momentum": { iterations: 6, batchSize: 64 } },
  inference: { repeats: 1 },
};

// A throw-away method, defined here and nowhere else: keep the largest weights of the first kernel only.
registerMethod({
  name: "test-first-layer",
  summary: "magnitude pruning of the first kernel alone (a test's method)",
  params: z.object({ keepOthers: z.boolean().default(true) }).strict(),
  retrain: () => "masked",
  prune: async (checkpoint, _params, ctx) => {
    const mask = magnitudeMask(checkpoint.graph, getWeights(checkpoint), ctx.target, "per-layer");
    for (const name of Object.keys(mask).slice(1)) mask[name].fill(1);
    return { mask, samplesUsed: 0 };
  },
});

test("a method defined in a test file alone is validated, planned and swept like the built-ins", async () => {
  const dataDir = tmp("method");
  const config = resolveConfig({ ...tiny, methods: ["dense", { method: "test-first-layer", params: { keepOthers: true } }] });
  assert.throws(
    () => resolveConfig({ ...tiny, methods: [{ method: "test-first-layer", params: { keepOthers: "yes" } }] }),
    /methods\.0\.params\.keepOthers: Expected boolean, received string/,
  );
  const result = await sweep(config, { dataDir, workers: 0 });
  assert.equal(result.computed, 4);
  const mine = result.records.filter((r) => r.method === "test-first-layer");
  assert.equal(mine.length, 2);
  for (const r of mine) {
    assert.equal(r.status, "ok", r.reason);
    assert.ok(Math.abs(r.metrics!.sparsityPerLayer["conv1/kernel"] - 0.9) < 0.01, "the first kernel pruned to 0.9");
    assert.equal(r.metrics!.sparsityPerLayer["dense1/kernel"], 0, "the others untouched");
  }
});

test("random is swept by the quick preset's config when named in methods", () => {
  const config = resolveConfig({ preset: "quick", methods: [...PRESETS.quick.methods, "random"] });
  const random = planRuns(config).filter((r) => r.method === "random");
  assert.deepEqual(
    random.map((r) => r.budget).sort((a, b) => a - b),
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
  );
  assert.ok(random.every((r) => r.sparsity === 0.9 && r.inputs.retrain?.masked === true));
});

test("a notebook's FW exploration and a sweep's run with the same parameters are one record", async () => {
  const dataDir = tmp("explore");
  const file = path.join(dataDir, "tiny.json");
  fs.writeFileSync(file, JSON.stringify({ ...tiny, methods: ["fw-momentum"], budgets: [1] }));
  const ctx = notebookConfig({ FWPRUNE_PRESET: file, FWPRUNE_DATA_DIR: dataDir, FWPRUNE_WORKERS: "0" });
  const swept = await sweep(ctx.config, { dataDir, workers: 0 });
  const explored = await exploreFrankWolfe(ctx, { budget: 1, method: "fw-momentum", label: "my look at it" });
  assert.equal(explored.record.key, swept.records[0].key);
  assert.equal(explored.record.createdAt, swept.records[0].createdAt, "served from the store, not recomputed");
  assert.equal(explored.label, "my look at it");
  assert.equal(explored.kept + (explored.n - explored.kept), explored.n);
  assert.ok(explored.kept <= explored.k);
  // A named custom schedule is a run of its own; the same function again is that run again.
  const halving = { name: "halving", fn: (t: number) => 0.1 * 0.5 ** t };
  const custom = await exploreFrankWolfe(ctx, { budget: 1, method: "fw-momentum", params: { stepSize: halving } });
  assert.notEqual(custom.record.key, explored.record.key);
  assert.equal(custom.history[2].stepSize, 0.025);
  const again = await exploreFrankWolfe(ctx, { budget: 1, method: "fw-momentum", params: { stepSize: halving } });
  assert.equal(again.record.createdAt, custom.record.createdAt);
  const edited = await exploreFrankWolfe(ctx, {
    budget: 1,
    method: "fw-momentum",
    params: { stepSize: { name: "halving", fn: (t: number) => 0.2 * 0.5 ** t } },
  });
  assert.notEqual(edited.record.key, custom.record.key, "editing the function's body is another run");
});

test("the notebook helpers take any registered method: this file's own method read, explored and shared with a sweep; FW-only helpers refuse it before any work", async () => {
  const dataDir = tmp("explore-any");
  const file = path.join(dataDir, "tiny.json");
  fs.writeFileSync(file, JSON.stringify({ ...tiny, methods: [{ method: "test-first-layer", params: { keepOthers: false } }], budgets: [1] }));
  const ctx = notebookConfig({ FWPRUNE_PRESET: file, FWPRUNE_DATA_DIR: dataDir, FWPRUNE_WORKERS: "0" });
  assert.deepEqual(methodParams(ctx.config, "test-first-layer"), { keepOthers: false }, "the config's entry");
  assert.deepEqual(methodParams(ctx.config, "magnitude"), parseParams(getMethod("magnitude")), "a method without an entry: its defaults");
  assert.equal(fwParams(ctx.config, "structured-fw").iterations, 200, "a structured FW method has FW's parameters");
  assert.throws(
    () => fwParams(ctx.config, "test-first-layer"),
    /fwParams: "test-first-layer" \(method test-first-layer\) of config "tiny-store" has no Frank-Wolfe parameters \(iterations, /,
  );
  await assert.rejects(
    exploreFrankWolfe(ctx, { budget: 1, method: "test-first-layer" }),
    /exploreFrankWolfe: method "test-first-layer" is not a Frank-Wolfe method/,
  );
  await assert.rejects(exploreMethod(ctx, { budget: 1, method: "no-such-method" }), /method "no-such-method" is not registered/);
  assert.deepEqual(fs.readdirSync(dataDir), ["tiny.json"], "nothing computed for refused calls");

  const swept = await sweep(ctx.config, { dataDir, workers: 0 });
  const explored = await exploreMethod(ctx, { budget: 1, method: "test-first-layer", label: "first kernel" });
  assert.equal(explored.record.key, swept.records[0].key, "the config's parameters: the sweep's run");
  assert.equal(explored.record.createdAt, swept.records[0].createdAt, "served from the store");
  assert.equal(explored.label, "first kernel");
  assert.deepEqual(explored.history, []);
  const m = explored.record.metrics!;
  assert.deepEqual(explored.pruned, { accuracy: m.prunedAccuracy, loss: m.prunedLoss, sparsity: m.sparsity });
  assert.deepEqual(explored.retrained, { accuracy: m.testAccuracy, loss: m.testLoss, sparsity: m.sparsity });
  const unretrained = await exploreMethod(ctx, { budget: 1, method: "test-first-layer", retrain: false, params: { keepOthers: true } });
  assert.notEqual(unretrained.record.key, explored.record.key);
  assert.equal(unretrained.retrained, undefined, "not retrained");
  assert.equal(unretrained.record.metrics!.testAccuracy, unretrained.pruned!.accuracy, "the pruned model is the final one");
  const dense = await exploreMethod(ctx, { budget: 1, method: "dense" });
  assert.equal(dense.pruned, undefined, "a method that does not prune has no pruned model");
});

const SWEEP_CHILD = `
const { sweep, resolveConfig } = require(${JSON.stringify(path.join(__dirname, "..", "src", "experiment"))});
sweep(resolveConfig(JSON.parse(process.argv[2])), { dataDir: process.argv[3], workers: 1 })
  .then((r) => { process.send({ computed: r.computed, cached: r.cached, keys: r.records.map((x) => x.key + ":" + x.createdAt) }); process.exit(0); })
  .catch((e) => { console.error(e); process.exit(1); });
`;

test("two sweeps on one data folder at once: every run computed once, both see the same records", { timeout: 300_000 }, async () => {
  const dataDir = tmp("twice");
  const script = path.join(dataDir, "sweep-child.js");
  fs.writeFileSync(script, SWEEP_CHILD);
  const config = { ...tiny, methods: ["dense", "magnitude", "fw"], sparsity: [0.8, 0.9] };
  const runOnce = () =>
    new Promise<{ computed: number; cached: number; keys: string[] }>((resolve, reject) => {
      const child = fork(script, [JSON.stringify(config), dataDir], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
      child.on("message", (m) => resolve(m as { computed: number; cached: number; keys: string[] }));
      child.on("exit", (code) => code !== 0 && reject(new Error(`sweep exited ${code}`)));
    });
  const [a, b] = await Promise.all([runOnce(), runOnce()]);
  const runs = planRuns(resolveConfig(config)).length;
  assert.equal(a.computed + b.computed, runs, `each of the ${runs} runs computed exactly once (a: ${a.computed}, b: ${b.computed})`);
  assert.deepEqual([...a.keys].sort(), [...b.keys].sort(), "both report the same records");
  const files = fs.readdirSync(path.join(dataDir, "runs"));
  assert.equal(files.filter((f) => f.endsWith(".json")).length, runs);
  assert.equal(files.filter((f) => f.endsWith(".model")).length, runs, "each run's final model kept beside its record");
});

test("locks are leases: a live one blocks, one not renewed within the stale time is taken over whatever its owner", async () => {
  const dataDir = tmp("lock");
  process.env.FWPRUNE_LOCK_STALE_SECONDS = "2";
  try {
    const release = await tryLock(dataDir, "k");
    assert.ok(release, "free lock taken");
    assert.equal(await tryLock(dataDir, "k"), undefined, "held and renewed: not taken");
    await new Promise((resolve) => setTimeout(resolve, 2500));
    assert.equal(await tryLock(dataDir, "k"), undefined, "still renewed by its holder after the stale time");
    await release!();
    // A lock left by a process that is gone (any PID, any host): its lease is not renewed.
    fs.mkdirSync(`${lockPath(dataDir, "dead")}.lock`, { recursive: true });
    const old = new Date(Date.now() - 3000);
    fs.utimesSync(`${lockPath(dataDir, "dead")}.lock`, old, old);
    const taken = await tryLock(dataDir, "dead");
    assert.ok(taken, "stale lock taken over");
    await taken!();
    // A waiter says how long it has waited, and gives up once the work is done by someone else.
    const holder = await tryLock(dataDir, "busy");
    const waits: number[] = [];
    let done = false;
    setTimeout(() => (done = true), 600);
    const got = await waitForLock(dataDir, "busy", () => !done, { pollMs: 100, onWait: (s) => waits.push(s) });
    assert.equal(got, undefined);
    assert.ok(waits.length >= 3 && waits[waits.length - 1] > 0.3, `waited and said so: ${waits.join(", ")}`);
    await holder!();
  } finally {
    delete process.env.FWPRUNE_LOCK_STALE_SECONDS;
  }
});

test("a lost checkpoint is pre-trained again, bit for bit, and the runs on it give the same numbers", async () => {
  const dataDir = tmp("lost");
  const config = resolveConfig({ ...tiny, methods: ["magnitude"] });
  const first = await sweep(config, { dataDir, workers: 0 });
  const plan = planPretraining(config, planRuns(config))[0];
  const file = checkpointFile(dataDir, plan.key, 1);
  const bytes = fs.readFileSync(file);
  fs.rmSync(file);
  fs.rmSync(path.join(dataDir, "runs"), { recursive: true });
  assert.deepEqual(intactEpochs(dataDir, plan.key, 2), [2]);
  const second = await sweep(config, { dataDir, workers: 0 });
  assert.equal(second.computed, 2);
  assert.deepEqual(fs.readFileSync(file), bytes, "the same checkpoint again (seeded, deterministic training)");
  assert.deepEqual(
    second.records.map((r) => r.metrics?.testAccuracy),
    first.records.map((r) => r.metrics?.testAccuracy),
  );
  // A checkpoint corrupted in place (right length, one weight flipped) is not trusted either.
  const flipped = Buffer.from(bytes);
  flipped[flipped.length - 1000] ^= 0x10;
  fs.writeFileSync(file, flipped);
  fs.rmSync(path.join(dataDir, "runs"), { recursive: true });
  const third = await sweep(config, { dataDir, workers: 0 });
  assert.deepEqual(fs.readFileSync(file), bytes, "pre-trained again, not served");
  assert.deepEqual(
    third.records.map((r) => r.metrics?.testAccuracy),
    first.records.map((r) => r.metrics?.testAccuracy),
  );
});

test("no tensor outlives train, evaluate, the mask oracle or a whole run", async () => {
  await initBackend("wasm", { quiet: true });
  const dataDir = tmp("leaks");
  const config = resolveConfig({ ...tiny, budgets: [1], methods: ["dense-retrained", "fw-momentum"] });
  await sweep(config, { dataDir, workers: 0 }); // checkpoints, data and kernels loaded once
  const data = datasetFor(config.dataset);
  const before = tf.memory().numTensors;
  const model = createModel(modelLike(modelsOf(config)[0]), 1);
  await train(model, data.train, { epochs: 1, seed: 1 });
  evaluate(model, data.test);
  const oracle = cnnMaskOracle(model, data.train, { batchSize: 64, seed: 1, loss: "crossentropy" });
  oracle.evaluate(new Float32Array(oracle.n).fill(1), 0);
  oracle.dispose();
  disposeModel(model);
  for (const plan of planRuns(config)) {
    const record = await computeRecord(plan, dataDir, config);
    assert.equal(record.status, "ok", record.reason);
  }
  assert.equal(tf.memory().numTensors, before);
});

test("matched baselines: magnitude removes exactly the FW run's zeros; dense trains exactly the samples FW-momentum consumed", async () => {
  const dataDir = tmp("matched");
  const config = resolveConfig({
    ...tiny,
    budgets: [1],
    methods: [
      "fw",
      "fw-momentum",
      { name: "magnitude-matched-fw", method: "magnitude", match: { sparsity: "fw" } },
      { name: "dense-compute-matched", method: "dense-retrained", match: { samples: "fw-momentum" } },
    ],
    params: { fw: { iterations: 20, stepSize: 0.1 }, "fw-momentum": { iterations: 20, batchSize: 50 } },
  });
  const runs = planRuns(config);
  const byLabel = (label: string) => runs.find((r) => r.label === label)!;
  assert.deepEqual(byLabel("magnitude-matched-fw").dependsOn, [byLabel("fw").key]);
  assert.equal(byLabel("magnitude-matched-fw").inputs.match?.sparsity, byLabel("fw").key, "the matched run's key is part of its own");
  const result = await sweep(config, { dataDir, workers: 0 });
  const rec = (label: string) => result.records.find((r) => r.label === label)!.metrics!;
  assert.ok(rec("fw").sparsity > 0.9, `FW's rounding lands above the target (${rec("fw").sparsity})`);
  assert.equal(rec("magnitude-matched-fw").zeros, rec("fw").zeros, "exactly as many weights removed");
  assert.equal(rec("fw-momentum").samples.prune, 20 * 50);
  assert.equal(rec("dense-compute-matched").samples.retrain, 20 * 50 + 400, "FW-momentum's minibatches + its retraining epoch");
  assert.equal(rec("dense-compute-matched").samples.prune, 0);
  assert.throws(
    () => resolveConfig({ ...tiny, methods: ["fw", { method: "magnitude", match: { sparsity: "nope" } }] }),
    /methods\.1\.match\.sparsity: no entry of methods is called "nope"/,
  );
  assert.throws(
    () => resolveConfig({ ...tiny, methods: ["fw", { method: "dense-retrained", match: { sparsity: "fw" } }] }),
    /matching sparsity needs two methods that prune/,
  );
});

test("FLOPs: multiply-adds left on the non-zero weights, by hand on the paper CNN", () => {
  const flops = flopsOf(PRESETS.paper.model as never, { "conv1/kernel": 0.5, "conv2/kernel": 0, "dense1/kernel": 0.75, "dense2/kernel": 1 });
  const conv1 = 26 * 26 * 9 * 32;
  const conv2 = 11 * 11 * 9 * 32 * 64;
  const dense1 = 1600 * 128;
  const dense2 = 128 * 10;
  assert.equal(flops.dense, conv1 + conv2 + dense1 + dense2);
  assert.equal(flops.remaining, conv1 / 2 + conv2 + dense1 / 4);
  assert.equal(flops.speedup, (conv1 + conv2 + dense1 + dense2) / (conv1 / 2 + conv2 + dense1 / 4));
  assert.deepEqual(flops.perLayer["dense2/kernel"], { dense: dense2, remaining: 0 });
});
