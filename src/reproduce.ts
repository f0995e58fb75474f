// `fwprune reproduce`: the quick sweep, then every notebook executed headlessly (real Jupyter + tslab) and saved with
// its outputs under the data folder (the shipped notebooks/ stay as they are, unless asked), exported as a
// self-contained HTML report and checked in headless Chromium.
import { Command } from "commander";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import pLimit from "p-limit";
import { ExperimentConfig, loadConfig } from "./experiment/config";
import { progressReporter } from "./experiment/commands";
import { positiveInteger } from "./experiment/flags";
import { defaultDataDir, resolvePreset } from "./paths";
import { planRuns } from "./experiment/plan";
import { readRecord } from "./experiment/store";
import { sweep } from "./experiment/sweep";
import { writeFileAtomic } from "./fsutil";
import { aggregateRecords, formatAggregate } from "./report/frame";
import { Notebook, NotebookRun, REPO_ROOT, executeNotebook, exportHtml, joinText } from "./report/notebooks";
import { checkReport, closeBrowser } from "./report/png";

export const NOTEBOOKS_DIR = path.join(REPO_ROOT, "notebooks");

/** The reproduction notebooks (01-… to 99-…; 00-smoke is the set-up check, not part of it), in order. */
export function listNotebooks(dir = NOTEBOOKS_DIR, only?: string[]): string[] {
  const all = fs
    .readdirSync(dir)
    .filter((f) => /^\d\d-.+\.ipynb$/.test(f) && !f.startsWith("00-"))
    .sort();
  if (!only || only.length === 0) return all.map((f) => path.join(dir, f));
  return only.map((wanted) => {
    const w = path.basename(wanted).replace(/\.ipynb$/, "");
    const matches = all.filter((f) => f === `${w}.ipynb` || f.startsWith(`${w}-`) || f.startsWith(w));
    if (matches.length !== 1) {
      throw new Error(
        `--only ${JSON.stringify(wanted)}: expected exactly one notebook of ${all.join(", ")} (a number like 04 or a name), ${matches.length ? `got ${matches.join(", ")}` : "none matches"}`,
      );
    }
    return path.join(dir, matches[0]);
  });
}

/** Outputs an executed notebook should not have: error outputs, and stderr text (warnings, failed runs). */
export function problemOutputs(nb: Notebook): { cell: number; kind: "error" | "stderr"; text: string }[] {
  const out: { cell: number; kind: "error" | "stderr"; text: string }[] = [];
  nb.cells.forEach((cell, i) => {
    for (const o of cell.outputs ?? []) {
      if (o.output_type === "error") out.push({ cell: i + 1, kind: "error", text: `${o.ename}: ${o.evalue}` });
      if (o.output_type === "stream" && o.name === "stderr") out.push({ cell: i + 1, kind: "stderr", text: joinText(o.text).trim() });
    }
  });
  return out;
}

export interface ReproduceOptions {
  /** quick | paper | path of a JSON config. */
  preset: string;
  workers: number;
  skipSweep: boolean;
  /** Only these notebooks (numbers or names). */
  only?: string[];
  dataDir: string;
  /** Where the executed notebooks are saved (default <dataDir>/notebooks; NOTEBOOKS_DIR updates the shipped ones). */
  notebooksOut?: string;
  /** Per-cell limit in seconds. */
  timeoutSec?: number;
  /** Notebooks executed at once (default: workers; each kernel computes on one core). */
  notebookConcurrency?: number;
  log?: (line: string) => void;
}

/**
 * A notebook about another experiment names it in its metadata (`fwprune.preset`: the environment variable and the
 * default preset). Reproduce runs it only when that experiment's records are all cached or shipped (its sweep takes
 * far longer than the main job); otherwise it says what is missing and how to compute it.
 */
export function missingRecordsReason(notebook: string, dataDir: string, env: Record<string, string | undefined> = process.env): string | undefined {
  const meta = (JSON.parse(fs.readFileSync(notebook, "utf8")) as Notebook).metadata as { fwprune?: { preset?: { variable: string; fallback: string } } };
  const own = meta.fwprune?.preset;
  if (!own) return undefined;
  const preset = resolvePreset(env[own.variable] ?? own.fallback, REPO_ROOT);
  const runs = planRuns(loadConfig(preset));
  const missing = runs.filter((r) => readRecord(dataDir, r.key).kind !== "ok").length;
  if (missing === 0) return undefined;
  return `${missing} of ${runs.length} runs of preset "${own.variable in env ? env[own.variable] : own.fallback}" are neither cached nor shipped; compute them with "npx fwprune sweep --preset ${own.fallback}" (${own.variable} names another config), then run reproduce again`;
}

