// Execute notebooks headlessly with real Jupyter and the project's tslab kernel, and export HTML reports.
// Jupyter comes from Debian (/usr/bin/python3 with nbclient/nbconvert); the kernel is registered in
// <repo>/.jupyter by scripts/setup-jupyter.mjs.
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { writeFileAtomic } from "../fsutil";
import { OUTPUT_ROLE_KEY } from "./display";
import { plotlyJsPath } from "./png";

export { REPO_ROOT } from "../paths";
import { REPO_ROOT } from "../paths";
export const JUPYTER_DATA_DIR = path.join(REPO_ROOT, ".jupyter", "share", "jupyter");
const PYTHON = "/usr/bin/python3";
const JUPYTER = "/usr/bin/jupyter";
export const KERNEL_NAME = "tslab";

// Runs the notebook the way `jupyter nbconvert --to notebook --execute` does (nbclient is its execution engine),
// but stops at the first failing cell and still saves the partly executed notebook, whose outputs hold the
// real error (tslab puts it in the cell's stderr stream; the kernel's error reply carries no message).
const EXECUTE_PY = `
import json, os, sys
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
src, out, timeout, kernel = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
nb = nbformat.read(src, as_version=4)
current = {"index": None}
def on_cell_start(cell, cell_index, **kw):
    current["index"] = cell_index
client = NotebookClient(nb, timeout=timeout, kernel_name=kernel, record_timing=False,
    on_cell_start=on_cell_start, resources={"metadata": {"path": os.path.dirname(os.path.abspath(src))}})
status = {"ok": True}
try:
    client.execute()
except (CellExecutionError, CellTimeoutError, DeadKernelError) as e:
    status = {"ok": False, "kind": type(e).__name__, "cell": current["index"], "message": str(e)}
finally:
    nbformat.write(nb, out)
print("@@fwprune-status " + json.dumps(status))
`;

export interface ExecuteOptions {
  /** Extra environment variables for the kernel (how notebooks get their parameters, e.g. FWPRUNE_PRESET). */
  env?: Record<string, string>;
  /** Per-cell time limit in seconds (default 600). */
  timeoutSec?: number;
  /** Where to write the executed notebook (default: overwrite the input). */
  outPath?: string;
}

export interface ExecuteResult {
  outPath: string;
  seconds: number;
}

/** Error thrown when a notebook cell fails; `message` holds the cell's own error text. */
export class NotebookCellError extends Error {
  constructor(
    message: string,
    readonly notebook: string,
    readonly cellIndex: number | null,
    readonly partialNotebook: string,
  ) {
    super(message);
    this.name = "NotebookCellError";
  }
}

/**
 * Execute a notebook with the tslab kernel (cwd: the notebook's folder) and save it with its outputs
 * (plotly.js loader outputs removed, see stripNotebook). On a failing cell, throws a NotebookCellError
 * naming the notebook and cell with the error the cell printed; the partly executed notebook is saved.
 */
export async function executeNotebook(notebookPath: string, opts: ExecuteOptions = {}): Promise<ExecuteResult> {
  const src = path.resolve(notebookPath);
  if (!fs.existsSync(src)) throw new Error(`executeNotebook: notebook ${src} does not exist`);
  assertJupyterReady();
  const outPath = path.resolve(opts.outPath ?? src);
  fs.mkdirSync(path.dirname(outPath), { recursive: true });
  const tmpOut = path.join(os.tmpdir(), `fwprune-exec-${process.pid}-${Date.now()}-${path.basename(outPath)}`);
  const start = Date.now();
  const { code, stdout, stderr } = await runProcess(PYTHON, ["-c", EXECUTE_PY, src, tmpOut, String(opts.timeoutSec ?? 600), KERNEL_NAME], {
    ...process.env,
    ...jupyterEnv(),
    ...opts.env,
  });
  const statusLine = stdout.split("\n").find((l) => l.startsWith("@@fwprune-status "));
  if (!statusLine || !fs.existsSync(tmpOut)) {
    throw new Error(`executeNotebook: ${path.basename(src)}: Jupyter failed (exit code ${code}):\n${tail(stderr, 40)}`);
  }
  const status = JSON.parse(statusLine.slice("@@fwprune-status ".length)) as {
    ok: boolean;
    kind?: string;
    cell?: number | null;
    message?: string;
  };
  const nb = JSON.parse(fs.readFileSync(tmpOut, "utf8")) as Notebook;
  fs.rmSync(tmpOut, { force: true });
  stripNotebook(nb);
  if (!status.ok) {
    const failedPath = path.join(os.tmpdir(), "fwprune-failed-notebooks", path.basename(outPath));
    writeFileAtomic(failedPath, notebookJson(nb));
    const message = `${cellErrorMessage(src, nb, status)}\n(the partly executed notebook: ${failedPath})`;
    throw new NotebookCellError(message, src, status.cell ?? null, failedPath);
  }
  writeFileAtomic(outPath, notebookJson(nb));
  return { outPath, seconds: (Date.now() - start) / 1000 };
}

