// A whole run on one thread and on two: `fwprune run --preset quick --method fw-momentum --budget 2` from a cached
// checkpoint, `--threads 1` and `--threads 2` in each round, the order alternating, so that a slow minute slows both.
// Prints each round's wall times and their ratio, then the ratio of the means and the median ratio, then where the time
// went (the records' phases: FW, retraining, the final evaluation with the inference timing, and the rest of the wall
// time: the process's start, modules, data, checkpoint, the pruned model's evaluation, record and exit); and checks
// that the two records are the same apart from timings (they must be: results do not depend on the thread count).
// The checkpoint is pre-trained once, untimed, in a temporary data folder; each run's record is removed before it, so
// every run computes; the folder is removed at the end.
// Run after `npm run build`: node scripts/bench/run-threads.mjs [rounds]   (default 8)
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { performance } from "perf_hooks";
import { fileURLToPath } from "url";

const rounds = Number(process.argv[2] ?? 8);
if (!(Number.isInteger(rounds) && rounds >= 1)) throw new Error(`rounds: got ${process.argv[2]}; expected a positive whole number`);
const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), "../../dist/cli.js");
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-run-threads-"));
const runsDir = path.join(dataDir, "runs");

/** One run with `threads` threads: its wall time in seconds and its stored record. */
function run(threads) {
  fs.rmSync(runsDir, { recursive: true, force: true });
  const args = [cli, "run", "--preset", "quick", "--method", "fw-momentum", "--budget", "2", "--threads", String(threads), "--data-dir", dataDir];
  const start = performance.now();
  const done = spawnSync(process.execPath, args, { encoding: "utf8", env: { ...process.env, FWPRUNE_QUIET: "1" } });
  const seconds = (performance.now() - start) / 1000;
  if (done.status !== 0) throw new Error(`fwprune run --threads ${threads} failed (exit ${done.status}):\n${done.stderr}`);
  const file = fs.readdirSync(runsDir).find((f) => f.endsWith(".json"));
  return { seconds, record: JSON.parse(fs.readFileSync(path.join(runsDir, file), "utf8")) };
}

// Everything a record holds but timings and where and when it ran (the sparse paths are chosen by timing too).
const VOLATILE = /seconds|Seconds|Ms$|^(createdAt|host|pid|checksum|inferenceSparsePaths)$/;
const results = (value) =>
  Array.isArray(value)
    ? value.map(results)
    : value && typeof value === "object"
      ? Object.fromEntries(Object.entries(value).flatMap(([k, v]) => (VOLATILE.test(k) ? [] : [[k, results(v)]])))
      : value;

try {
  console.log("pre-training the quick preset's checkpoint (budget 2), untimed");
  const reference = results(run(2).record);
  const times = { 1: [], 2: [] };
  const phases = { 1: [], 2: [] };
  for (let r = 0; r < rounds; r++) {
    for (const threads of r % 2 ? [2, 1] : [1, 2]) {
      const { seconds, record } = run(threads);
      times[threads].push(seconds);
      const { prune, retrain, evaluate } = record.metrics.seconds;
      phases[threads].push({ prune, retrain, evaluate, rest: seconds - prune - retrain - evaluate });
      if (JSON.stringify(results(record)) !== JSON.stringify(reference))
        throw new Error(`round ${r + 1}, ${threads} threads: the record differs beyond its timings`);
    }
    const [one, two] = [times[1][r], times[2][r]];
    console.log(`round ${r + 1}: 1 thread ${one.toFixed(2)} s   2 threads ${two.toFixed(2)} s   ${(two / one).toFixed(3)}×`);
  }
  const mean = (v) => v.reduce((a, b) => a + b, 0) / v.length;
  const ratios = times[2].map((t, i) => t / times[1][i]).sort((a, b) => a - b);
  const median = ratios.length % 2 ? ratios[(ratios.length - 1) / 2] : (ratios[ratios.length / 2 - 1] + ratios[ratios.length / 2]) / 2;
  console.log(
    `means: 1 thread ${mean(times[1]).toFixed(2)} s, 2 threads ${mean(times[2]).toFixed(2)} s: ${(mean(times[2]) / mean(times[1])).toFixed(3)}× (median ratio ${median.toFixed(3)}×); records identical apart from timings`,
  );
  for (const [phase, label] of Object.entries({ prune: "FW", retrain: "retraining", evaluate: "evaluation and timing", rest: "the rest" })) {
    const [one, two] = [mean(phases[1].map((p) => p[phase])), mean(phases[2].map((p) => p[phase]))];
    console.log(`  ${label.padEnd(22)} 1 thread ${one.toFixed(2)} s   2 threads ${two.toFixed(2)} s   ${(two / one).toFixed(3)}×`);
  }
} finally {
  fs.rmSync(dataDir, { recursive: true, force: true });
}