export interface ReproduceSummary {
  preset: string;
  dataDir: string;
  notebooksOut: string;
  sweepSeconds: number | null;
  notebooksSeconds: number;
  totalSeconds: number;
  notebooks: (NotebookRun & { warnings: string[] })[];
}

export async function reproduce(opts: ReproduceOptions): Promise<ReproduceSummary> {
  const log = opts.log ?? ((line: string) => console.error(line));
  const started = performance.now();
  const preset = resolvePreset(opts.preset);
  const config: ExperimentConfig = loadConfig(preset);
  const dataDir = path.resolve(opts.dataDir);
  const listed = listNotebooks(NOTEBOOKS_DIR, opts.only);
  const skipped = listed.map((nb) => [nb, missingRecordsReason(nb, dataDir)] as const).filter(([, reason]) => reason !== undefined);
  for (const [nb, reason] of skipped) log(`reproduce: skipping ${path.basename(nb)}: ${reason}`);
  const notebooks = listed.filter((nb) => !skipped.some(([s]) => s === nb));

  let sweepSeconds: number | null = null;
  if (!opts.skipSweep) {
    log(`reproduce: sweep "${config.name}" with ${opts.workers} worker(s), cache ${dataDir}`);
    const reporter = progressReporter(true);
    let result;
    try {
      result = await sweep(config, { dataDir, workers: opts.workers, onProgress: reporter.update });
    } finally {
      reporter.stop();
    }
    sweepSeconds = result.seconds;
    log(formatAggregate(aggregateRecords(result.records)));
    log(
      `reproduce: sweep done in ${result.seconds.toFixed(1)} s: ${result.runs} runs, ${result.computed} computed, ${result.cached} cached, ${result.failed} failed`,
    );
    for (const r of result.records) if (r.status === "failed") log(`reproduce: failed run ${r.label} budget ${r.budget} seed ${r.seed}: ${r.reason}`);
  }

  const notebooksStart = performance.now();
  const reportsDir = path.join(dataDir, "reports");
  const notebooksOut = path.resolve(opts.notebooksOut ?? path.join(dataDir, "notebooks"));
  const runs = await runNotebooksInParallel({
    notebooks,
    notebooksOut,
    reportsDir,
    env: { FWPRUNE_PRESET: preset, FWPRUNE_DATA_DIR: dataDir, FWPRUNE_WORKERS: String(opts.workers) },
    timeoutSec: opts.timeoutSec ?? 900,
    concurrency: Math.max(1, opts.notebookConcurrency ?? opts.workers),
    log,
  });
  const notebooksSeconds = (performance.now() - notebooksStart) / 1000;
  const withWarnings = runs.map((run) => {
    const problems = problemOutputs(JSON.parse(fs.readFileSync(run.executed, "utf8")) as Notebook);
    const errors = problems.filter((p) => p.kind === "error");
    if (errors.length) throw new Error(`${path.basename(run.executed)}: error output in cell ${errors[0].cell}: ${errors[0].text}`);
    return { ...run, warnings: problems.map((p) => `cell ${p.cell} wrote to stderr: ${p.text.slice(0, 300)}`) };
  });
  const summary: ReproduceSummary = {
    preset: config.name,
    dataDir,
    notebooksOut,
    sweepSeconds,
    notebooksSeconds,
    totalSeconds: (performance.now() - started) / 1000,
    notebooks: withWarnings,
  };
  writeFileAtomic(path.join(reportsDir, "summary.json"), JSON.stringify(summary, null, 1) + "\n");
  // The reports link to the protocol beside them, as the notebooks do.
  fs.copyFileSync(path.join(NOTEBOOKS_DIR, "PROTOCOL.md"), path.join(reportsDir, "PROTOCOL.md"));
  return summary;
}

/**
 * Execute the notebooks, `concurrency` kernels at a time (saved with their outputs in `notebooksOut`, under the same
 * names; the kernels still run in the notebooks' own folder, so their imports resolve), then export each one's HTML
 * report and check it offline in headless Chromium (every figure drawn, nothing fetched). The first failure (a
 * failing cell, with its own message, or a report with undrawn figures) fails the whole; running kernels finish first.
 */
