// The timing of notebook 07's schedule study, smaller: its two schedules beside the built-in, 2 seeds × budgets 1, 2
// (2,000 / 500 embedded digits, T = 50 FW iterations), once with 1 worker and once with 2, each from an empty data
// folder (pre-training included). Run after `npm run build`: node scripts/bench/schedule-study.mjs [1,2]
// A longer list alternates the settings (e.g. 1,2,1,2 on a busy machine): each pair is a round with its own ratio.
// A single worker's kernels use every core by default (2 threads here), 2 workers 1 thread each; with FWPRUNE_THREADS=1
// every worker has one thread, and the ratio measures the worker processes alone.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { performance } from "perf_hooks";
import fw from "../../dist/index.js";

const config = {
  preset: "quick",
  name: "bench-study",
  dataset: { name: "mnist-embedded", limitTrain: 2000, limitTest: 500 },
  pretrain: { epochs: 2 },
  budgets: [1, 2],
  methods: ["fw-momentum"],
  params: { "fw-momentum": { iterations: 50 } },
  inference: { repeats: 1 },
};
const variants = [
  { name: "decaying γ", method: "fw-momentum", params: { stepSize: { name: "γ = 0.06/(1 + t/20)", fn: (t) => 0.06 / (1 + t / 20) } } },
  { name: "warm-up β", method: "fw-momentum", params: { momentum: { name: "β = min(0.95, t/(t+5))", fn: (t) => Math.min(0.95, t / (t + 5)) } } },
];

const seconds = [];
// What the runs computed (timings aside): every setting must give the same.
const results = new Set();
for (const workers of (process.argv[2] ?? "1,2").split(",").map(Number)) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `fwprune-study-w${workers}-`));
  const file = path.join(dataDir, "config.json");
  fs.writeFileSync(file, JSON.stringify(config));
  const ctx = fw.notebookConfig({ FWPRUNE_PRESET: file, FWPRUNE_DATA_DIR: dataDir });
  const start = performance.now();
  const study = await fw.compareSchedules(ctx, variants, { seeds: 2, workers });
  seconds.push({ workers, seconds: (performance.now() - start) / 1000 });
  console.log(
    `workers ${workers}: ${seconds.at(-1).seconds.toFixed(1)} s (${study.sweep.computed} runs computed); load ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(" ")}`,
  );
  fs.rmSync(dataDir, { recursive: true, force: true });
  const computed = (r) => [r.key, r.metrics?.testAccuracy, r.metrics?.testLoss, r.metrics?.prunedAccuracy, r.metrics?.zeros, JSON.stringify(r.history)];
  results.add(JSON.stringify(study.records.map(computed)));
}
console.log(`records: ${results.size === 1 ? "the same keys and results in every study" : `DIFFER between studies (${results.size} versions)`}`);
for (let i = 0; i + 1 < seconds.length; i += 2) {
  const [one, two] = [seconds[i], seconds[i + 1]].sort((a, b) => a.workers - b.workers);
  if (one.workers === 1 && two.workers === 2) console.log(`round ${i / 2 + 1}: 2 workers / 1 worker: ${(two.seconds / one.seconds).toFixed(2)}`);
}
