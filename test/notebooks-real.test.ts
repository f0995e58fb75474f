// Every reproduction notebook (01..07) executed end to end through Jupyter + tslab on a tiny config given the way
// users give one (FWPRUNE_PRESET=<json file>, FWPRUNE_DATA_DIR=<folder>), in order, sharing one cache; a notebook
// whose check fails stops the run; plus the pure pieces the notebooks rely on: the claims table, multiply-add
// counts, notebook selection and output checks.
import { test, after } from "node:test";
import * as assert from "node:assert/strict";
import { ensureBuilt } from "./build-dist";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PAPER_CNN, multiplyAdds } from "../src/model";
import { RunRecord, recordChecksum } from "../src/experiment/store";
import { planRuns, resolveConfig } from "../src/experiment";
import { focusBudget, notebookConfig } from "../src/notebook";
import { executeNotebook, Notebook, NotebookCellError, NotebookOutput, outputRole, REPO_ROOT } from "../src/report/notebooks";
import { closeBrowser } from "../src/report/png";
import { listNotebooks, missingRecordsReason, problemOutputs } from "../src/reproduce";
import { TINY, TINY_ARCHITECTURES, TINY_FASHION, TINY_STRUCTURED, TINY_TRADEOFF } from "./tiny-config";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-notebooks-real-"));
after(async () => {
  await closeBrowser();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const presetFile = path.join(tmp, "tiny.json");
fs.writeFileSync(presetFile, JSON.stringify(TINY));
const tradeoffFile = path.join(tmp, "tiny-tradeoff.json");
fs.writeFileSync(tradeoffFile, JSON.stringify(TINY_TRADEOFF));
const fashionFile = path.join(tmp, "tiny-fashion.json");
fs.writeFileSync(fashionFile, JSON.stringify(TINY_FASHION));
const structuredFile = path.join(tmp, "tiny-structured.json");
fs.writeFileSync(structuredFile, JSON.stringify(TINY_STRUCTURED));
const architecturesFile = path.join(tmp, "tiny-architectures.json");
fs.writeFileSync(architecturesFile, JSON.stringify(TINY_ARCHITECTURES));
const dataDir = path.join(tmp, "data");
const env = {
  FWPRUNE_PRESET: presetFile,
  FWPRUNE_TRADEOFF_PRESET: tradeoffFile,
  FWPRUNE_FASHION_PRESET: fashionFile,
  FWPRUNE_STRUCTURED_PRESET: structuredFile,
  FWPRUNE_ARCHITECTURES_PRESET: architecturesFile,
  FWPRUNE_DATA_DIR: dataDir,
  FWPRUNE_WORKERS: "0",
};

/** Execute a shipped notebook on the tiny config into tmp; the shipped file must stay as it was. */
async function executeTiny(name: string): Promise<{ outputs: NotebookOutput[]; text: string; seconds: number }> {
  ensureBuilt();
  const shipped = path.join(REPO_ROOT, "notebooks", name);
  const before = fs.readFileSync(shipped, "utf8");
  const out = path.join(tmp, name);
  const started = Date.now();
  await executeNotebook(shipped, { outPath: out, env, timeoutSec: 240 });
  const seconds = (Date.now() - started) / 1000;
  assert.equal(fs.readFileSync(shipped, "utf8"), before, `the shipped ${name} is left as it was`);
  const nb = JSON.parse(fs.readFileSync(out, "utf8")) as Notebook;
  assert.deepEqual(problemOutputs(nb), [], `${name}: no error or stderr output`);
  const outputs = nb.cells.flatMap((c) => c.outputs ?? []);
  const text = outputs
    .filter((o) => o.output_type === "stream")
    .map((o) => [o.text ?? ""].flat().join(""))
    .join("");
  assert.match(text, /config "tiny-(notebook|tradeoff|fashion|structured|architectures)-test"/, `${name}: the kernel got its config from the environment`);
  return { outputs, text, seconds };
}

function assertFigures(name: string, outputs: NotebookOutput[], expected: number): void {
  const statics = outputs.filter((o) => outputRole(o) === "figure-static");
  const interactive = outputs.filter((o) => outputRole(o) === "figure-interactive");
  assert.equal(statics.length, expected, `${name}: figures with a static PNG`);
  assert.equal(interactive.length, statics.length, `${name}: every figure also has its interactive version`);
  for (const o of statics) {
    const png = Buffer.from(String(o.data!["image/png"]), "base64");
    assert.equal(png.subarray(1, 4).toString(), "PNG");
    assert.ok(png.length > 5000, `${name}: a drawn chart (${png.length} bytes)`);
  }
}

/** Figures each notebook shows (every showFigure call runs once on the tiny config). */
const FIGURES: Record<string, number> = {
  "01-data-and-dense-baseline.ipynb": 4,
  "02-magnitude-pruning.ipynb": 5,
  "03-frank-wolfe.ipynb": 5,
  "04-fw-momentum.ipynb": 4,
  "05-budget-sweep.ipynb": 7,
  "06-inference-time.ipynb": 4,
  "07-schedule-playground.ipynb": 5,
  "08-tradeoff.ipynb": 2,
  "09-fashion-mnist.ipynb": 2,
  "10-structured.ipynb": 2,
  "11-prune-your-own-model.ipynb": 1,
  "12-architectures.ipynb": 3,
};

const notebookNames = listNotebooks().map((f) => path.basename(f));

test("the figure counts above cover every reproduction notebook", () => {
  assert.deepEqual(notebookNames, Object.keys(FIGURES));
});

for (const name of notebookNames) {
  test(`notebook ${name} runs through Jupyter + tslab on the tiny config, with its figures and no errors`, async () => {
    const { outputs, text, seconds } = await executeTiny(name);
    assertFigures(name, outputs, FIGURES[name]);
    if (name.startsWith("03-")) {
      assert.match(text, /iteration 0 agrees: loss \d\.\d{4}, gap /, "the hand-built iteration matches the library's");
      assert.match(text, /this notebook's FW run reproduces the stored fw run exactly/);
    }
    if (name.startsWith("10-")) assert.match(text, /masked vs surgered logits on 300 test images: max \|Δ\| \/ max \|logit\| = /, "the surgery check ran");
    if (name.startsWith("11-"))
      assert.match(
        text,
        /fw-momentum: plain tfjs loads the same 16 layers, scores [\d.]+ \(= report\.accuracy\.final\)/,
        "the export was checked through plain tfjs",
      );
    if (name.startsWith("04-")) assert.match(text, /budget 1: fw 0\.\d+ at sparsity 0\.9\d*; fw-momentum/, "it studies budget 1, the only one");
    console.log(`# ${name} on the tiny config: ${seconds.toFixed(1)} s`); // a timing to read: speed lives in benchmarks, not tests
  });
}

test("notebook 03 fails when its FW run and the sweep's disagree (a cached sweep record is altered)", async (t) => {
  const runsDir = path.join(dataDir, "runs");
  // The main config's fw run at budget 1 (the trade-off notebook's fw runs share the folder, at other targets).
  const fwRun = planRuns(resolveConfig(TINY)).find((r) => r.label === "fw" && r.budget === 1);
  const fwFile = fwRun && path.join(runsDir, `${fwRun.key}.json`);
  assert.ok(fwFile && fs.existsSync(fwFile), "the notebooks above cached the sweep's fw run at budget 1");
  const original = fs.readFileSync(fwFile, "utf8");
  t.after(() => fs.writeFileSync(fwFile, original));
  const altered = JSON.parse(original) as RunRecord;
  (altered.history as { loss: number }[])[3].loss += 0.01;
  altered.checksum = recordChecksum(altered); // a valid record with other numbers (as another code version would write)
  fs.writeFileSync(fwFile, JSON.stringify(altered));
  await assert.rejects(executeTiny("03-frank-wolfe.ipynb"), (err: unknown) => {
    assert.ok(err instanceof NotebookCellError, String(err));
    assert.match(err.message, /the FW run computed here \(\d+ weights kept\) differs from the stored fw run at budget 1 \(\d+ kept, other losses\)/);
    return true;
  });
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

test("reproduce runs the trade-off, Fashion-MNIST and structured notebooks only when their records are all there", () => {
  const tradeoff = path.join(REPO_ROOT, "notebooks", "08-tradeoff.ipynb");
  const emptyDir = fs.mkdtempSync(path.join(tmp, "empty-"));
  assert.match(
    missingRecordsReason(tradeoff, emptyDir, { FWPRUNE_TRADEOFF_PRESET: tradeoffFile }) ?? "",
    /^6 of 6 runs of preset ".*tiny-tradeoff\.json" are neither cached nor shipped; compute them with "npx fwprune sweep --preset tradeoff"/,
  );
  assert.equal(missingRecordsReason(tradeoff, dataDir, { FWPRUNE_TRADEOFF_PRESET: tradeoffFile }), undefined, "the notebook tests above computed them");
  assert.equal(missingRecordsReason(path.join(REPO_ROOT, "notebooks", "05-budget-sweep.ipynb"), emptyDir), undefined, "a main-preset notebook always runs");
  const structured = path.join(REPO_ROOT, "notebooks", "10-structured.ipynb");
  assert.match(
    missingRecordsReason(structured, emptyDir, { FWPRUNE_STRUCTURED_PRESET: structuredFile }) ?? "",
    /^6 of 6 runs of preset ".*tiny-structured\.json" are neither cached nor shipped; compute them with "npx fwprune sweep --preset structured"/,
  );
  assert.equal(missingRecordsReason(structured, dataDir, { FWPRUNE_STRUCTURED_PRESET: structuredFile }), undefined, "the notebook tests above computed them");
});

test("reproduce picks notebooks 01..12 (not the smoke check), by number or name, and flags error/stderr outputs", () => {
  const all = listNotebooks().map((f) => path.basename(f));
  assert.deepEqual(
    all.map((f) => f.slice(0, 3)),
    ["01-", "02-", "03-", "04-", "05-", "06-", "07-", "08-", "09-", "10-", "11-", "12-"],
  );
  assert.ok(!all.some((f) => f.startsWith("00-")));
  assert.deepEqual(
    listNotebooks(undefined, ["04", "02-magnitude-pruning"]).map((f) => path.basename(f)),
    ["04-fw-momentum.ipynb", "02-magnitude-pruning.ipynb"],
  );
  assert.throws(() => listNotebooks(undefined, ["99"]), /--only "99": expected exactly one notebook .* none matches/);
  const nb: Notebook = {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {},
    cells: [
      { cell_type: "code", source: "", outputs: [{ output_type: "stream", name: "stdout", text: "fine" }] },
      {
        cell_type: "code",
        source: "",
        outputs: [
          { output_type: "stream", name: "stderr", text: ["failed: fw budget 1"] },
          { output_type: "error", ename: "Error", evalue: "boom" },
        ],
      },
    ],
  };
  assert.deepEqual(problemOutputs(nb), [
    { cell: 2, kind: "stderr", text: "failed: fw budget 1" },
    { cell: 2, kind: "error", text: "Error: boom" },
  ]);
});