export interface HtmlOptions {
  /**
   * "none" (default): no MathJax, so the report fetches nothing (math stays as TeX source). "cdn": load MathJax 2
   * asynchronously from cdnjs, so math renders when the reader is online; nothing waits for it offline.
   */
  mathjax?: "none" | "cdn";
}

export const MATHJAX_CDN_URL = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/MathJax.js?config=TeX-AMS_CHTML-full,Safe";

/**
 * Write one self-contained HTML report of an (executed) notebook: nbconvert's lab template, with plotly.js
 * inlined once in <head> and the template's external scripts (require.js, unused here; MathJax, see
 * HtmlOptions) removed, so the report draws its figures with no network.
 */
export async function exportHtml(ipynb: string, outHtml: string, opts: HtmlOptions = {}): Promise<void> {
  const src = path.resolve(ipynb);
  if (!fs.existsSync(src)) throw new Error(`exportHtml: notebook ${src} does not exist`);
  assertJupyterReady();
  const nb = JSON.parse(fs.readFileSync(src, "utf8")) as Notebook;
  stripNotebook(nb);
  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-html-"));
  try {
    const name = path.basename(src, ".ipynb");
    fs.writeFileSync(path.join(tmpDir, `${name}.ipynb`), notebookJson(nb));
    const { code, stderr } = await runProcess(
      JUPYTER,
      ["nbconvert", "--to", "html", "--template", "lab", "--output-dir", tmpDir, path.join(tmpDir, `${name}.ipynb`)],
      { ...process.env, ...jupyterEnv() },
    );
    const produced = path.join(tmpDir, `${name}.html`);
    if (code !== 0 || !fs.existsSync(produced)) {
      throw new Error(`exportHtml: nbconvert --to html failed for ${src} (exit ${code}):\n${tail(stderr, 30)}`);
    }
    const html = postProcessHtml(fs.readFileSync(produced, "utf8"), { inlinePlotly: hasInteractiveFigures(nb), ...opts });
    writeFileAtomic(path.resolve(outHtml), html);
  } finally {
    fs.rmSync(tmpDir, { recursive: true, force: true });
  }
}

/** nbconvert's HTML made self-contained: see exportHtml. */
export function postProcessHtml(html: string, opts: HtmlOptions & { inlinePlotly: boolean }): string {
  let out = html.replace(/<script\s+src="[^"]*require(\.min)?\.js"\s*>\s*<\/script>\s*/g, "");
  const mathjaxTag = /<script\s+src="[^"]*mathjax[^"]*"\s*>\s*<\/script>/gi;
  out = out.replace(mathjaxTag, opts.mathjax === "cdn" ? `<script async src="${MATHJAX_CDN_URL}"></script>` : "");
  if (opts.inlinePlotly) {
    const js = fs.readFileSync(plotlyJsPath(), "utf8");
    const at = out.indexOf("</head>");
    if (at < 0) throw new Error("exportHtml: nbconvert's HTML has no </head>; cannot inline plotly.js");
    out = `${out.slice(0, at)}<script type="text/javascript">${js}</script>\n${out.slice(at)}`;
  }
  return out;
}

/** What reproduce reports of one executed notebook. */
export interface NotebookRun {
  notebook: string;
  executed: string;
  html: string;
  seconds: number;
  figures: number;
  drawn: number;
  notebookBytes: number;
}

// ------------------------------------------------------------------------------------- notebook JSON

