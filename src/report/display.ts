// Rich output in tslab notebooks: figures, tables, live progress. Outside a tslab kernel (node scripts,
// tests) figures and progress are no-ops and tables print as text.
//
// How a figure appears (showFigure emits two outputs):
//  1. a static PNG ({image/png, text/plain}), rendered by plotly.js in headless Chromium: what viewers that run
//     no scripts show (GitHub, untrusted notebooks), and what shows if plotly.js is not loaded;
//  2. the interactive figure ({text/html}: a div and a script calling Plotly.newPlot). Where scripts run
//     (Jupyter, the exported HTML report) it draws, then hides output 1 (found by a marker taken from the PNG).
// plotly.js (4.6 MB) goes out once per kernel session as its own output; executeNotebook removes it from the
// saved notebook (keeps it small) and exportHtml puts it back, once, into the HTML report's <head>.
import { randomBytes } from "crypto";
import type { PlotlyFigure } from "./figures";
import { DEFAULT_FIGURE_HEIGHT, DEFAULT_FIGURE_WIDTH, plotlyJsPath, renderPng } from "./png";
import * as fs from "fs";

/** Output metadata key marking what an output is, for post-processing (notebooks.ts) and checks. */
export const OUTPUT_ROLE_KEY = "fwprune";
export type OutputRole = "plotly-loader" | "figure-static" | "figure-interactive" | "table" | "progress";

interface DisplayContent {
  data: Record<string, string>;
  metadata: Record<string, unknown>;
  transient: { display_id?: string };
}
type DisplayWriter = (content: DisplayContent, update: boolean) => void;

/**
 * The running tslab kernel's display_data writer, or undefined outside tslab. tslab's public Display API sends
 * one MIME type per output; its kernel module keeps the function that sends a whole bundle (several MIME types
 * plus metadata), which is what a figure with a static fallback needs. Found through Node's module cache so
 * that plain Node never loads tslab.
 */
function kernelWriter(): DisplayWriter | undefined {
  for (const [file, mod] of Object.entries(require.cache)) {
    if (/[\\/]tslab[\\/]dist[\\/]jupyter\.js$/.test(file)) {
      const writer = (mod?.exports as { lastWriteDisplayData?: DisplayWriter | null } | undefined)?.lastWriteDisplayData;
      if (typeof writer === "function") return writer;
    }
  }
  return undefined;
}

/** True when running inside a tslab Jupyter kernel (rich output is possible). */
export function inNotebook(): boolean {
  return kernelWriter() !== undefined;
}

function emit(data: Record<string, string>, role: OutputRole, extra: { metadata?: Record<string, unknown>; displayId?: string; update?: boolean } = {}): void {
  const writer = kernelWriter();
  if (!writer) return;
  writer(
    {
      data,
      metadata: { ...extra.metadata, [OUTPUT_ROLE_KEY]: { role } },
      transient: extra.displayId ? { display_id: extra.displayId } : {},
    },
    extra.update ?? false,
  );
}

// ---------------------------------------------------------------------------------------------- figures

const globalState = globalThis as unknown as { __fwprunePlotlyShipped?: boolean; __fwprunePngWarned?: boolean };

/** Send plotly.js to the notebook page (once per kernel session; `force` sends it again, e.g. after a page reload). */
export function loadPlotly(opts: { force?: boolean } = {}): void {
  if (!inNotebook() || (globalState.__fwprunePlotlyShipped && !opts.force)) return;
  const js = fs.readFileSync(plotlyJsPath(), "utf8");
  emit({ "text/html": `<script type="text/javascript">${js}</script>`, "text/plain": "" }, "plotly-loader");
  globalState.__fwprunePlotlyShipped = true;
}

export interface ShowFigureOptions {
  width?: number;
  height?: number;
  /** PNG pixel ratio (default 1). */
  scale?: number;
  /** Emit the static PNG (default true; FWPRUNE_STATIC_FIGURES=0 turns it off). */
  static?: boolean;
  /** Emit the interactive figure (default true). */
  interactive?: boolean;
}

/** Show a Plotly figure in the notebook: static PNG + interactive version. Await it. */
export async function showFigure(fig: PlotlyFigure, opts: ShowFigureOptions = {}): Promise<void> {
  if (!inNotebook()) return;
  const plain = plainFigure(fig);
  const width = opts.width ?? positive(plain.layout.width) ?? DEFAULT_FIGURE_WIDTH;
  const height = opts.height ?? positive(plain.layout.height) ?? DEFAULT_FIGURE_HEIGHT;
  const id = randomBytes(6).toString("hex");
  let pngBase64: string | undefined;
  if (opts.static !== false && process.env.FWPRUNE_STATIC_FIGURES !== "0") {
    try {
      pngBase64 = (await renderPng(plain, { width, height, scale: opts.scale ?? 1 })).toString("base64");
    } catch (err) {
      if (!globalState.__fwprunePngWarned) {
        console.error(`fwprune: no static figure images (${err instanceof Error ? err.message : String(err)})`);
        globalState.__fwprunePngWarned = true;
      }
    }
  }
  const title = figureTitle(plain);
  const marker = pngBase64 ? staticMarker(pngBase64) : undefined;
  if (pngBase64) {
    emit({ "image/png": pngBase64, "text/plain": `<Figure: ${title}>` }, "figure-static", {
      metadata: { "image/png": { width, height } },
    });
  }
  if (opts.interactive !== false) {
    loadPlotly();
    emit(
      {
        "text/html": figureHtml(plain, { id, width, height, staticMarker: marker }),
        "text/plain": pngBase64 ? "" : `<Figure: ${title}>`,
      },
      "figure-interactive",
    );
  }
}

