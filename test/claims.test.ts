import { test } from "node:test";
import * as assert from "node:assert/strict";
import { pairedDifference, paperClaims, verdictOf } from "../src/analysis/claims";
import { RunMetrics, RunRecord } from "../src/experiment/store";

function record(label: string, budget: number, seed: number, accuracy: number, sparsity = 0, inferenceRatio = 1): RunRecord {
  const metrics = { testAccuracy: accuracy, sparsity, inferenceMedianSeconds: inferenceRatio, inferenceDenseMedianSeconds: 1 } as RunMetrics;
  return {
    format: 3,
    key: `${label}/${budget}/${seed}`,
    status: "ok",
    label,
    method: label,
    seed,
    budget,
    sparsityTarget: null,
    inputs: {} as RunRecord["inputs"],
    config: {},
    backend: "wasm",
    versions: { fwprune: "0", tfjs: "0", node: "0" },
    createdAt: "",
    host: "",
    pid: 0,
    metrics,
  };
}

test("paired difference: per budget over seeds and pooled (per-seed means over budgets), checked by hand", () => {
  // a − b: seed 0: +0.02 (budget 1), +0.04 (budget 2); seed 1: +0.01, +0.03; seed 2: +0.03, +0.05.
  const d = [
    [0.02, 0.04],
    [0.01, 0.03],
    [0.03, 0.05],
  ];
  const records = d.flatMap((byBudget, seed) => byBudget.flatMap((diff, i) => [record("a", i + 1, seed, 0.9 + diff), record("b", i + 1, seed, 0.9)]));
  records.push(record("a", 3, 0, 0.99)); // no partner at budget 3: not paired
  const r = pairedDifference(records, "a", "b", (x) => x.metrics!.testAccuracy);
  assert.equal(r.pairs, 6);
  // Budget 1: 0.02, 0.01, 0.03 → mean 0.02, sd 0.01, half-width t(0.975, 2)·0.01/√3 = 4.302653·0.01/1.732051 = 0.0248414.
  const half = (4.302653 * 0.01) / Math.sqrt(3);
  assert.equal(r.perBudget.length, 2);
  assert.ok(Math.abs(r.perBudget[0].mean - 0.02) < 1e-12);
  assert.ok(Math.abs(r.perBudget[0].upper - (0.02 + half)) < 1e-6);
  // Pooled: per-seed means 0.03, 0.02, 0.04 → mean 0.03, sd 0.01, the same half-width.
  assert.equal(r.pooled.n, 3);
  assert.ok(Math.abs(r.pooled.mean - 0.03) < 1e-12);
  assert.ok(Math.abs(r.pooled.lower - (0.03 - half)) < 1e-6);
  assert.ok(Math.abs(r.pooled.upper - (0.03 + half)) < 1e-6);
});

test("verdicts: holds above the threshold, does not hold below it, inconclusive across it or with one seed", () => {
  assert.equal(verdictOf({ n: 3, mean: 0.03, lower: 0.005, upper: 0.055 }, "above"), "holds");
  assert.equal(verdictOf({ n: 3, mean: -0.03, lower: -0.055, upper: -0.005 }, "above"), "does not hold");
  assert.equal(verdictOf({ n: 3, mean: 0.01, lower: -0.01, upper: 0.03 }, "above"), "inconclusive");
  assert.equal(verdictOf({ n: 1, mean: 0.05, lower: NaN, upper: NaN }, "above"), "inconclusive");
  assert.equal(verdictOf({ n: 0, mean: NaN, lower: NaN, upper: NaN }, "above"), "not measured");
  assert.equal(verdictOf({ n: 3, mean: 0.02, lower: 0.01, upper: 0.03 }, "below", 0.1), "holds");
  assert.equal(verdictOf({ n: 3, mean: -0.005, lower: -0.008, upper: -0.002 }, "above", -0.01), "holds", "within the tolerance");
});

