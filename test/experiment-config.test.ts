import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  ConfigError,
  PRESETS,
  budgetsOf,
  canonicalJson,
  deepMerge,
  hashKey,
  loadConfig,
  parseShard,
  planPretraining,
  planRuns,
  resolveConfig,
  shardRuns,
  sweep,
  validateConfig,
} from "../src/experiment";
import { loadDataset } from "../src/datasets";
import { summarize, tQuantile975 } from "../src/analysis/stats";

const tiny = { preset: "quick", dataset: { name: "mnist-embedded", limitTrain: 500, limitTest: 200 }, pretrain: { epochs: 2 }, budgets: [1, 2] };

const params = (c: { methods: { name: string; params: Record<string, unknown> }[] }, name: string) => c.methods.find((m) => m.name === name)?.params;

test("presets validate and plan the runs the protocol describes", () => {
  const quick = validateConfig(PRESETS.quick);
  const paper = validateConfig(PRESETS.paper);
  assert.deepEqual(paper.dataset, { name: "mnist" });
  assert.deepEqual(paper.seeds, [0, 1, 2]);
  assert.equal(params(paper, "fw")?.iterations, 200);
  assert.equal(paper.inference.repeats, 5);
  assert.equal(params(quick, "fw")?.iterations, 100);
  assert.equal(params(quick, "fw-momentum")?.iterations, 100);
  assert.equal(quick.inference.repeats, 3);
  assert.deepEqual(quick.seeds, [0]);
  assert.deepEqual(
    quick.methods.map((m) => m.name),
    ["dense", "dense-retrained", "magnitude", "fw", "fw-momentum"],
  );
  assert.deepEqual(
    paper.methods.map((m) => m.name),
    ["dense", "dense-retrained", "magnitude", "fw", "fw-momentum", "magnitude-matched-fw", "magnitude-matched-fw-momentum", "dense-compute-matched"],
  );
  for (const c of [quick, paper]) {
    assert.deepEqual(budgetsOf(c), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.deepEqual(params(c, "fw"), {
      iterations: params(c, "fw")?.iterations,
      batchSize: 128,
      stepSize: { kind: "constant", gamma: 0.02 },
      tau: 0.5,
      lmoSampleFraction: 1,
      loss: "crossentropy",
    });
    assert.deepEqual(params(c, "fw-momentum")?.momentum, { kind: "constant", beta: 0.9 });
    assert.deepEqual(params(c, "magnitude"), { scope: "global", regrow: false });
    assert.equal(c.sparsity, 0.9);
  }
  // paper: 3 seeds × 10 budgets × 8 methods; quick: 1 seed × 10 budgets × 5 methods
  assert.equal(planRuns(paper).length, 240);
  assert.equal(planRuns(quick).length, 50);
});

test("invalid configs name the field, the value and what was expected", () => {
  const cases: [unknown, RegExp][] = [
    [{ ...tiny, sparsity: 1.5 }, /sparsity: .*less than 1.*got 1\.5/],
    [
      { ...tiny, methods: ["dense", "foo"] },
      /methods\.1\.method: no method is called "foo"; expected one of dense, dense-retrained, magnitude, random, fw, fw-momentum, structured-magnitude, structured-random, structured-fw, structured-fw-momentum \(got "foo"\)/,
    ],
    [{ ...tiny, pretrain: { epochs: 0 } }, /pretrain\.epochs: .*greater than 0.*got 0/],
    [{ ...tiny, dataset: { name: "idx", dir: "/no/such/folder" } }, /dataset\.dir: folder "\/no\/such\/folder" does not exist/],
    [{ ...tiny, budgets: [1, 3] }, /budgets\.1: budget 3 exceeds pretrain\.epochs = 2/],
    [
      { ...tiny, params: { fw: { stepSize: { kind: "constant", gamma: 2 } } } },
      /params\.fw\.stepSize: stepSize\.gamma: expected a number in \(0, 1\], got 2 \(got \{"kind":"constant","gamma":2\}\)/,
    ],
    [
      { ...tiny, methods: [{ method: "fw", params: { momentum: { kind: "mokhtari" } } }] },
      /methods\.0\.params: unknown parameter "momentum" of method "fw"; expected only iterations, batchSize, stepSize, tau, lmoSampleFraction, loss/,
    ],
    [{ ...tiny, params: { "fw-momentum": { momentum: "none" } } }, /params\.fw-momentum\.momentum: momentum: "none" is plain FW \(use method "fw"\)/],
    [{ ...tiny, params: { fw: { iterations: "many" } } }, /params\.fw\.iterations: Expected number, received string \(got "many"\)/],
    [{ ...tiny, params: { nope: {} } }, /params\.nope: no method is called "nope"/],
    [{ ...tiny, methods: [{ method: "dense", sparsity: 0.5 }] }, /methods\.0\.sparsity: method "dense" does not prune; expected no sparsity \(got 0\.5\)/],
    [{ ...tiny, seeds: [] }, /seeds: /],
    [{ ...tiny, typo: 1 }, /\(top level\): unknown key "typo"$/m],
  ];
  for (const [input, pattern] of cases) {
    assert.throws(
      () => resolveConfig(input),
      (err: Error) => err instanceof ConfigError && pattern.test(err.message),
      JSON.stringify(input),
    );
  }
});

test("a JSON file is deep-merged over the preset it names; without one, over the defaults", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-config-"));
  const file = path.join(dir, "mine.json");
  fs.writeFileSync(file, JSON.stringify({ preset: "quick", params: { fw: { iterations: 7 } } }));
  const c = loadConfig(file);
  assert.equal(params(c, "fw")?.iterations, 7);
  assert.equal(params(c, "fw")?.batchSize, 128);
  assert.equal(params(c, "fw-momentum")?.iterations, 100, "the preset's value for the other method stays");
  assert.equal(c.name, "mine");
  assert.equal(c.dataset.name, "mnist-embedded");
  fs.writeFileSync(file, JSON.stringify({ seeds: [4] }));
  assert.equal(loadConfig(file).dataset.name, "mnist");
  fs.writeFileSync(file, "{ not json");
  assert.throws(() => loadConfig(file), /mine\.json: not valid JSON/);
  assert.throws(
    () => loadConfig(path.join(dir, "absent.json")),
    /expected quick, paper, tradeoff, fashion, structured, architectures or the path of a JSON config file/,
  );
  assert.deepEqual(deepMerge({ a: { b: 1, c: [1, 2] } }, { a: { c: [3] } }), { a: { b: 1, c: [3] } });
  assert.deepEqual(params(resolveConfig({ preset: "quick", params: { "fw-momentum": { momentum: "mokhtari" } } }), "fw-momentum")?.momentum, {
    kind: "mokhtari",
  });
  const variant = resolveConfig({ preset: "quick", methods: [{ name: "fwm-0.5", method: "fw-momentum", params: { momentum: 0.5 } }] });
  assert.deepEqual(variant.methods[0].params.momentum, { kind: "constant", beta: 0.5 }, "an entry's own params over the preset's");
  assert.equal(variant.methods[0].params.iterations, 100);
  assert.deepEqual(resolveConfig({ preset: "quick", dataset: { name: "mnist", limitTrain: 10 } }).dataset, { name: "mnist", limitTrain: 10 });
});

