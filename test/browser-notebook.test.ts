// The workbench in a real browser: `npm run notebook`'s script serves notebooks/ on a free port (tiny config through
// FWPRUNE_PRESET / FWPRUNE_DATA_DIR), headless Chromium opens the schedule playground (07), a schedule is changed in
// its cell, every cell runs in the page, and the page must show the figures and the results table with the changed
// schedule and no error output. The server is stopped with SIGINT (what Ctrl-C sends) even when the test fails, and
// must leave no kernel behind and the shipped notebook as it was.
import { test, after } from "node:test";
import * as assert from "node:assert/strict";
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { freePort } from "./free-port";
import type { Browser, Page } from "playwright-core";
import { ensureBuilt } from "./build-dist";
import { TINY } from "./tiny-config";
import { JUPYTER_DATA_DIR, KERNEL_NAME, REPO_ROOT } from "../src/report/notebooks";
import { CHROMIUM_PATH } from "../src/report/png";

const JUPYTER_NOTEBOOK = "/usr/bin/jupyter-notebook";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
const NOTEBOOK = "07-schedule-playground.ipynb";
const FIGURES_IN_NOTEBOOK = 5;
const ORIGINAL_STEP = 'const decayingStep = { name: "γ = 0.06/(1 + t/20)", fn: (t: number) => 0.06 / (1 + t / 20) };';
const CHANGED_STEP = 'const decayingStep = { name: "γ = 0.08/(1 + t/10)", fn: (t: number) => 0.08 / (1 + t / 10) };';

const missing = [
  [CHROMIUM_PATH, "Chromium"],
  [JUPYTER_NOTEBOOK, "the classic Notebook server (Debian's jupyter-notebook)"],
  [path.join(JUPYTER_DATA_DIR, "kernels", KERNEL_NAME, "kernel.json"), "the project's tslab kernel"],
]
  .filter(([file]) => !fs.existsSync(file))
  .map(([file, what]) => `${what} (${file})`);
const skip = missing.length ? `not installed here: ${missing.join(", ")}; "npm run setup" installs them as root on Debian` : false;
if (skip) console.log(`# browser test skipped: ${skip}`);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-browser-"));
let server: ChildProcess | undefined;
let browser: Browser | undefined;
after(async () => {
  await browser?.close();
  if (server) await stopServer(server);
  fs.rmSync(tmp, { recursive: true, force: true });
});

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}

