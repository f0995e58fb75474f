import type { RunRecord } from "../experiment/store";
import { ciHalfWidth, summarize } from "./stats";

/**
 * The paper's claims as paired comparisons. Two methods' runs are paired when they share a checkpoint (same seed,
 * same budget), so checkpoint-to-checkpoint variation cancels. The unit of replication is the seed: budgets of one
 * seed share one pre-training run, so they are not independent. Hence:
 * - per budget: the mean over seeds of the paired difference, with its 95% t-interval (df = seeds − 1);
 * - pooled: for each seed the mean of its paired differences over the budgets, then the mean over seeds and its 95%
 *   t-interval. This averages the claim over the budget range the paper studies without pretending its ten budgets
 *   are ten independent replicates.
 * With one seed there is no interval, and every verdict is "inconclusive".
 */

export type Verdict = "holds" | "does not hold" | "inconclusive" | "not measured";

export interface Interval {
  /** Number of seeds (paired replicates). */
  n: number;
  mean: number;
  lower: number;
  upper: number;
}

/** A paired difference a − b of one quantity, per budget and pooled. */
export interface PairedDifference {
  perBudget: ({ budget: number } & Interval)[];
  pooled: Interval;
  /** The (seed, budget) pairs that entered. */
  pairs: number;
}

function interval(values: number[]): Interval {
  const s = summarize(values);
  const half = ciHalfWidth(s.std, s.count);
  return { n: s.count, mean: s.mean, lower: s.mean - half, upper: s.mean + half };
}

type Quantity = (r: RunRecord) => number;

/**
 * A per-run value of method `label` (undefined: that run has no pair), summarised per budget over seeds and pooled
 * (per seed over budgets, then over seeds).
 */
export function seedIntervals(records: RunRecord[], label: string, value: (r: RunRecord) => number | undefined): PairedDifference {
  const values: { seed: number; budget: number; d: number }[] = [];
  for (const r of records.filter((x) => x.status === "ok" && x.metrics && x.label === label)) {
    const d = value(r);
    if (d !== undefined) values.push({ seed: r.seed, budget: r.budget, d });
  }
  const budgets = [...new Set(values.map((x) => x.budget))].sort((x, y) => x - y);
  const seeds = [...new Set(values.map((x) => x.seed))].sort((x, y) => x - y);
  const perBudget = budgets.map((budget) => ({ budget, ...interval(values.filter((x) => x.budget === budget).map((x) => x.d)) }));
  const perSeed = seeds.map((seed) => summarize(values.filter((x) => x.seed === seed).map((x) => x.d)).mean);
  return { perBudget, pooled: interval(perSeed), pairs: values.length };
}

/** quantity(a) − quantity(b) over the checkpoints (seed, budget) both ran on; `b` may pick the partner by seed. */
export function pairedDifference(records: RunRecord[], a: string, b: string | ((seed: number) => RunRecord | undefined), quantity: Quantity): PairedDifference {
  const ok = records.filter((r) => r.status === "ok" && r.metrics);
  const partner =
    typeof b === "function" ? (r: RunRecord) => b(r.seed) : (r: RunRecord) => ok.find((o) => o.label === b && o.seed === r.seed && o.budget === r.budget);
  return seedIntervals(records, a, (r) => {
    const other = partner(r);
    return other ? quantity(r) - quantity(other) : undefined;
  });
}

/** "holds" if the interval lies on the claimed side of the threshold, "does not hold" if on the other, else inconclusive. */
export function verdictOf(iv: Interval, side: "above" | "below", threshold = 0): Verdict {
  if (iv.n === 0) return "not measured";
  if (!(Number.isFinite(iv.lower) && Number.isFinite(iv.upper))) return "inconclusive";
  const [claimed, other] = side === "above" ? [iv.lower > threshold, iv.upper < threshold] : [iv.upper < threshold, iv.lower > threshold];
  return claimed ? "holds" : other ? "does not hold" : "inconclusive";
}