test("keys: canonical JSON ignores key order; a parameter changes only its own method's keys", () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: undefined } }), '{"a":{"d":[1,{"x":1,"y":2}]},"b":1}');
  assert.equal(hashKey({ a: 1, b: 2 }), hashKey({ b: 2, a: 1 }));
  const base = resolveConfig({ ...tiny, methods: ["dense", "magnitude", "fw", "fw-momentum"] });
  const keysBy = (c: typeof base) => new Map(planRuns(c).map((r) => [`${r.label}/${r.budget}`, r.key]));
  const before = keysBy(base);
  const changed = (over: unknown) => {
    const after = keysBy(resolveConfig(deepMerge(structuredClone(tiny), { methods: ["dense", "magnitude", "fw", "fw-momentum"], ...(over as object) })));
    return [...before].filter(([id, key]) => after.get(id) !== key).map(([id]) => id.split("/")[0]);
  };
  assert.deepEqual([...new Set(changed({ params: { "fw-momentum": { momentum: { kind: "constant", beta: 0.5 } } } }))], ["fw-momentum"]);
  assert.deepEqual([...new Set(changed({ params: { fw: { iterations: 3 } } }))], ["fw"]);
  assert.deepEqual([...new Set(changed({ params: { magnitude: { regrow: true } } }))], ["magnitude"]);
  assert.equal(changed({ params: { fw: { iterations: 100 } } }).length, 0, "a parameter set to its preset value changes nothing");
  assert.deepEqual([...new Set(changed({ retrain: { epochs: 2 } }))].sort(), ["fw", "fw-momentum", "magnitude"]);
  assert.equal(changed({ pretrain: { epochs: 2 }, name: "renamed" }).length, 0, "max epochs and the name change no result");
  assert.equal(changed({ dataset: { limitTest: 100 } }).length, 8, "the test split changes every result");
  // ...but not the checkpoints: pre-training depends on the training side only
  const pretrainKeys = (c: typeof base) => planPretraining(c, planRuns(c)).map((p) => p.key);
  assert.deepEqual(pretrainKeys(resolveConfig({ ...tiny, dataset: { ...tiny.dataset, limitTest: 100 } })), pretrainKeys(base));
  assert.notDeepEqual(pretrainKeys(resolveConfig({ ...tiny, pretrain: { lr: 0.02 } })), pretrainKeys(base));
  // {name:"mnist-embedded"} and its explicit defaults are the same data, so the same keys
  const explicit = resolveConfig({ ...tiny, dataset: { ...tiny.dataset, trainSize: 8000, testSize: 2000, seed: 0 } });
  assert.deepEqual(
    planRuns(explicit).map((r) => r.key),
    planRuns(resolveConfig(tiny)).map((r) => r.key),
  );
});