/**
 * A substring of the PNG's base64 that identifies it: the end of its last IDAT chunk (zlib checksum and CRC),
 * just before the constant IEND chunk.
 */
export function staticMarker(pngBase64: string): string {
  return pngBase64.slice(-80, -24);
}

/** The interactive figure's HTML: a div, and a script that draws into it and hides the static image. */
export function figureHtml(fig: PlotlyFigure, opts: { id: string; width: number; height: number; staticMarker?: string }): string {
  const divId = `fwprune-fig-${opts.id}`;
  const layout = { ...fig.layout };
  delete layout.width; // the interactive figure fills the output's width (up to opts.width) and follows resizes
  layout.autosize = true;
  const payload = scriptJson({ data: fig.data, layout, divId, width: opts.width, height: opts.height, marker: opts.staticMarker ?? null });
  const markerAttr = opts.staticMarker ? ` data-fwprune-static="${opts.staticMarker}"` : "";
  return `<div id="${divId}" class="fwprune-plot"${markerAttr}></div>
<script type="text/javascript">
(function (f, script) {
  function draw(el) {
    el.style.width = "100%";
    el.style.maxWidth = f.width + "px";
    el.style.height = f.height + "px";
    window.Plotly.newPlot(el, f.data, f.layout, { responsive: true, displaylogo: false }).then(function () {
      if (!f.marker) return;
      var imgs = document.getElementsByTagName("img");
      for (var i = 0; i < imgs.length; i++) {
        if (imgs[i].src.indexOf(f.marker) < 0) continue;
        var box = imgs[i].closest(".jp-OutputArea-child, .output_area, .cell-output-display") || imgs[i];
        box.style.display = "none";
      }
    });
  }
  var tries = 0;
  (function attempt() {
    if (!window.Plotly) return; // plotly.js not loaded here: the static image stays
    var el = (script && script.previousElementSibling && script.previousElementSibling.id === f.divId)
      ? script.previousElementSibling : document.getElementById(f.divId);
    if (el && el.isConnected) return draw(el);
    if (tries++ < 50) setTimeout(attempt, 100);
  })();
})(${payload}, document.currentScript);
</script>`;
}

/** JSON-safe copy: typed arrays become arrays, NaN/Infinity become null (gaps), functions are dropped. */
export function plainFigure(fig: PlotlyFigure): PlotlyFigure {
  if (!fig || !Array.isArray(fig.data) || typeof fig.layout !== "object" || fig.layout === null) {
    throw new Error(`showFigure: expected a figure { data: Trace[], layout: {...} }; got ${JSON.stringify(fig)?.slice(0, 120)}`);
  }
  return JSON.parse(JSON.stringify(fig, (_key, v) => (ArrayBuffer.isView(v) ? Array.from(v as unknown as ArrayLike<number>) : v)));
}

/** JSON for inlining inside <script>: no "</script>" or line separators can end the script early. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

function figureTitle(fig: PlotlyFigure): string {
  const t = fig.layout.title;
  if (typeof t === "string") return t;
  if (t && typeof t === "object" && typeof (t as { text?: unknown }).text === "string") return (t as { text: string }).text;
  return "figure";
}

function positive(v: unknown): number | undefined {
  return typeof v === "number" && v > 0 ? v : undefined;
}

// ----------------------------------------------------------------------------------------------- tables

export interface TableOptions {
  title?: string;
  /** Significant digits for non-integer numbers (default 4). */
  digits?: number;
  /** Rows shown (default 50); the rest are summarised in one line. */
  maxRows?: number;
}

/** A danfo DataFrame (duck-typed: columns + values), or plain rows. */
export type TableLike = { columns: string[]; values: unknown[][] } | Record<string, unknown>[];

/** Show a table: HTML in the notebook (with a text version), printed text outside it. */
export function showTable(table: TableLike, opts: TableOptions = {}): void {
  const { columns, rows } = tableCells(table, opts.digits ?? 4);
  const maxRows = opts.maxRows ?? 50;
  const shown = rows.slice(0, maxRows);
  const more = rows.length - shown.length;
  const text = tableText(columns, shown, opts.title, more);
  if (!inNotebook()) {
    console.log(text);
    return;
  }
  emit({ "text/html": tableHtml(columns, shown, opts.title, more), "text/plain": text }, "table");
}

