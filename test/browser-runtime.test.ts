// The demo page in a real headless Chromium (Debian's, through playwright-core; no network): the runtime's logits
// equal Node's on real test digits, a picked digit's prediction is right, the same bundle runs in a Web Worker, the
// page logs no error; then `fwprune bench --browser --json` on the same (cached) export. The demo model is exported
// into a temporary data folder first, as on a fresh clone (the quick checkpoint is pre-trained: about a minute).
import { test, after } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { initBackend } from "../src/backend";
import { buildWebBundles } from "../src/demo/bundle";
import { launchChromium } from "../src/demo/browser-bench";
import { demoFolder, ensureDemoModel } from "../src/demo/model";
import { DemoServer, startDemoServer } from "../src/demo/server";
import { readSparseModelFile } from "../src/inference/export";
import { CHROMIUM_PATH } from "../src/report/png";
import { CONTAINER_MAGIC, loadSparseModel } from "../src/runtime";
import { ensureBuilt } from "./build-dist";
import { denseLogits, relativeError } from "./logits";

const skip = fs.existsSync(CHROMIUM_PATH) ? false : `Chromium is not installed at ${CHROMIUM_PATH}`;
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-demo-"));
let server: DemoServer | undefined;
let closeBrowser: (() => Promise<void>) | undefined;
after(async () => {
  await closeBrowser?.();
  await server?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

interface DemoHandle {
  info: { digits: { labels: number[] } };
  sparseLogits(n: number): number[];
  denseLogits(n: number): number[];
  workerLogits(n: number): Promise<number[]>;
}

const N = 64;

test(
  "the demo page in headless Chromium: logits equal Node's, a picked digit is predicted right, the bundle runs in a Web Worker, no console errors",
  { skip },
  async () => {
    await buildWebBundles();
    server = await startDemoServer({ port: 0, dataDir });
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const dir = demoFolder(dataDir);

    // Node's logits: tfjs's dense forward of the exported weights, and the runtime in Node, on the same test digits.
    await initBackend("wasm", { quiet: true });
    const { graph, weights } = readSparseModelFile(path.join(dir, "model.fwsparse"));
    const digits = new Float32Array(fs.readFileSync(path.join(dir, "digits.f32")).buffer.slice(0));
    const images = digits.subarray(0, N * 784);
    const nodeDense = denseLogits(graph, weights, images, N);
    const nodeRuntime = (await loadSparseModel(fs.readFileSync(path.join(dir, "model.fwsparse")))).predict(images, N);

    const problems: string[] = [];
    const browser = await launchChromium((type, text) => {
      if (type === "error" || type === "pageerror") problems.push(`${type}: ${text}`);
    });
    closeBrowser = browser.close;
    const page = await browser.context.newPage();
    const requests: string[] = [];
    page.on("request", (r) => requests.push(r.url()));
    await page.goto(server.url);
    const got = await page.evaluate(async (n) => {
      const demo = await (globalThis as unknown as { fwpruneDemo: Promise<DemoHandle> }).fwpruneDemo;
      return { sparse: demo.sparseLogits(n), dense: demo.denseLogits(n), worker: await demo.workerLogits(n), labels: demo.info.digits.labels };
    }, N);
    assert.equal(got.sparse.length, N * 10);
    for (const [label, expected] of [
      ["Node's tfjs forward", nodeDense],
      ["the runtime in Node", nodeRuntime],
    ] as const) {
      const err = relativeError(got.sparse, expected);
      assert.ok(err <= 1e-5, `page runtime vs ${label}: max relative error ${err.toExponential(2)}`);
    }
    assert.ok(relativeError(got.dense, nodeDense) <= 1e-5, "tfjs in the page agrees with Node too");
    assert.deepEqual(got.worker, got.sparse, "the bundle in a Web Worker gives the page's logits");

    // Pick a test digit the model classifies right (Node's argmax equals the label) and read the page's prediction.
    const argmax = (i: number) => {
      const row = Array.from(nodeDense.subarray(i * 10, i * 10 + 10));
      return row.indexOf(Math.max(...row));
    };
    const picks = [...Array(24).keys()].filter((i) => argmax(i) === got.labels[i]);
    assert.ok(picks.length >= 12, `only ${picks.length} of the first 24 digits are classified right`);
    for (const i of picks.slice(0, 3)) {
      await page.click(`#digits canvas[data-index='${i}']`);
      assert.equal(await page.textContent("#prediction"), String(got.labels[i]), `test digit ${i}`);
      assert.equal(await page.getAttribute("#prediction", "data-source"), `test digit ${i}`);
    }
    assert.deepEqual(problems, [], "console errors");
    assert.ok(
      requests.every((u) => u.startsWith(server!.url) || u.startsWith("data:") || u.startsWith("blob:")),
      `requests outside the demo server: ${requests.join(", ")}`,
    );
  },
);

test("a demo export of an older sparse format (format 3, magic FWSPARS3) is exported again rather than served", { skip }, async () => {
  const file = path.join(demoFolder(dataDir), "model.fwsparse");
  await ensureDemoModel(dataDir);
  const old = fs.readFileSync(file);
  old.write("FWSPARS3", 0, "latin1");
  fs.writeFileSync(file, old);
  await ensureDemoModel(dataDir);
  assert.equal(fs.readFileSync(file).subarray(0, 8).toString("latin1"), CONTAINER_MAGIC);
  await loadSparseModel(fs.readFileSync(file));
});

test("fwprune bench --browser --json: one line per batch, measured in Chromium, with the bytes of each side", { skip }, () => {
  ensureBuilt();
  const cli = path.join(__dirname, "..", "dist", "cli.js");
  const run = (...args: string[]) => spawnSync(process.execPath, [cli, "bench", "--browser", "--json", "--data-dir", dataDir, ...args], { encoding: "utf8" });
  const bad = run("--budget", "3");
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--budget belongs to --sparse, not to --browser/);
  const ok = run("--batches", "16,1", "--rounds", "3");
  assert.equal(ok.status, 0, ok.stderr);
  const lines = ok.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(
    lines.map((l) => [l.sparsity, l.batch]),
    [
      [0.95, 16],
      [0.95, 1],
    ],
  );
  for (const l of lines) {
    for (const field of ["denseSamplesPerSec", "sparseSamplesPerSec", "flopsSpeedup"]) assert.ok((l[field] as number) > 0, `${field} of ${JSON.stringify(l)}`);
    assert.ok((l.maxRelativeError as number) <= 1e-5);
    for (const field of ["runtimeBytes", "modelBytes"]) {
      const b = l[field] as { dense: number; sparse: number };
      assert.ok(b.dense > 0 && b.sparse > 0, `${field} of ${JSON.stringify(l)}`);
    }
    assert.match(l.userAgent as string, /HeadlessChrome/);
  }
});
