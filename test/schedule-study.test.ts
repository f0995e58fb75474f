import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { compareAgainst } from "../src/analysis/claims";
import { tQuantile975 } from "../src/analysis/stats";
import { RunRecord, runFile } from "../src/experiment";
import { notebookConfig } from "../src/notebook";
import { decodeFunctions, encodeFunctions, outsideNames } from "../src/prune/function-source";
import { compareSchedules, seedList, studyFigure } from "../src/schedule-study";

// Tiny real runs: 500 training digits, 200 test digits, budgets 1 and 2, FW-momentum with 5 iterations.
const tiny = {
  preset: "quick",
  dataset: { name: "mnist-embedded", limitTrain: 500, limitTest: 200 },
  pretrain: { epochs: 2 },
  budgets: [1, 2],
  methods: ["fw-momentum"],
  params: { "fw-momentum": { iterations: 5, batchSize: 64 } },
  inference: { repeats: 1 },
};
const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `fwprune-${name}-`));

function tinyContext(config: object = tiny) {
  const dataDir = tmp("schedules");
  const file = path.join(dataDir, "tiny.json");
  fs.writeFileSync(file, JSON.stringify(config));
  return notebookConfig({ FWPRUNE_PRESET: file, FWPRUNE_DATA_DIR: dataDir, FWPRUNE_WORKERS: "0" });
}

/** What a run computes (its timings and provenance aside): equal inputs must give these bit for bit. */
function computed(r: RunRecord) {
  const m = r.metrics!;
  return {
    status: r.status,
    seed: r.seed,
    budget: r.budget,
    history: r.history,
    details: r.details,
    metrics: {
      testAccuracy: m.testAccuracy,
      testLoss: m.testLoss,
      prunedAccuracy: m.prunedAccuracy,
      prunedLoss: m.prunedLoss,
      sparsity: m.sparsity,
      zeros: m.zeros,
      sparsityPerLayer: m.sparsityPerLayer,
      samples: m.samples,
    },
  };
}

test("a schedule that uses an outside variable is refused, naming it, before anything runs", async () => {
  const ctx = tinyContext();
  const gamma = 0.05;
  const scale = 2;
  await assert.rejects(
    compareSchedules(
      ctx,
      [{ name: "closure", method: "fw-momentum", params: { stepSize: { name: "γ from outside", fn: (t: number) => gamma / (1 + t / scale) } } }],
      { seeds: 2 },
    ),
    /stepSize "γ from outside": the function uses "gamma", "scale", defined outside its own body/,
  );
  await assert.rejects(
    compareSchedules(ctx, [{ name: "closure", method: "fw-momentum", params: { momentum: { name: "β", fn: (t: number) => (t > 0 ? gamma : 0) } } }]),
    /momentum "β": the function uses "gamma"/,
  );
  assert.equal(fs.existsSync(path.join(ctx.dataDir, "runs")), false, "no run started");
  assert.equal(fs.existsSync(path.join(ctx.dataDir, "checkpoints")), false, "no pre-training started");
  // Its own variables, inner functions, parameters and standard globals are fine; so is a method's source.
  assert.deepEqual(
    outsideNames((t: number) => {
      const a = Math.min(1, t);
      function half(x: number) {
        return x / 2;
      }
      return half(a) + Number.EPSILON;
    }),
    [],
  );
  assert.deepEqual(
    outsideNames(
      {
        fn(t: number) {
          return t * scale;
        },
      }.fn,
    ),
    ["scale"],
  );
  assert.deepEqual(
    outsideNames((t: number) => {
      const o = { gamma };
      return o.gamma * t;
    }),
    ["gamma"],
    "a shorthand property reads the outside variable",
  );
  // A function crosses as its source and comes back working.
  const sent = JSON.parse(JSON.stringify(encodeFunctions({ a: [1, { fn: (t: number) => 0.5 ** t }] }))) as { a: [number, { fn: (t: number) => number }] };
  assert.equal(decodeFunctions(sent).a[1].fn(3), 0.125);
});