/** A type alias (not an interface) so rows pass as plain table rows. */
export type ClaimRow = {
  claim: string;
  /** The comparison and the criterion, in words. */
  test: string;
  /** Pooled over budgets: mean paired difference [95% interval], in the unit the test names. */
  measured: string;
  verdict: Verdict;
  /** Per budget: the same interval, for the reader who wants to see where it holds. */
  perBudget: string;
  /** Where the test stops. */
  scope: string;
};

export interface ClaimOptions {
  /** The method the paper champions (default "fw-momentum"). */
  subject?: string;
  /** "Good accuracy after 1–2 epochs": within this many accuracy points (fraction) of the best dense checkpoint (default 0.01). */
  earlyTolerance?: number;
  /** "Minimal inference overhead": inference time / the dense checkpoint's at most 1 + this (default 0.10). */
  overheadTolerance?: number;
  /** Appended to every row's scope (data set, model, sparsity range). */
  scope?: string;
}

const points = (x: number) => `${x >= 0 ? "+" : ""}${(100 * x).toFixed(2)}`;
const plain = (x: number) => x.toFixed(3);
const times = (x: number) => `×${x.toFixed(2)}`;

/**
 * The dense checkpoint's inference time / the run's model through fwprune's sparse kernels (timed in the same
 * interleaved rounds), over the runs whose records have it (records made before the sparse kernels do not).
 */
export function sparseSpeedup(records: RunRecord[], label: string): PairedDifference {
  return seedIntervals(records, label, (r) => {
    const sparse = r.metrics!.inferenceSparseMedianSeconds;
    return sparse === undefined ? undefined : r.metrics!.inferenceDenseMedianSeconds / sparse;
  });
}

/** Mean theoretical speed-up (dense multiply-adds / those on non-zero weights) over the runs with a sparse timing. */
function flopBound(records: RunRecord[], label: string): number {
  const runs = records.filter((r) => r.status === "ok" && r.label === label && r.metrics?.inferenceSparseMedianSeconds !== undefined);
  return runs.reduce((s, r) => s + r.metrics!.flops.speedup, 0) / runs.length;
}

function describe(iv: Interval, fmt: (x: number) => string): string {
  if (iv.n === 0) return "no paired runs";
  if (iv.n < 2) return `${fmt(iv.mean)} (one seed: no interval)`;
  return `${fmt(iv.mean)} [${fmt(iv.lower)}, ${fmt(iv.upper)}] (${iv.n} seeds)`;
}

/**
 * Each claim of the paper tested on the runs as a paired comparison (see the top of this file): the verdict comes
 * from the pooled 95% interval, whichever way it points. Comparisons with methods absent from `records` are
 * "not measured".
 */