test("paperClaims: each claim from constructed runs, whichever way the numbers point", () => {
  const records: RunRecord[] = [];
  for (const seed of [0, 1, 2]) {
    for (const budget of [1, 2, 3]) {
      const e = 0.001 * seed; // seed-to-seed variation, shared by every method on one checkpoint
      records.push(record("dense", budget, seed, 0.9 + 0.03 * budget + e));
      records.push(record("dense-retrained", budget, seed, 0.95 + 0.01 * budget + e));
      records.push(record("magnitude", budget, seed, 0.94 + 0.01 * budget + e, 0.9));
      records.push(record("magnitude-matched-fw-momentum", budget, seed, 0.945 + 0.01 * budget + e + 0.002 * (seed - 1), 0.93));
      records.push(record("fw", budget, seed, 0.93 + 0.01 * budget + e, 0.96));
      records.push(record("fw-momentum", budget, seed, 0.945 + 0.01 * budget + e, 0.93, 1.01 + 0.01 * seed));
    }
  }
  const claims = paperClaims(records);
  const verdict = (start: string) => claims.find((c) => c.claim === start)?.verdict;
  assert.equal(verdict("more accurate than simple (magnitude) pruning, each at its own sparsity"), "holds"); // +0.5 points everywhere
  assert.equal(verdict("sparser than simple (magnitude) pruning"), "holds");
  // matched: differences −0.2, 0, +0.2 points around 0
  assert.equal(verdict("more accurate than magnitude pruning at the same sparsity"), "inconclusive");
  assert.equal(verdict("more accurate than plain Frank-Wolfe"), "holds");
  assert.equal(verdict("sparser than plain Frank-Wolfe"), "does not hold");
  assert.equal(verdict("more accurate than the dense model given the same extra epochs"), "does not hold"); // −0.5 points
  assert.equal(verdict("more accurate than the dense model given the same compute"), "not measured");
  // Best dense = budget 3 (0.99); fw-momentum at budgets 1–2: 0.955, 0.965 → 3.5 and 2.5 points below: beyond 1 point.
  assert.equal(verdict("good accuracy already after 1–2 pre-training epochs"), "does not hold");
  assert.equal(verdict("minimal inference-time overhead"), "holds"); // ratios 1.01..1.03
  assert.match(claims.find((c) => c.claim.startsWith("more accurate than simple"))!.measured, /^\+0\.50 \[\+0\.50, \+0\.50\] \(3 seeds\)$/);
  assert.match(claims[0].scope, /budgets 1–3, 3 seeds/);
  assert.match(claims.find((c) => c.claim === "minimal inference-time overhead")!.measured, /sparse kernels: not measured/);
});

test("the inference claim reports the sparse kernels' measured speed-up where records have it (hand-computed)", () => {
  const records: RunRecord[] = [];
  // seed s, budget b: dense checkpoint 1 s, sparse model 1/(3 + s) s → speed-ups 3, 4, 5 per seed; FLOP bound 5.
  for (const seed of [0, 1, 2]) {
    for (const budget of [1, 2]) {
      const r = record("fw-momentum", budget, seed, 0.95, 0.94, 1.0);
      r.metrics = { ...r.metrics!, inferenceSparseMedianSeconds: 1 / (3 + seed), flops: { dense: 5, remaining: 1, speedup: 5, perLayer: {} } };
      records.push(r);
    }
  }
  records.push(record("fw-momentum", 3, 0, 0.95, 0.94, 1.0)); // an older record: no sparse timing, left out of the speed-up
  const row = paperClaims(records).find((c) => c.claim === "minimal inference-time overhead")!;
  // Per-seed means 3, 4, 5 → mean 4, sd 1, half-width t(0.975, 2)/√3 = 2.484.
  assert.match(row.measured, /through the sparse kernels ×4\.00 \[×1\.52, ×6\.48\] \(3 seeds\) faster than the dense checkpoint \(FLOP bound ×5\.00; 6 runs\)/);
  assert.match(row.perBudget, /sparse speed-up 1: ×4\.00/);
});