test(
  "a custom schedule equal to the built-in gives its records bit for bit, a pooled difference of 0, inconclusive; worker and notebook process compute the same records",
  { timeout: 600_000 },
  async () => {
    const ctx = tinyContext();
    assert.deepEqual(seedList(ctx.config, 3), [0, 1, 2]);
    const variants = [
      { name: "custom γ = 0.02", method: "fw-momentum", params: { stepSize: { name: "γ = 0.02", fn: (_t: number) => 0.02 } } },
      {
        name: "decaying",
        method: "fw-momentum",
        params: {
          stepSize: { name: "γ = 0.06/(1 + t/2)", fn: (t: number) => 0.06 / (1 + t / 2) },
          momentum: { name: "warm-up", fn: (t: number) => Math.min(0.95, t / (t + 1)) },
        },
      },
    ];
    const study = await compareSchedules(ctx, variants, { seeds: 2, workers: 2 });
    assert.equal(study.sweep.computed, 12, "2 seeds × 2 budgets × (built-in + 2 variants)");
    assert.equal(study.records.length, 12);
    assert.ok(
      study.records.every((r) => r.status === "ok"),
      JSON.stringify(study.records.map((r) => r.reason)),
    );
    const [same, decaying] = study.comparisons;
    assert.equal(same.against, "fw-momentum");
    const builtIn = study.records.filter((r) => r.label === "fw-momentum");
    const custom = study.records.filter((r) => r.label === "custom γ = 0.02");
    assert.equal(custom.length, 4);
    for (const r of custom) {
      const partner = builtIn.find((b) => b.seed === r.seed && b.budget === r.budget)!;
      assert.notEqual(r.key, partner.key, "the custom schedule is a run of its own");
      assert.deepEqual(computed(r), computed(partner), `seed ${r.seed} budget ${r.budget}: bit-identical to the built-in`);
    }
    for (const d of [same.accuracy, same.sparsity]) {
      assert.deepEqual([d.pooled.n, d.pooled.mean, d.pooled.lower, d.pooled.upper], [2, 0, 0, 0]);
      assert.equal(d.pairs, 4);
      assert.deepEqual(
        d.perBudget.map((b) => [b.budget, b.mean]),
        [
          [1, 0],
          [2, 0],
        ],
      );
    }
    assert.deepEqual(same.verdict, { accuracy: "inconclusive", sparsity: "inconclusive" });
    assert.equal(decaying.variant, "decaying");
    const decayed = study.records.find((r) => r.label === "decaying")!.history as { stepSize: number; beta: number }[];
    assert.deepEqual([decayed[1].stepSize, decayed[2].beta], [0.06 / (1 + 1 / 2), 2 / 3], "the schedules rebuilt in the worker ran");
    assert.deepEqual(
      study.rows.filter((r) => r.variant === "custom γ = 0.02" && r.budget === "pooled").map((r) => r.verdict),
      ["inconclusive", "inconclusive"],
    );
    const figure = studyFigure(study);
    assert.equal(figure.data.filter((t) => !String(t.name).endsWith("band")).length, 3, "one line per variant and the reference");

    // The variants' runs again, now computed in this process from the same functions: the same records.
    for (const r of [...custom, ...study.records.filter((x) => x.label === "decaying")]) fs.rmSync(runFile(ctx.dataDir, r.key));
    const here = await compareSchedules(ctx, variants, { seeds: 2, workers: 0 });
    assert.deepEqual([here.sweep.computed, here.sweep.cached], [8, 4]);
    for (const r of here.records) {
      const before = study.records.find((x) => x.key === r.key)!;
      assert.equal(r.label, before.label);
      assert.deepEqual(computed(r), computed(before), `${r.label} seed ${r.seed} budget ${r.budget}: worker and notebook process agree`);
    }
    assert.ok(here.records.filter((r) => r.label !== "fw-momentum").every((r) => r.pid === process.pid));
    assert.ok(
      study.records.filter((r) => r.label !== "fw-momentum").every((r) => r.pid !== process.pid),
      "first computed by the workers",
    );
  },
);