export function paperClaims(records: RunRecord[], opts: ClaimOptions = {}): ClaimRow[] {
  const subject = opts.subject ?? "fw-momentum";
  const earlyTol = opts.earlyTolerance ?? 0.01;
  const overheadTol = opts.overheadTolerance ?? 0.1;
  const scope = opts.scope ?? describeScope(records);
  const labels = new Set(records.filter((r) => r.status === "ok").map((r) => r.label));
  const accuracy: Quantity = (r) => r.metrics!.testAccuracy;
  const sparsity: Quantity = (r) => r.metrics!.sparsity;
  const rows: ClaimRow[] = [];

  const compare = (claim: string, other: string, quantity: Quantity, what: string, note = "") => {
    const test = `${subject} − ${other}: ${what}, paired by checkpoint; holds if the 95% interval is above 0${note}`;
    if (!labels.has(subject) || !labels.has(other)) {
      rows.push({ claim, test, measured: `no ${labels.has(subject) ? other : subject} runs`, verdict: "not measured", perBudget: "", scope });
      return;
    }
    const d = pairedDifference(records, subject, other, quantity);
    const fmt = what.includes("points") ? points : plain;
    rows.push({
      claim,
      test,
      measured: describe(d.pooled, fmt),
      verdict: verdictOf(d.pooled, "above"),
      perBudget: d.perBudget.map((b) => `${b.budget}: ${describe(b, fmt)}`).join("; "),
      scope,
    });
  };

  compare("more accurate than simple (magnitude) pruning, each at its own sparsity", "magnitude", accuracy, "test accuracy in points");
  compare(
    "sparser than simple (magnitude) pruning",
    "magnitude",
    sparsity,
    "sparsity in points",
    " (FW's rounding keeps at most the k weights magnitude keeps, so this half holds by construction unless FW keeps all k)",
  );
  compare(
    "more accurate than magnitude pruning at the same sparsity",
    `magnitude-matched-${subject}`,
    accuracy,
    "test accuracy in points",
    ` (magnitude pruned to exactly ${subject}'s achieved sparsity, same checkpoint, same retraining)`,
  );
  compare("more accurate than plain Frank-Wolfe", "fw", accuracy, "test accuracy in points");
  compare("sparser than plain Frank-Wolfe", "fw", sparsity, "sparsity in points");
  compare("more accurate than the dense model", "dense", accuracy, "test accuracy in points", " (the checkpoint itself)");
  compare(
    "more accurate than the dense model given the same extra epochs",
    "dense-retrained",
    accuracy,
    "test accuracy in points",
    " (the checkpoint trained the retraining epochs, unpruned)",
  );
  compare(
    "more accurate than the dense model given the same compute",
    "dense-compute-matched",
    accuracy,
    "test accuracy in points",
    ` (the checkpoint trained as many extra samples as ${subject} consumed: its FW minibatches and its retraining)`,
  );

  // Less pre-training suffices: the subject at budgets 1–2 against the best dense checkpoint of the same seed.
  const early = `${subject} at budget 1–2 − the best dense checkpoint of the same seed (any budget): test accuracy in points; holds if the 95% interval is above −${(100 * earlyTol).toFixed(1)}`;
  if (!labels.has(subject) || !labels.has("dense")) {
    rows.push({
      claim: "good accuracy already after 1–2 pre-training epochs",
      test: early,
      measured: "no dense or subject runs",
      verdict: "not measured",
      perBudget: "",
      scope,
    });
  } else {
    const best = (seed: number) =>
      records.filter((r) => r.status === "ok" && r.label === "dense" && r.seed === seed).sort((x, y) => accuracy(y) - accuracy(x))[0];
    const d = pairedDifference(
      records.filter((r) => r.label !== subject || r.budget <= 2),
      subject,
      best,
      accuracy,
    );
    rows.push({
      claim: "good accuracy already after 1–2 pre-training epochs",
      test: early,
      measured: describe(d.pooled, points),
      verdict: verdictOf(d.pooled, "above", -earlyTol),
      perBudget: d.perBudget.map((b) => `${b.budget}: ${describe(b, points)}`).join("; "),
      scope,
    });
  }

  // Minimal inference-time overhead: each run times its model interleaved with its dense checkpoint (and, in records
  // that have it, the same model through fwprune's sparse kernels, in the same rounds).
  const ratioTest =
    `${subject}'s inference time / its dense checkpoint's (timed interleaved in the same run), minus 1; holds if the 95% interval is below ${overheadTol.toFixed(2)}` +
    "; beside it, the speed-up through fwprune's sparse kernels (dense checkpoint's time / the sparse model's, same rounds) and the FLOP bound";
  if (!labels.has(subject)) {
    rows.push({ claim: "minimal inference-time overhead", test: ratioTest, measured: "no subject runs", verdict: "not measured", perBudget: "", scope });
  } else {
    const d = seedIntervals(records, subject, (r) => r.metrics!.inferenceMedianSeconds / r.metrics!.inferenceDenseMedianSeconds - 1);
    const sparse = sparseSpeedup(records, subject);
    const sparseText =
      sparse.pairs === 0
        ? "; sparse kernels: not measured (these records predate them)"
        : `; through the sparse kernels ${describe(sparse.pooled, times)} faster than the dense checkpoint (FLOP bound ${times(flopBound(records, subject))}; ${sparse.pairs} run${sparse.pairs === 1 ? "" : "s"})`;
    rows.push({
      claim: "minimal inference-time overhead",
      test: ratioTest,
      measured: describe(d.pooled, plain) + sparseText,
      verdict: verdictOf(d.pooled, "below", overheadTol),
      perBudget:
        d.perBudget.map((b) => `${b.budget}: ${describe(b, plain)}`).join("; ") +
        (sparse.pairs === 0 ? "" : `; sparse speed-up ${sparse.perBudget.map((b) => `${b.budget}: ${describe(b, times)}`).join("; ")}`),
      scope,
    });
  }
  return rows;
}