export async function runNotebooksInParallel(opts: {
  notebooks: string[];
  notebooksOut: string;
  reportsDir: string;
  env: Record<string, string>;
  timeoutSec: number;
  concurrency: number;
  log: (line: string) => void;
}): Promise<NotebookRun[]> {
  const executed: { notebook: string; executed: string; seconds: number }[] = [];
  let failure: unknown;
  // p-limit: a well-kept concurrency limiter; after a failure the notebooks not yet started are skipped.
  const limit = pLimit(Math.max(1, opts.concurrency));
  await Promise.all(
    opts.notebooks.map((notebook) =>
      limit(async () => {
        if (failure !== undefined) return;
        const name = path.basename(notebook, ".ipynb");
        opts.log(`notebook ${name}: executing`);
        try {
          const outPath = path.join(opts.notebooksOut, path.basename(notebook));
          const { seconds } = await executeNotebook(notebook, { env: opts.env, timeoutSec: opts.timeoutSec, outPath });
          executed.push({ notebook, executed: outPath, seconds });
          opts.log(`notebook ${name}: executed in ${seconds.toFixed(1)} s`);
        } catch (err) {
          failure ??= err;
        }
      }),
    ),
  );
  if (failure !== undefined) throw failure;

  const runs: NotebookRun[] = [];
  try {
    for (const { notebook, executed: out, seconds } of opts.notebooks.map((n) => executed.find((e) => e.notebook === n)!)) {
      const name = path.basename(notebook, ".ipynb");
      const html = path.join(opts.reportsDir, `${name}.html`);
      await exportHtml(out, html);
      const check = await checkReport(html, { screenshot: path.join(opts.reportsDir, `${name}.png`), maxScreenshotHeight: 4000 });
      if (check.drawn < check.figures || check.errors.length > 0 || check.blockedRequests.length > 0) {
        throw new Error(
          `report ${html}: ${check.drawn} of ${check.figures} figures drawn offline` +
            (check.errors.length ? `; page errors: ${check.errors.join(" | ")}` : "") +
            (check.blockedRequests.length ? `; tried to fetch: ${check.blockedRequests.join(", ")}` : ""),
        );
      }
      const notebookBytes = fs.statSync(out).size;
      runs.push({ notebook, executed: out, html, seconds, figures: check.figures, drawn: check.drawn, notebookBytes });
      opts.log(`notebook ${name}: ${check.drawn}/${check.figures} figures drawn in its report, ${(notebookBytes / 1e6).toFixed(2)} MB → ${html}`);
    }
  } finally {
    await closeBrowser();
  }
  return runs;
}

export function formatSummary(s: ReproduceSummary): string {
  const rel = (p: string) => path.relative(process.cwd(), p) || p;
  const lines = s.notebooks.map(
    (n) =>
      `  ${path.basename(n.executed).padEnd(34)} ${n.seconds.toFixed(1).padStart(6)} s  ${`${n.drawn}/${n.figures}`.padStart(5)} figures drawn  ${(n.notebookBytes / 1e6).toFixed(2)} MB  → ${rel(n.html)}` +
      (n.notebookBytes > 2e6 ? "  (over 2 MB)" : "") +
      n.warnings.map((w) => `\n      warning: ${w}`).join(""),
  );
  return [
    `reproduce "${s.preset}": executed notebooks in ${rel(s.notebooksOut)}, HTML reports and screenshots in ${rel(path.join(s.dataDir, "reports"))}`,
    ...lines,
    `time: sweep ${s.sweepSeconds === null ? "skipped" : `${s.sweepSeconds.toFixed(1)} s`}, notebooks ${s.notebooksSeconds.toFixed(1)} s, total ${s.totalSeconds.toFixed(1)} s`,
  ].join("\n");
}

export function registerReproduceCommand(program: Command): void {
  program
    .command("reproduce")
    .description("run the sweep, then execute every notebook (saved with its outputs under the data folder), export and check one HTML report per notebook")
    .option("--preset <name|file>", "quick | paper | path of a JSON config; the notebooks get it as FWPRUNE_PRESET", "quick")
    .option("--workers <n>", "worker processes for the sweep, and notebooks executed at once", positiveInteger("--workers"), os.cpus().length)
    .option("--skip-sweep", "do not run the sweep first (the notebooks still compute whatever the cache lacks)")
    .option("--only <notebooks>", "only these notebooks, comma-separated numbers or names (e.g. 04 or 02,05)")
    .option("--data-dir <dir>", "cache and reports folder (the notebooks get it as FWPRUNE_DATA_DIR)", defaultDataDir())
    .option("--notebooks-out <dir>", "where the executed notebooks go (default: <data-dir>/notebooks; notebooks/ updates the shipped ones)")
    .action(async (opts: { preset: string; workers: number; skipSweep?: boolean; only?: string; dataDir: string; notebooksOut?: string }) => {
      const summary = await reproduce({
        preset: opts.preset,
        workers: opts.workers,
        skipSweep: opts.skipSweep === true,
        only: opts.only
          ?.split(",")
          .map((s) => s.trim())
          .filter(Boolean),
        dataDir: opts.dataDir,
        notebooksOut: opts.notebooksOut,
      });
      console.log(formatSummary(summary));
    });
}