test("compareAgainst: the pooled interval is over seeds of per-seed means (hand computation)", () => {
  // Accuracy differences a − b: seed 0: budgets 1, 2 → 0.01, 0.03 (mean 0.02); seed 1: 0.00, 0.02 (0.01); seed 2: 0.04, 0.02 (0.03).
  const diffs = [
    [0.01, 0.03],
    [0.0, 0.02],
    [0.04, 0.02],
  ];
  const record = (label: string, seed: number, budget: number, accuracy: number) =>
    ({ label, seed, budget, status: "ok", sparsityTarget: 0.9, metrics: { testAccuracy: accuracy, sparsity: 0.9 } }) as unknown as RunRecord;
  const records = diffs.flatMap((ds, seed) => ds.flatMap((d, i) => [record("b", seed, i + 1, 0.5), record("a", seed, i + 1, 0.5 + d)]));
  const [c] = compareAgainst(records, "b");
  assert.equal(c.variant, "a");
  const means = [0.02, 0.01, 0.03];
  const half = (tQuantile975(2) * 0.01) / Math.sqrt(3); // sample sd of the per-seed means: 0.01
  assert.ok(
    Math.abs(c.accuracy.pooled.mean - 0.02) < 1e-12 && Math.abs(c.accuracy.pooled.upper - c.accuracy.pooled.mean - half) < 1e-12,
    JSON.stringify(c.accuracy.pooled),
  );
  assert.equal(c.verdict.accuracy, means.every((m) => m > 0) && 0.02 - half > 0 ? "holds" : "inconclusive");
  assert.equal(c.verdict.sparsity, "inconclusive", "no difference in sparsity");
  assert.throws(() => compareAgainst([...records, { ...records[0], sparsityTarget: 0.8 } as RunRecord], "b"), /several targets \(0\.9, 0\.8\)/);
});

const CLI = path.join(__dirname, "..", "dist", "cli.js");

test(
  "fwprune results --against NAME prints every method of the config paired against NAME",
  { skip: !fs.existsSync(CLI) && "dist/cli.js not built", timeout: 300_000 },
  () => {
    const dir = tmp("against");
    const config = { ...tiny, methods: ["fw-momentum", { name: "fw-momentum β=0.5", method: "fw-momentum", params: { momentum: 0.5 } }], seeds: [0, 1] };
    fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(config));
    const env = { ...process.env, FWPRUNE_QUIET: "1" };
    const args = ["--preset", path.join(dir, "config.json"), "--data-dir", path.join(dir, "data")];
    const swept = spawnSync(process.execPath, [CLI, "sweep", ...args, "--workers", "2", "--no-progress"], { env, encoding: "utf8" });
    assert.equal(swept.status, 0, swept.stderr);
    const results = spawnSync(process.execPath, [CLI, "results", ...args, "--against", "fw-momentum"], { env, encoding: "utf8" });
    assert.equal(results.status, 0, results.stderr);
    assert.match(results.stdout, /each method − fw-momentum, paired by checkpoint/);
    assert.match(
      results.stdout,
      /^fw-momentum β=0\.5\s+fw-momentum\s+more accurate \(test accuracy, points\)\s+pooled\s+[+-]\d+\.\d\d \[[+-]\d+\.\d\d, [+-]\d+\.\d\d\] \(2 seeds\)\s+(holds|does not hold|inconclusive)$/m,
    );
    assert.match(results.stdout, /^fw-momentum β=0\.5\s+fw-momentum\s+sparser \(sparsity, points\)\s+2\s+/m);
    const bad = spawnSync(process.execPath, [CLI, "results", ...args, "--against", "nope"], { env, encoding: "utf8" });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /--against: "nope" is not a method of config "config"; expected one of fw-momentum, fw-momentum β=0\.5/);
  },
);
