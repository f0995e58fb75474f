// The timing of notebook 07's schedule study, smaller: its two schedules beside the built-in, 2 seeds × budgets 1, 2
// (2,000 / 500 embedded digits, T = 50 FW iterations), once with 1 worker and once with 2, each from an empty data
// folder (pre-training included). Run after `npm run build`: node scripts/bench/schedule-study.mjs [1,2]
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

const seconds = {};
for (const workers of (process.argv[2] ?? "1,2").split(",").map(Number)) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `fwprune-study-w${workers}-`));
  const file = path.join(dataDir, "config.json");
  fs.writeFileSync(file, JSON.stringify(config));
  const ctx = fw.notebookConfig({ FWPRUNE_PRESET: file, FWPRUNE_DATA_DIR: dataDir });
  const start = performance.now();
  const study = await fw.compareSchedules(ctx, variants, { seeds: 2, workers });
  seconds[workers] = (performance.now() - start) / 1000;
  console.log(
    `workers ${workers}: ${seconds[workers].toFixed(1)} s (${study.sweep.computed} runs computed); load ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(" ")}`,
  );
  fs.rmSync(dataDir, { recursive: true, force: true });
}
if (seconds[1] && seconds[2]) console.log(`2 workers / 1 worker: ${(seconds[2] / seconds[1]).toFixed(2)}`);
