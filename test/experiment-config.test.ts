import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  ConfigError, PRESETS, budgetsOf, canonicalJson, deepMerge, hashKey, loadConfig, parseShard, planPretraining, planRuns,
  resolveConfig, shardRuns, validateConfig,
} from "../src/experiment";
import { summarize, tQuantile975 } from "../src/report/frame";

const tiny = { preset: "quick", dataset: { name: "mnist-embedded", limitTrain: 500, limitTest: 200 }, pretrain: { epochs: 2 }, budgets: [1, 2] };

test("presets validate and plan the runs the protocol describes", () => {
  const quick = validateConfig(PRESETS.quick);
  const paper = validateConfig(PRESETS.paper);
  assert.deepEqual(paper.dataset, { name: "mnist" });
  assert.deepEqual(paper.seeds, [0, 1, 2]);
  assert.equal(paper.fw.iterations, 200);
  assert.equal(paper.inference.repeats, 5);
  assert.equal(quick.fw.iterations, 100);
  assert.equal(quick.inference.repeats, 3);
  assert.deepEqual(quick.seeds, [0]);
  for (const c of [quick, paper]) {
    assert.deepEqual(c.methods.map((m) => m.method), ["dense", "dense-retrained", "magnitude", "fw", "fw-momentum"]);
    assert.deepEqual(budgetsOf(c), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.deepEqual(c.fw.stepSize, { kind: "constant", gamma: 0.02 });
    assert.equal(c.sparsity, 0.9);
  }
  // paper: 3 seeds × 10 budgets × 5 methods; quick: 1 seed × 10 budgets × 5 methods
  assert.equal(planRuns(paper).length, 150);
  assert.equal(planRuns(quick).length, 50);
});

test("invalid configs name the field, the value and what was expected", () => {
  const cases: [unknown, RegExp][] = [
    [{ ...tiny, sparsity: 1.5 }, /sparsity: .*less than 1.*got 1\.5/],
    [{ ...tiny, methods: ["dense", "foo"] }, /methods\.1\.method: .*Expected 'dense' \| .*received 'foo'/],
    [{ ...tiny, pretrain: { epochs: 0 } }, /pretrain\.epochs: .*greater than 0.*got 0/],
    [{ ...tiny, dataset: { name: "idx", dir: "/no/such/folder" } }, /dataset\.dir: folder "\/no\/such\/folder" does not exist/],
    [{ ...tiny, budgets: [1, 3] }, /budgets\.1: budget 3 exceeds pretrain\.epochs = 2/],
    [{ ...tiny, fw: { stepSize: { kind: "constant", gamma: 2 } } }, /fw\.stepSize\.gamma/],
    [{ ...tiny, seeds: [] }, /seeds: /],
    [{ ...tiny, typo: 1 }, /Unrecognized key.*typo/],
  ];
  for (const [input, pattern] of cases) {
    assert.throws(() => resolveConfig(input), (err: Error) => err instanceof ConfigError && pattern.test(err.message), JSON.stringify(input));
  }
});

test("a JSON file is deep-merged over the preset it names; without one, over the defaults", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-config-"));
  const file = path.join(dir, "mine.json");
  fs.writeFileSync(file, JSON.stringify({ preset: "quick", fw: { iterations: 7 } }));
  const c = loadConfig(file);
  assert.equal(c.fw.iterations, 7);
  assert.equal(c.fw.batchSize, 128);
  assert.equal(c.name, "mine");
  assert.equal(c.dataset.name, "mnist-embedded");
  fs.writeFileSync(file, JSON.stringify({ seeds: [4] }));
  assert.equal(loadConfig(file).dataset.name, "mnist");
  fs.writeFileSync(file, "{ not json");
  assert.throws(() => loadConfig(file), /mine\.json: not valid JSON/);
  assert.throws(() => loadConfig(path.join(dir, "absent.json")), /expected "quick", "paper" or the path of a JSON config file/);
  assert.deepEqual(deepMerge({ a: { b: 1, c: [1, 2] } }, { a: { c: [3] } }), { a: { b: 1, c: [3] } });
  assert.deepEqual(resolveConfig({ preset: "quick", fw: { momentum: { kind: "mokhtari" } } }).fw.momentum, { kind: "mokhtari" });
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
  assert.deepEqual([...new Set(changed({ fw: { momentum: { kind: "constant", beta: 0.5 } } }))], ["fw-momentum"]);
  assert.deepEqual([...new Set(changed({ fw: { iterations: 3 } }))].sort(), ["fw", "fw-momentum"]);
  assert.deepEqual([...new Set(changed({ magnitude: { regrow: true } }))], ["magnitude"]);
  assert.deepEqual([...new Set(changed({ retrain: { epochs: 2 } }))].sort(), ["fw", "fw-momentum", "magnitude"]);
  assert.equal(changed({ pretrain: { epochs: 2 }, name: "renamed" }).length, 0, "max epochs and the name change no result");
  assert.equal(changed({ dataset: { limitTest: 100 } }).length, 8, "the test split changes every result");
  // ...but not the checkpoints: pre-training depends on the training side only
  const pretrainKeys = (c: typeof base) => planPretraining(c, planRuns(c)).map((p) => p.key);
  assert.deepEqual(pretrainKeys(resolveConfig({ ...tiny, dataset: { ...tiny.dataset, limitTest: 100 } })), pretrainKeys(base));
  assert.notDeepEqual(pretrainKeys(resolveConfig({ ...tiny, pretrain: { lr: 0.02 } })), pretrainKeys(base));
  // {name:"mnist-embedded"} and its explicit defaults are the same data, so the same keys
  const explicit = resolveConfig({ ...tiny, dataset: { ...tiny.dataset, trainSize: 8000, testSize: 2000, seed: 0 } });
  assert.deepEqual(planRuns(explicit).map((r) => r.key), planRuns(resolveConfig(tiny)).map((r) => r.key));
});

test("shards partition the key-sorted run list", () => {
  const runs = planRuns(validateConfig(PRESETS.paper));
  const parts = [1, 2, 3].map((i) => shardRuns(runs, parseShard(`${i}/3`)));
  assert.equal(parts.reduce((n, p) => n + p.length, 0), runs.length);
  assert.deepEqual(new Set(parts.flat().map((r) => r.key)), new Set(runs.map((r) => r.key)));
  assert.deepEqual(shardRuns(runs, parseShard("2/3")).map((r) => r.key), parts[1].map((r) => r.key));
  for (const bad of ["0/2", "3/2", "1/0", "a/b", "1"]) assert.throws(() => parseShard(bad), /--shard: expected i\/n/);
});

test("statistics: mean, sample std and the t-based 95% interval, checked by hand", () => {
  const s = summarize([1, 2, 3]);
  assert.equal(s.mean, 2);
  assert.equal(s.std, 1);
  assert.ok(Math.abs(s.ci95 - (4.303 * 1) / Math.sqrt(3)) < 1e-12);
  assert.equal(s.count, 3);
  const one = summarize([0.5, NaN]);
  assert.equal(one.count, 1);
  assert.ok(Number.isNaN(one.std) && Number.isNaN(one.ci95));
  assert.equal(tQuantile975(1), 12.706);
  assert.ok(Math.abs(tQuantile975(40) - 2.021) < 1e-3);
  assert.ok(Math.abs(tQuantile975(120) - 1.980) < 1e-3);
});