/** Column names and formatted cell strings of a table. */
export function tableCells(table: TableLike, digits = 4): { columns: string[]; rows: string[][] } {
  if (!Array.isArray(table)) {
    if (!table || !Array.isArray(table.columns) || !Array.isArray(table.values)) {
      throw new Error("showTable: expected a danfo DataFrame (columns, values) or an array of row objects");
    }
    return { columns: table.columns.map(String), rows: table.values.map((r) => r.map((v) => formatCell(v, digits))) };
  }
  const columns: string[] = [];
  for (const row of table) for (const key of Object.keys(row)) if (!columns.includes(key)) columns.push(key);
  return { columns, rows: table.map((row) => columns.map((c) => formatCell(row[c], digits))) };
}

/** Numbers with `digits` significant digits (integers, and values ≥ 10^digits, unrounded past the point). */
export function formatCell(v: unknown, digits = 4): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") {
    if (!Number.isFinite(v)) return String(v);
    if (Number.isInteger(v) || Math.abs(v) >= 10 ** digits) return String(Math.round(v));
    return String(Number(v.toPrecision(digits)));
  }
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function tableHtml(columns: string[], rows: string[][], title: string | undefined, more: number): string {
  const esc = escapeHtml;
  const head = `<tr>${columns.map((c) => `<th>${esc(c)}</th>`).join("")}</tr>`;
  const body = rows.map((r) => `<tr>${r.map((v) => `<td>${esc(v)}</td>`).join("")}</tr>`).join("\n");
  const caption = title ? `<caption>${esc(title)}</caption>` : "";
  const tail = more > 0 ? `<tr><td colspan="${columns.length}">… ${more} more rows</td></tr>` : "";
  return `<table class="fwprune-table">${caption}<thead>${head}</thead><tbody>\n${body}${tail}</tbody></table>`;
}

function tableText(columns: string[], rows: string[][], title: string | undefined, more: number): string {
  const widths = columns.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((v, i) => v.padEnd(widths[i]))
      .join("  ")
      .trimEnd();
  const out = [line(columns), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)];
  if (title) out.unshift(title);
  if (more > 0) out.push(`… ${more} more rows`);
  return out.join("\n");
}

export function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

// --------------------------------------------------------------------------------------------- progress

export interface ProgressHandle {
  /** Report `done` of `total` units (total may change, e.g. when it becomes known). */
  update(done: number, total?: number, note?: string): void;
  /** Final state; always shown. */
  finish(note?: string): void;
}

/**
 * A progress bar that updates in place in the notebook (one output, updated at most every `intervalMs`).
 * Outside a notebook it does nothing.
 */
export function progressDisplay(label: string, opts: { total?: number; intervalMs?: number } = {}): ProgressHandle {
  const start = Date.now();
  const displayId = randomBytes(8).toString("hex");
  const interval = opts.intervalMs ?? 250;
  let total = opts.total ?? 0;
  let done = 0;
  let note: string | undefined;
  let shown = false;
  let lastShown = 0;
  const show = (force: boolean, finished: boolean) => {
    if (!inNotebook()) return;
    const now = Date.now();
    if (!force && shown && now - lastShown < interval) return;
    const view = formatProgress({ label, done, total, elapsedMs: now - start, note, finished });
    emit({ "text/html": view.html, "text/plain": view.text }, "progress", { displayId, update: shown });
    shown = true;
    lastShown = now;
  };
  show(true, false);
  return {
    update(d, t, n) {
      done = d;
      if (t !== undefined) total = t;
      if (n !== undefined) note = n;
      show(false, false);
    },
    finish(n) {
      if (n !== undefined) note = n;
      if (total > 0 && done < total) done = total;
      show(true, true);
    },
  };
}

/** The text and HTML of a progress line: label, bar, count, percent, elapsed time, ETA, note. */
export function formatProgress(p: { label: string; done: number; total: number; elapsedMs: number; note?: string; finished?: boolean }): {
  text: string;
  html: string;
} {
  const frac = p.total > 0 ? Math.min(1, Math.max(0, p.done / p.total)) : 0;
  const width = 24;
  const filled = Math.round(frac * width);
  const count = p.total > 0 ? `${p.done}/${p.total} (${Math.round(frac * 100)}%)` : `${p.done}`;
  const elapsed = formatSeconds(p.elapsedMs / 1000);
  const eta = !p.finished && frac > 0 && frac < 1 ? ` · ETA ${formatSeconds(((p.elapsedMs / frac) * (1 - frac)) / 1000)}` : "";
  const tail = `${count} · ${elapsed}${p.finished ? " · done" : eta}${p.note ? ` · ${p.note}` : ""}`;
  const text = `${p.label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${tail}`;
  const bar = p.total > 0 ? `<progress max="${p.total}" value="${Math.min(p.done, p.total)}"></progress>` : "";
  const html = `<div class="fwprune-progress" style="font-family:monospace"><b>${escapeHtml(p.label)}</b> ${bar} ${escapeHtml(tail)}</div>`;
  return { text, html };
}

export function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}