/** "MNIST (60000/10000), paper-cnn, target sparsity 0.9, budgets 1–10, 3 seeds" from the records themselves. */
export function describeScope(records: RunRecord[]): string {
  const ok = records.filter((r) => r.status === "ok");
  if (ok.length === 0) return "no runs";
  const config = ok[0].config as { dataset?: { name?: string }; model?: { name?: string; init?: string } | { name?: string; init?: string }[] } | undefined;
  const models = [config?.model ?? []].flat();
  const model = models.find((m) => m.name === ok[0].model) ?? models[0];
  const targets = [...new Set(ok.map((r) => r.sparsityTarget).filter((s): s is number => s !== null))].sort();
  const budgets = [...new Set(ok.map((r) => r.budget))].sort((a, b) => a - b);
  const seeds = new Set(ok.map((r) => r.seed)).size;
  return [
    `data ${config?.dataset?.name ?? "?"}`,
    `model ${model?.name ?? "?"} (${model?.init ?? "glorot-uniform"} init)`,
    `target sparsity ${targets.join(", ") || "-"}`,
    `budgets ${budgets[0]}–${budgets[budgets.length - 1]}`,
    `${seeds} seed${seeds === 1 ? "" : "s"}`,
  ].join(", ");
}

/** One method against a reference, paired by checkpoint: accuracy and sparsity differences, per budget and pooled. */
export interface PairedComparison {
  variant: string;
  against: string;
  accuracy: PairedDifference;
  sparsity: PairedDifference;
  /** From the pooled 95% intervals: "holds" if the variant is more accurate (sparser) than `against`, and so on. */
  verdict: { accuracy: Verdict; sparsity: Verdict };
}

/** Each of `variants` (default: every other label among the records) minus `against`, as paired differences (see the top). */
export function compareAgainst(records: RunRecord[], against: string, variants?: string[]): PairedComparison[] {
  const labels = variants ?? [...new Set(records.map((r) => r.label))].filter((l) => l !== against);
  const targets = [
    ...new Set(
      records
        .filter((r) => r.label === against || labels.includes(r.label))
        .map((r) => r.sparsityTarget)
        .filter((t) => t !== null),
    ),
  ];
  if (targets.length > 1)
    throw new Error(
      `compareAgainst: the runs have several targets (${targets.join(", ")}); runs are paired by checkpoint at one target: compare one target's runs at a time`,
    );
  return labels.map((variant) => {
    const accuracy = pairedDifference(records, variant, against, (r) => r.metrics!.testAccuracy);
    const sparsity = pairedDifference(records, variant, against, (r) => r.metrics!.sparsity);
    return { variant, against, accuracy, sparsity, verdict: { accuracy: verdictOf(accuracy.pooled, "above"), sparsity: verdictOf(sparsity.pooled, "above") } };
  });
}

/** A type alias so rows pass as plain table rows. */
export type ComparisonRow = { variant: string; against: string; claim: string; budget: string; measured: string; verdict: Verdict };

/** The comparisons as a table: per variant, the claims "more accurate" and "sparser", pooled and then per budget. */
export function comparisonRows(comparisons: PairedComparison[]): ComparisonRow[] {
  const rows: ComparisonRow[] = [];
  for (const c of comparisons) {
    for (const [claim, d] of [
      ["more accurate (test accuracy, points)", c.accuracy],
      ["sparser (sparsity, points)", c.sparsity],
    ] as const) {
      const row = (budget: string, iv: Interval) => ({
        variant: c.variant,
        against: c.against,
        claim,
        budget,
        measured: describe(iv, points),
        verdict: verdictOf(iv, "above"),
      });
      rows.push(row("pooled", d.pooled), ...d.perBudget.map((b) => row(String(b.budget), b)));
    }
  }
  return rows;
}