export interface NotebookOutput {
  output_type: string;
  name?: string;
  text?: string | string[];
  data?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  ename?: string;
  evalue?: string;
  traceback?: string[];
}
export interface NotebookCell {
  cell_type: string;
  source: string | string[];
  outputs?: NotebookOutput[];
  execution_count?: number | null;
  metadata?: Record<string, unknown>;
}
export interface Notebook {
  cells: NotebookCell[];
  metadata: Record<string, unknown>;
  nbformat: number;
  nbformat_minor: number;
}

export function outputRole(output: NotebookOutput): string | undefined {
  const meta = output.metadata?.[OUTPUT_ROLE_KEY] as { role?: string } | undefined;
  return meta?.role;
}

/** Remove plotly.js loader outputs (4.6 MB each) from a notebook, in place. */
export function stripNotebook(nb: Notebook): Notebook {
  for (const cell of nb.cells) {
    if (cell.outputs) cell.outputs = cell.outputs.filter((o) => outputRole(o) !== "plotly-loader");
  }
  return nb;
}

function hasInteractiveFigures(nb: Notebook): boolean {
  return nb.cells.some((c) => (c.outputs ?? []).some((o) => outputRole(o) === "figure-interactive"));
}

function notebookJson(nb: Notebook): string {
  return JSON.stringify(nb, null, 1) + "\n";
}

export function joinText(t: string | string[] | undefined): string {
  return Array.isArray(t) ? t.join("") : (t ?? "");
}

/** The failing cell's own error text: its error outputs and stderr, minus tslab/Node internals. */
export function cellErrorMessage(notebook: string, nb: Notebook, status: { kind?: string; cell?: number | null; message?: string }): string {
  const index = status.cell ?? null;
  const cell = index !== null ? nb.cells[index] : undefined;
  const where = `${path.basename(notebook)}, cell ${index === null ? "?" : index + 1}`;
  const firstLine = cell
    ? (joinText(cell.source)
        .split("\n")
        .find((l) => l.trim() !== "") ?? "")
    : "";
  const parts: string[] = [];
  for (const o of cell?.outputs ?? []) {
    if (o.output_type === "error") parts.push([`${o.ename}: ${o.evalue}`, ...(o.traceback ?? [])].join("\n"));
    if (o.output_type === "stream" && o.name === "stderr") parts.push(joinText(o.text));
  }
  let detail = parts.join("\n").trim();
  detail = detail
    .split("\n")
    .filter((l) => !/^\s+at .*(node_modules[\\/]tslab|node:vm|node:internal|sigintHandlersWrap)/.test(l))
    .join("\n");
  if (status.kind === "CellTimeoutError") {
    detail = `timed out (${status.message?.split("\n")[0] ?? "cell time limit"})${detail ? `\n${detail}` : ""}`;
  } else if (status.kind === "DeadKernelError") {
    detail = `the kernel died (${status.message ?? ""})${detail ? `\n${detail}` : ""}`;
  }
  if (!detail) detail = status.message ?? "unknown error";
  return `notebook ${where} (${firstLine.trim().slice(0, 80)}) failed:\n${head(detail, 30)}`;
}

// ------------------------------------------------------------------------------------------ helpers

/** Environment that makes Jupyter find the project-local tslab kernel. */
export function jupyterEnv(): Record<string, string> {
  const existing = process.env.JUPYTER_PATH;
  return { JUPYTER_PATH: existing ? `${JUPYTER_DATA_DIR}${path.delimiter}${existing}` : JUPYTER_DATA_DIR };
}

function assertJupyterReady(): void {
  const spec = path.join(JUPYTER_DATA_DIR, "kernels", KERNEL_NAME, "kernel.json");
  for (const [file, what] of [
    [PYTHON, "Debian's python3"],
    [JUPYTER, "Debian's jupyter"],
    [spec, "the project's tslab kernelspec"],
  ]) {
    if (!fs.existsSync(file)) throw new Error(`${what} (${file}) is missing: run "npm run setup" (node scripts/setup-jupyter.mjs)`);
  }
}

function runProcess(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

function head(text: string, lines: number): string {
  const all = text.trimEnd().split("\n");
  return all.length <= lines ? all.join("\n") : [...all.slice(0, lines), "…"].join("\n");
}

function tail(text: string, lines: number): string {
  const all = text.trimEnd().split("\n");
  return all.length <= lines ? all.join("\n") : ["…", ...all.slice(-lines)].join("\n");
}
