import * as fw from "./src";
const preset = process.argv[2] ?? "paper";
const dataDir = process.argv[3] ?? "/work/paper-data";
const config = fw.loadConfig(preset);
const records = fw.planRuns(config).map((r) => ({ r, rec: fw.readRecord(dataDir, r.key) })).flatMap(({ r, rec }) => (rec.kind === "ok" ? [{ ...rec.record, label: r.label }] : []));
console.log(`${records.length} records`);
const rows = fw.aggregateRecords(records);
const pm = (s: fw.Stats, k = 100, d = 2) => `${(k * s.mean).toFixed(d)} ± ${(k * s.ci95).toFixed(d)}`;
const budgets = [...new Set(rows.map((r) => r.budget))].sort((a, b) => a - b);
const labels = [...new Set(rows.map((r) => r.label))];
if (preset !== "tradeoff") {
  console.log(`| method | ${budgets.join(" | ")} |`);
  for (const l of labels) console.log(`| ${l} acc | ${budgets.map((b) => { const r = rows.find((x) => x.label === l && x.budget === b); return r ? pm(r.testAccuracy) : "-"; }).join(" | ")} |`);
  for (const l of labels.filter((l) => !l.startsWith("dense"))) console.log(`| ${l} sparsity | ${budgets.map((b) => { const r = rows.find((x) => x.label === l && x.budget === b); return r ? pm(r.sparsity) : "-"; }).join(" | ")} |`);
  for (const c of fw.paperClaims(records)) console.log(`| ${c.claim} | ${c.measured} | **${c.verdict}** |`);
  console.log(fw.describeScope(records));
} else {
  for (const b of budgets) for (const t of [0.95, 0.98]) for (const l of labels) {
    const r = rows.find((x) => x.label === l && x.budget === b && x.sparsityTarget === t);
    if (r) console.log(`budget ${b} target ${t} ${l}: acc ${pm(r.testAccuracy)} sparsity ${pm(r.sparsity)} speedup ${pm(r.flopsSpeedup, 1, 1)} (n=${r.testAccuracy.count})`);
  }
}
// wall time breakdown
const sum = (f: (m: fw.RunMetrics) => number) => records.reduce((a, r) => a + (r.metrics ? f(r.metrics) : 0), 0);
console.log(`run seconds: prune ${sum((m) => m.seconds.prune).toFixed(0)}, retrain ${sum((m) => m.seconds.retrain).toFixed(0)}, evaluate+timing ${sum((m) => m.seconds.evaluate).toFixed(0)}, total ${sum((m) => m.seconds.total).toFixed(0)}`);
const pre = fw.planPretraining(config, fw.planRuns(config)).map((p) => fw.readPretrainInfo(dataDir, p.key));
console.log(`pretraining seconds: ${pre.map((i) => i ? i.epochSeconds.reduce((a, b) => a + b, 0).toFixed(0) : "?").join(", ")}`);