/** Start scripts/notebook.mjs as `npm run notebook -- --port P --no-browser` does; resolve with the address it prints. */
function startServer(port: number, env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: URL; log: () => string }> {
  const child = spawn(process.execPath, [path.join(REPO_ROOT, "scripts", "notebook.mjs"), "--", "--port", String(port), "--no-browser"], {
    cwd: REPO_ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const log = () => output;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no address printed within 90 s; the script said:\n${output}`)), 90_000);
    child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    child.stdout!.on("data", (d: Buffer) => {
      output += d.toString();
      const m = /fwprune notebooks: (http\S+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: new URL(m[1]), log });
      }
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`notebook script exited (${signal ?? code}) before printing an address:\n${output}`));
    });
  });
}

/** SIGINT, as Ctrl-C sends it; the script must stop the server and exit 0 within 30 s. */
async function stopServer(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  child.kill("SIGINT");
  const timeout = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), 30_000).unref());
  const result = await Promise.race([exited, timeout]);
  if (result === "timeout") {
    child.kill("SIGKILL");
    throw new Error("the notebook script did not stop within 30 s of SIGINT");
  }
  return result;
}

/** Processes whose command line mentions `needle` (kernels carry their connection file, under the runtime folder). */
function processesMentioning(needle: string): string[] {
  const found: string[] = [];
  for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
      if (cmd.includes(needle)) found.push(`${pid}: ${cmd.slice(0, 200)}`);
    } catch {
      // the process ended meanwhile
    }
  }
  return found;
}

/** The little of the page's DOM and of the classic Notebook's `Jupyter` global that this test touches. */
interface PageElement {
  textContent: string | null;
  querySelector(selector: string): PageElement | null;
}
interface NotebookCell {
  cell_type: string;
  get_text(): string;
  set_text(text: string): void;
}
interface PageGlobals {
  document: { querySelectorAll(selector: string): ArrayLike<PageElement> };
  Jupyter: {
    notebook?: {
      kernel?: { is_connected(): boolean };
      set_autosave_interval(ms: number): void;
      get_cells(): NotebookCell[];
      clear_all_output(): void;
      execute_all_cells(): void;
    };
  };
}

interface PageState {
  prompts: string[];
  running: number;
  errors: string[];
  figures: number;
  drawn: number;
  tables: { caption: string; text: string }[];
}

function pageState(page: Page): Promise<PageState> {
  return page.evaluate(() => {
    // No named functions in here: the test runner's transpiler would wrap them in a helper the page does not have.
    const { document } = globalThis as unknown as PageGlobals;
    const prompts = Array.from(document.querySelectorAll(".cell.code_cell")).map(
      (c) => c.querySelector(".input_prompt")?.textContent?.replace(/\s+/g, "") ?? "",
    );
    const plots = Array.from(document.querySelectorAll(".fwprune-plot"));
    return {
      prompts,
      running: prompts.filter((p) => p.includes("*")).length,
      errors: Array.from(document.querySelectorAll(".output_error, .output_stderr")).map((e) => (e.textContent ?? "").slice(0, 1000)),
      figures: plots.length,
      drawn: plots.filter((p) => p.querySelector(".main-svg")).length,
      tables: Array.from(document.querySelectorAll("table.fwprune-table")).map((t) => ({
        caption: t.querySelector("caption")?.textContent ?? "",
        text: t.textContent ?? "",
      })),
    };
  });
}

test(`in headless Chromium, notebook ${NOTEBOOK} served by "npm run notebook" runs every cell after a schedule is edited`, { skip }, async () => {
  ensureBuilt();
  const shipped = path.join(REPO_ROOT, "notebooks", NOTEBOOK);
  const shippedBefore = fs.readFileSync(shipped, "utf8");
  const checkpointsDir = path.join(REPO_ROOT, "notebooks", ".ipynb_checkpoints");
  const checkpointsExisted = fs.existsSync(checkpointsDir);
  const presetFile = path.join(tmp, "tiny.json");
  fs.writeFileSync(presetFile, JSON.stringify(TINY));
  const runtimeDir = path.join(tmp, "jupyter-runtime");
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    FWPRUNE_PRESET: presetFile,
    FWPRUNE_DATA_DIR: path.join(tmp, "data"),
    FWPRUNE_WORKERS: "0",
    // The server's own state (config, cookie secret, notebook signatures, kernel connection files) stays in tmp.
    JUPYTER_CONFIG_DIR: path.join(tmp, "jupyter-config"),
    JUPYTER_DATA_DIR: path.join(tmp, "jupyter-data"),
    JUPYTER_RUNTIME_DIR: runtimeDir,
  };
  delete env.JUPYTER_TOKEN;
  const port = await freePort();
  const started = Date.now();
  const { child, url, log } = await startServer(port, env);
  server = child;
  const token = url.searchParams.get("token");
  assert.match(token ?? "", /^[0-9a-f]{48}$/, `the printed address carries the server's token: ${url}`);
  assert.equal(url.port, String(port), "the server listens on the port given after --");

  const { chromium } = await import("playwright-core");
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const pageErrors: string[] = [];
  page.on("pageerror", (err) => pageErrors.push(String(err)));
  const screenshot = path.join(os.tmpdir(), "fwprune-browser-test.png");
  try {
    await page.goto(new URL(`notebooks/${NOTEBOOK}?token=${token}`, url).href);
    await page.waitForFunction(() => (globalThis as unknown as Partial<PageGlobals>).Jupyter?.notebook?.kernel?.is_connected() === true, null, {
      timeout: 90_000,
    });

    const edited = await page.evaluate(
      ([from, to]) => {
        const nb = (globalThis as unknown as PageGlobals).Jupyter.notebook!;
        nb.set_autosave_interval(0); // never save the edit over the shipped notebook
        const cell = nb.get_cells().find((c) => c.cell_type === "code" && c.get_text().includes(from));
        if (!cell) return false;
        cell.set_text(cell.get_text().replace(from, to));
        return true;
      },
      [ORIGINAL_STEP, CHANGED_STEP],
    );
    assert.ok(edited, `a code cell of ${NOTEBOOK} holds the schedule line this test edits:\n${ORIGINAL_STEP}`);

    await page.evaluate(() => {
      const nb = (globalThis as unknown as PageGlobals).Jupyter.notebook!;
      nb.clear_all_output();
      nb.execute_all_cells();
    });
    let state = await pageState(page);
    const deadline = Date.now() + 240_000;
    while ((state.running > 0 || state.prompts.some((p) => !/\[\d+\]/.test(p))) && state.errors.length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      state = await pageState(page);
    }
    // A cell's outputs can arrive after its prompt is numbered (they come on another channel, late on a busy machine),
    // and plotly draws after its output arrives: give the last figures a moment.
    for (let i = 0; i < 120 && state.errors.length === 0 && (state.figures < FIGURES_IN_NOTEBOOK || state.drawn < state.figures); i++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      state = await pageState(page);
    }
    await page.screenshot({ path: screenshot });

    const where = `(page screenshot: ${screenshot})`;
    assert.deepEqual(state.errors, [], `no error output in the page ${where}`);
    assert.ok(
      state.prompts.every((p) => /^In\[\d+\]:$/.test(p)),
      `every code cell ran: prompts ${state.prompts.join(" ")} ${where}`,
    );
    assert.equal(state.figures, FIGURES_IN_NOTEBOOK, `figures in the page ${where}`);
    assert.equal(state.drawn, state.figures, `every figure drawn by plotly.js in the page ${where}`);
    const results = state.tables.find((t) => t.caption.startsWith("Schedules compared"));
    assert.ok(results, `the results table is shown; tables: ${state.tables.map((t) => t.caption).join(", ")} ${where}`);
    assert.match(results.text, /fw-momentum, γ = 0\.08\/\(1 \+ t\/10\)/, "the results table has a row for the edited schedule");
    assert.match(results.text, /built-in fw-momentum/);
    assert.deepEqual(pageErrors, [], "no script errors in the page");
    console.log(`# notebook ${NOTEBOOK} in the browser: ${((Date.now() - started) / 1000).toFixed(1)} s from starting the server`);
  } finally {
    await browser.close();
    browser = undefined;
    const code = await stopServer(child);
    server = undefined;
    assert.equal(code, 0, `the notebook script exits 0 after SIGINT; it said:\n${log().slice(-3000)}`);
  }

  assert.equal(await portOpen(port), false, "nothing listens on the port after the server stopped");
  assert.deepEqual(processesMentioning(runtimeDir), [], "no kernel of this server is left running");
  assert.equal(fs.readFileSync(shipped, "utf8"), shippedBefore, "the shipped notebook is left as it was");
  // The server makes notebooks/.ipynb_checkpoints (git-ignored) when it opens a notebook; leave the checkout as found.
  if (!checkpointsExisted) fs.rmSync(checkpointsDir, { recursive: true, force: true });
});
