// End to end through real Jupyter (Debian nbclient/nbconvert) and the project's tslab kernel: the smoke
// notebook runs, shows a figure (static PNG + interactive HTML) and a table; its HTML report draws the figure
// offline in headless Chromium; a failing cell makes executeNotebook throw with that cell's message.
import { test, after } from "node:test";
import * as assert from "node:assert/strict";
import { ensureBuilt } from "./build-dist";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { executeNotebook, exportHtml, Notebook, NotebookCellError, outputRole, REPO_ROOT } from "../src/report/notebooks";
import { checkReport, closeBrowser } from "../src/report/png";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-notebook-"));
after(async () => {
  await closeBrowser();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function writeNotebook(file: string, cells: string[]): void {
  const nb = {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: "tslab", display_name: "TypeScript", language: "typescript" } },
    cells: cells.map((source, i) => ({ id: `c${i}`, cell_type: "code", source, metadata: {}, outputs: [], execution_count: null })),
  };
  fs.writeFileSync(file, JSON.stringify(nb));
}

test("the smoke notebook runs in tslab, shows a figure (PNG + interactive) and a table, and its HTML report draws offline", async () => {
  ensureBuilt();
  const out = path.join(tmp, "00-smoke.ipynb");
  const started = Date.now();
  await executeNotebook(path.join(REPO_ROOT, "notebooks", "00-smoke.ipynb"), {
    outPath: out,
    env: { FWPRUNE_SMOKE_POINTS: "5" },
    timeoutSec: 120,
  });
  const executeSeconds = (Date.now() - started) / 1000;
  const nb = JSON.parse(fs.readFileSync(out, "utf8")) as Notebook;
  const outputs = nb.cells.flatMap((c) => c.outputs ?? []);
  assert.deepEqual(
    outputs.filter((o) => o.output_type === "error" || o.name === "stderr"),
    [],
    "no error output",
  );
  assert.ok(
    outputs.some((o) => o.output_type === "stream" && /5 points per line/.test(String(o.text))),
    "env parameter reached the kernel",
  );

  const fig = outputs.find((o) => outputRole(o) === "figure-static");
  assert.ok(fig, "a static figure output");
  const png = Buffer.from(String(fig.data!["image/png"]), "base64");
  assert.equal(png.subarray(1, 4).toString(), "PNG");
  assert.ok(png.length > 5000, `the PNG holds a drawn chart (${png.length} bytes)`);
  const interactive = outputs.find((o) => outputRole(o) === "figure-interactive");
  assert.match(String(interactive?.data?.["text/html"]), /class="fwprune-plot"[\s\S]*Plotly\.newPlot/);
  assert.match(String(outputs.find((o) => outputRole(o) === "table")?.data?.["text/html"]), /<table[\s\S]*fw-momentum/);
  assert.match(String(outputs.find((o) => outputRole(o) === "progress")?.data?.["text/plain"]), /5\/5 \(100%\).*done/);
  assert.equal(outputs.filter((o) => outputRole(o) === "plotly-loader").length, 0, "plotly.js is not saved in the notebook");
  assert.ok(fs.statSync(out).size < 300_000, `executed notebook is small (${fs.statSync(out).size} bytes)`);

  const html = path.join(tmp, "00-smoke.html");
  await exportHtml(out, html);
  const check = await checkReport(html, { screenshot: path.join(tmp, "00-smoke.png") });
  assert.deepEqual(
    { figures: check.figures, drawn: check.drawn, staticVisible: check.staticVisible, blocked: check.blockedRequests, errors: check.errors },
    { figures: 1, drawn: 1, staticVisible: 0, blocked: [], errors: [] },
  );
  assert.ok(fs.statSync(path.join(tmp, "00-smoke.png")).size > 20_000, "screenshot written");
  console.log(`# smoke notebook executed in ${executeSeconds.toFixed(1)} s`);
});

test("a failing cell makes executeNotebook throw with that cell's own message; later cells do not run", async () => {
  const src = path.join(tmp, "failing.ipynb");
  writeNotebook(src, [
    'console.log("first cell ran");',
    "function checkRate(lr: number) {\n  if (lr <= 0) throw new Error(`learning rate lr=${lr}; expected > 0`);\n}\ncheckRate(-1);",
    'console.log("third cell ran");',
  ]);
  await assert.rejects(executeNotebook(src, { outPath: path.join(tmp, "failing.out.ipynb"), timeoutSec: 60 }), (err: unknown) => {
    assert.ok(err instanceof NotebookCellError);
    assert.match(err.message, /^notebook failing\.ipynb, cell 2 \(function checkRate\(lr: number\) \{\) failed:\n/);
    assert.match(err.message, /Error: learning rate lr=-1; expected > 0/);
    assert.doesNotMatch(err.message, /node_modules[\\/]tslab/);
    assert.equal(err.cellIndex, 1);
    const partial = JSON.parse(fs.readFileSync(err.partialNotebook, "utf8")) as Notebook;
    assert.match(String(partial.cells[0].outputs![0].text), /first cell ran/);
    assert.deepEqual(partial.cells[2].outputs, []);
    return true;
  });
  assert.ok(!fs.existsSync(path.join(tmp, "failing.out.ipynb")), "no executed notebook is written on failure");
});

test("a type error in a cell is reported with tslab's diagnostic", async () => {
  const src = path.join(tmp, "type-error.ipynb");
  writeNotebook(src, ['const epochs: number = "ten";']);
  await assert.rejects(
    executeNotebook(src, { timeoutSec: 60 }),
    /cell 1 \(const epochs: number = "ten";\) failed:\n1:7 - Type 'string' is not assignable to type 'number'/,
  );
});