test("shards partition the key-sorted run list", () => {
  const runs = planRuns(validateConfig(PRESETS.paper));
  const parts = [1, 2, 3].map((i) => shardRuns(runs, parseShard(`${i}/3`)));
  assert.equal(
    parts.reduce((n, p) => n + p.length, 0),
    runs.length,
  );
  assert.deepEqual(new Set(parts.flat().map((r) => r.key)), new Set(runs.map((r) => r.key)));
  assert.deepEqual(
    shardRuns(runs, parseShard("2/3")).map((r) => r.key),
    parts[1].map((r) => r.key),
  );
  for (const bad of ["0/2", "3/2", "1/0", "a/b", "1"]) assert.throws(() => parseShard(bad), /--shard: expected i\/n/);
});

test("statistics: mean, sample std and the t-based 95% interval, checked by hand", () => {
  const s = summarize([1, 2, 3]);
  assert.equal(s.mean, 2);
  assert.equal(s.std, 1);
  assert.ok(Math.abs(s.ci95 - (4.302653 * 1) / Math.sqrt(3)) < 1e-6);
  assert.equal(s.count, 3);
  const one = summarize([0.5, NaN]);
  assert.equal(one.count, 1);
  assert.ok(Number.isNaN(one.std) && Number.isNaN(one.ci95));
  // Table values of t_{0.975, df} (any statistics textbook), to the table's 3 decimals.
  for (const [df, t] of [
    [1, 12.706],
    [2, 4.303],
    [10, 2.228],
    [30, 2.042],
    [40, 2.021],
    [120, 1.98],
  ]) {
    assert.ok(Math.abs(tQuantile975(df) - t) < 5e-4, `t(${df}) = ${tQuantile975(df)}, table ${t}`);
  }
});

