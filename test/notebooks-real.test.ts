// A real reproduction notebook (04, FW vs FW-momentum) executed end to end through Jupyter + tslab on a tiny
// config given the way users give one (FWPRUNE_PRESET=<json file>, FWPRUNE_DATA_DIR=<folder>); plus the pure
// pieces the notebooks rely on: the claims table, multiply-add counts, notebook selection and output checks.
import { test, after } from "node:test";
import * as assert from "node:assert/strict";
import { ensureBuilt } from "./build-dist";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PAPER_CNN, multiplyAdds } from "../src/model";
import { focusBudget, notebookConfig } from "../src/notebook";
import { executeNotebook, Notebook, outputRole, REPO_ROOT } from "../src/report/notebooks";
import { closeBrowser } from "../src/report/png";
import { listNotebooks, problemOutputs } from "../src/reproduce";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-notebooks-real-"));
after(async () => {
  await closeBrowser();
  fs.rmSync(tmp, { recursive: true, force: true });
});


const TINY = {
  preset: "quick",
  name: "tiny-notebook-test",
  dataset: { name: "mnist-embedded", trainSize: 8000, testSize: 2000, seed: 0, limitTrain: 600, limitTest: 300 },
  pretrain: { epochs: 1 },
  budgets: [1],
  methods: ["dense", "magnitude", "fw", "fw-momentum"],
  params: { fw: { iterations: 10 }, "fw-momentum": { iterations: 10 } },
  inference: { repeats: 1, batchSize: 1000 },
};

test("notebook 04 runs end to end through Jupyter + tslab on a tiny config from FWPRUNE_PRESET, with figures and no errors", async () => {
  ensureBuilt();
  const presetFile = path.join(tmp, "tiny.json");
  fs.writeFileSync(presetFile, JSON.stringify(TINY));
  const dataDir = path.join(tmp, "data");
  const out = path.join(tmp, "04-fw-momentum.ipynb");
  const shipped = path.join(REPO_ROOT, "notebooks", "04-fw-momentum.ipynb");
  const shippedBefore = fs.readFileSync(shipped, "utf8");
  const started = Date.now();
  await executeNotebook(shipped, {
    outPath: out,
    env: { FWPRUNE_PRESET: presetFile, FWPRUNE_DATA_DIR: dataDir, FWPRUNE_WORKERS: "0" },
    timeoutSec: 240,
  });
  const seconds = (Date.now() - started) / 1000;
  assert.equal(fs.readFileSync(shipped, "utf8"), shippedBefore, "the shipped notebook is left as it was");

  const nb = JSON.parse(fs.readFileSync(out, "utf8")) as Notebook;
  assert.deepEqual(problemOutputs(nb), [], "no error or stderr output");
  const outputs = nb.cells.flatMap((c) => c.outputs ?? []);
  const text = outputs.filter((o) => o.output_type === "stream").map((o) => [o.text ?? ""].flat().join("")).join("");
  assert.match(text, /config "tiny-notebook-test"/, "the kernel got the config from FWPRUNE_PRESET");
  assert.match(text, /budget 1: fw 0\.\d+ at sparsity 0\.9\d*; fw-momentum/, "it studies budget 1, the only one");
  const statics = outputs.filter((o) => outputRole(o) === "figure-static");
  const interactive = outputs.filter((o) => outputRole(o) === "figure-interactive");
  assert.ok(statics.length >= 4, `figures with a static PNG: ${statics.length}`);
  assert.equal(interactive.length, statics.length, "every figure also has its interactive version");
  for (const o of statics) {
    const png = Buffer.from(String(o.data!["image/png"]), "base64");
    assert.equal(png.subarray(1, 4).toString(), "PNG");
    assert.ok(png.length > 5000, `a drawn chart (${png.length} bytes)`);
  }
  assert.ok(fs.existsSync(path.join(dataDir, "runs")), "runs were cached under FWPRUNE_DATA_DIR");
  console.log(`# notebook 04 on the tiny config: ${seconds.toFixed(1)} s`);
});

test("multiplyAdds counts the paper CNN's arithmetic by hand", () => {
  assert.deepEqual(multiplyAdds(PAPER_CNN), [
    { kernel: "conv1/kernel", weights: 3 * 3 * 1 * 32, multiplyAdds: 26 * 26 * 3 * 3 * 1 * 32 },
    { kernel: "conv2/kernel", weights: 3 * 3 * 32 * 64, multiplyAdds: 11 * 11 * 3 * 3 * 32 * 64 },
    { kernel: "dense1/kernel", weights: 1600 * 128, multiplyAdds: 1600 * 128 },
    { kernel: "dense2/kernel", weights: 128 * 10, multiplyAdds: 128 * 10 },
  ]);
});

test("notebookConfig reads FWPRUNE_PRESET / FWPRUNE_DATA_DIR / FWPRUNE_WORKERS; focusBudget prefers 2", () => {
  const quick = notebookConfig({});
  assert.equal(quick.config.name, "quick");
  assert.equal(quick.dataDir, path.join(REPO_ROOT, "data"));
  assert.equal(focusBudget(quick.config), 2);
  const file = path.join(tmp, "tiny-config.json");
  fs.writeFileSync(file, JSON.stringify(TINY));
  const tiny = notebookConfig({ FWPRUNE_PRESET: file, FWPRUNE_DATA_DIR: "/tmp/x", FWPRUNE_WORKERS: "0" });
  assert.deepEqual([tiny.config.name, tiny.dataDir, tiny.workers, focusBudget(tiny.config)], ["tiny-notebook-test", "/tmp/x", 0, 1]);
  assert.throws(() => notebookConfig({ FWPRUNE_PRESET: "/no/such.json" }), /no such file/);
  assert.throws(() => notebookConfig({ FWPRUNE_WORKERS: "two" }), /FWPRUNE_WORKERS: expected an integer ≥ 0, got "two"/);
});

test("reproduce picks notebooks 01..07 (not the smoke check), by number or name, and flags error/stderr outputs", () => {
  const all = listNotebooks().map((f) => path.basename(f));
  assert.deepEqual(all.slice(0, 7).map((f) => f.slice(0, 3)), ["01-", "02-", "03-", "04-", "05-", "06-", "07-"]);
  assert.ok(!all.some((f) => f.startsWith("00-")));
  assert.deepEqual(listNotebooks(undefined, ["04", "02-magnitude-pruning"]).map((f) => path.basename(f)), ["04-fw-momentum.ipynb", "02-magnitude-pruning.ipynb"]);
  assert.throws(() => listNotebooks(undefined, ["99"]), /--only "99": expected exactly one notebook .* none matches/);
  const nb: Notebook = {
    nbformat: 4, nbformat_minor: 5, metadata: {},
    cells: [
      { cell_type: "code", source: "", outputs: [{ output_type: "stream", name: "stdout", text: "fine" }] },
      { cell_type: "code", source: "", outputs: [{ output_type: "stream", name: "stderr", text: ["failed: fw budget 1"] }, { output_type: "error", ename: "Error", evalue: "boom" }] },
    ],
  };
  assert.deepEqual(problemOutputs(nb), [{ cell: 2, kind: "stderr", text: "failed: fw budget 1" }, { cell: 2, kind: "error", text: "Error: boom" }]);
});