test("inputs checked before any work: sizes the data cannot give, absurd sizes, the class count, an unwritable folder", async () => {
  const cases: [unknown, RegExp][] = [
    [
      { ...tiny, dataset: { name: "mnist-embedded", trainSize: 9000, testSize: 2000 } },
      /dataset\.trainSize: trainSize \+ testSize = 11000, but the embedded set holds 10000 digits/,
    ],
    [{ ...tiny, dataset: { name: "mnist", limitTrain: 70000 } }, /dataset\.limitTrain: the training split holds 60000 images; expected at most 60000/],
    [{ ...tiny, dataset: { name: "mnist-embedded", limitTest: 5000 } }, /dataset\.limitTest: the test split holds 2000 images/],
    [{ ...tiny, pretrain: { epochs: 1e9 } }, /pretrain\.epochs: Number must be less than or equal to 1000 \(got 1000000000\)/],
    [{ ...tiny, retrain: { batchSize: 1e7 } }, /retrain\.batchSize: Number must be less than or equal to 60000/],
    [
      { ...tiny, model: { ...PRESETS.quick.model, layers: [{ type: "flatten" }, { type: "dense", units: 1e6 }] } },
      /model\.layers\.1\.units: Number must be less than or equal to 4096/,
    ],
    [
      { ...tiny, model: { ...PRESETS.quick.model, layers: [{ type: "flatten" }, { type: "dense", units: 7 }] } },
      /model\.layers\.1: the last layer must be dense with 10 units/,
    ],
    [{ ...tiny, pretrain: { lr: "fast" } }, /pretrain\.lr: Expected number, received string \(got "fast"\)/],
  ];
  for (const [input, pattern] of cases) {
    assert.throws(
      () => resolveConfig(input),
      (err: Error) => err instanceof ConfigError && pattern.test(err.message),
      `${JSON.stringify(input)}`,
    );
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-config-"));
  const file = path.join(dir, "a-file");
  fs.writeFileSync(file, "");
  await assert.rejects(sweep(resolveConfig(tiny), { dataDir: path.join(file, "data") }), /data folder .*a-file\/data: .*a-file is a file; expected a folder/);
});

/** Write an IDX image file and its label file (blank images) into `dir`. */
function writeIdxPair(dir: string, labelsBase: string, labels: number[], pixel = 0): void {
  const idx = (magic: number, dims: number[], body: Uint8Array) => {
    const header = Buffer.alloc(4 + 4 * dims.length);
    header.writeUInt32BE(magic, 0);
    dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
    return Buffer.concat([header, body]);
  };
  fs.writeFileSync(
    path.join(dir, labelsBase.replace("labels", "images").replace("idx1", "idx3")),
    idx(0x803, [labels.length, 28, 28], new Uint8Array(labels.length * 784).fill(pixel)),
  );
  fs.writeFileSync(path.join(dir, labelsBase), idx(0x801, [labels.length], Uint8Array.from(labels)));
}

test("a dataset's content is part of every key: new files in an IDX folder, new runs (test side: new run keys only)", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-digest-"));
  writeIdxPair(dir, "train-labels-idx1-ubyte", [0, 1, 2, 3]);
  writeIdxPair(dir, "t10k-labels-idx1-ubyte", [4, 5]);
  const config = () => resolveConfig({ ...tiny, dataset: { name: "idx", dir } });
  const keys = (c: ReturnType<typeof config>) => ({ runs: planRuns(c).map((r) => r.key), pretrain: planPretraining(c, planRuns(c)).map((p) => p.key) });
  const before = keys(config());
  assert.deepEqual(keys(config()), before, "same files, same keys");
  writeIdxPair(dir, "t10k-labels-idx1-ubyte", [4, 6]);
  const testChanged = keys(config());
  assert.deepEqual(testChanged.pretrain, before.pretrain, "a new test split keeps the checkpoints");
  assert.ok(
    testChanged.runs.every((k) => !before.runs.includes(k)),
    "but changes every run",
  );
  writeIdxPair(dir, "train-labels-idx1-ubyte", [0, 1, 2, 3], 7);
  assert.ok(
    keys(config()).pretrain.every((k) => !before.pretrain.includes(k)),
    "new training images, new checkpoints",
  );
});

test("an IDX folder with both x and x.gz, or a label outside 0..9, is refused with the file named", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-idx-"));
  writeIdxPair(dir, "train-labels-idx1-ubyte", [0, 1, 12]);
  writeIdxPair(dir, "t10k-labels-idx1-ubyte", [3]);
  assert.throws(() => loadDataset({ name: "idx", dir }), /train-labels-idx1-ubyte: label 12 at index 2; expected class labels 0\.\.9/);
  fs.copyFileSync(path.join(dir, "t10k-labels-idx1-ubyte"), path.join(dir, "t10k-labels-idx1-ubyte.gz"));
  assert.throws(
    () => resolveConfig({ ...tiny, dataset: { name: "idx", dir } }),
    /dataset\.dir: folder .* holds both t10k-labels-idx1-ubyte and t10k-labels-idx1-ubyte\.gz; expected one of them/,
  );
});
