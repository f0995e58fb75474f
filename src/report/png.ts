// Headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core): static PNGs of Plotly figures,
// and the check that an exported HTML report draws its figures offline. One browser per process, launched on
// first use; the page that renders PNGs keeps plotly.js loaded (loading it costs ~1 s, a figure ~40 ms).
import * as fs from "fs";
import * as path from "path";
import type { Browser, Page } from "playwright-core";
import type { PlotlyFigure } from "./figures";
import { writeFileAtomic } from "../fsutil";

export const CHROMIUM_PATH = process.env.FWPRUNE_CHROMIUM ?? "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export const DEFAULT_FIGURE_WIDTH = 760;
export const DEFAULT_FIGURE_HEIGHT = 440;

export function plotlyJsPath(): string {
  return require.resolve("plotly.js-dist-min/plotly.min.js");
}

let browserPromise: Promise<Browser> | undefined;
let pngPagePromise: Promise<Page> | undefined;

function launchBrowser(): Promise<Browser> {
  if (!browserPromise) {
    browserPromise = (async () => {
      if (!fs.existsSync(CHROMIUM_PATH)) {
        throw new Error(`Chromium not found at ${CHROMIUM_PATH} (set FWPRUNE_CHROMIUM or run "npm run setup")`);
      }
      // playwright-core is loaded only here, so the rest of the library works without it.
      const { chromium } = await import("playwright-core");
      return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
    })();
    browserPromise.catch(() => {
      browserPromise = undefined;
    });
  }
  return browserPromise;
}

/** A page with no network access (every http/https/ws request is aborted); file: URLs still load. */
async function offlinePage(browser: Browser): Promise<{ page: Page; blocked: string[] }> {
  const context = await browser.newContext({ serviceWorkers: "block" });
  const blocked: string[] = [];
  await context.route(/^(https?|wss?):/, (route) => {
    blocked.push(route.request().url());
    return route.abort("internetdisconnected");
  });
  return { page: await context.newPage(), blocked };
}

function pngPage(): Promise<Page> {
  if (!pngPagePromise) {
    pngPagePromise = (async () => {
      const { page } = await offlinePage(await launchBrowser());
      await page.setContent("<!DOCTYPE html><html><body></body></html>");
      await page.addScriptTag({ path: plotlyJsPath() });
      return page;
    })();
    pngPagePromise.catch(() => {
      pngPagePromise = undefined;
    });
  }
  return pngPagePromise;
}

export interface PngOptions {
  width?: number;
  height?: number;
  /** Pixel ratio: 2 gives a sharp image on high-density screens at twice the bytes. */
  scale?: number;
}

/** Render a figure to PNG bytes with plotly.js in headless Chromium. */
export async function renderPng(fig: PlotlyFigure, opts: PngOptions = {}): Promise<Buffer> {
  const page = await pngPage();
  const size = {
    format: "png",
    width: opts.width ?? numberOr(fig.layout.width, DEFAULT_FIGURE_WIDTH),
    height: opts.height ?? numberOr(fig.layout.height, DEFAULT_FIGURE_HEIGHT),
    scale: opts.scale ?? 1,
  };
  const dataUrl = await page.evaluate(
    ([f, o]) => (globalThis as unknown as { Plotly: { toImage(f: unknown, o: unknown): Promise<string> } }).Plotly.toImage(f, o),
    [fig, size] as const,
  );
  const prefix = "data:image/png;base64,";
  if (!dataUrl.startsWith(prefix)) throw new Error(`Plotly.toImage returned ${dataUrl.slice(0, 40)}…; expected a PNG data URL`);
  return Buffer.from(dataUrl.slice(prefix.length), "base64");
}

/** Write a figure as a PNG file (e.g. the README's figure). Call closeBrowser() when done in a script. */
export async function figureToPng(fig: PlotlyFigure, file: string, opts: PngOptions = {}): Promise<void> {
  writeFileAtomic(file, await renderPng(fig, opts));
}

/** Close the shared browser (lets a Node script exit); the next render launches a new one. */
export async function closeBrowser(): Promise<void> {
  const pending = browserPromise;
  browserPromise = undefined;
  pngPagePromise = undefined;
  if (pending) await (await pending.catch(() => undefined))?.close();
}

export interface ReportCheck {
  /** Plotly figure containers in the page. */
  figures: number;
  /** Those that plotly drew with at least one visible trace. */
  drawn: number;
  /** Static fallback images still visible beside a drawn interactive figure (should be 0). */
  staticVisible: number;
  /** Network requests the page tried (all blocked). */
  blockedRequests: string[];
  /** Uncaught page errors and console errors. */
  errors: string[];
}

/**
 * Open an HTML report in headless Chromium with no network, wait for plotly to draw, and count the figures
 * drawn. With `screenshot`, also write a full-page PNG there (capped at `maxScreenshotHeight` pixels).
 */
export async function checkReport(
  htmlFile: string,
  opts: { screenshot?: string; maxScreenshotHeight?: number; timeoutMs?: number } = {},
): Promise<ReportCheck> {
  const { page, blocked } = await offlinePage(await launchBrowser());
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(err.message));
  page.on("console", (msg) => {
    if (msg.type() === "error" && !/net::ERR_INTERNET_DISCONNECTED|Failed to load resource/.test(msg.text())) {
      errors.push(msg.text());
    }
  });
  try {
    await page.setViewportSize({ width: 1100, height: 900 });
    await page.goto(`file://${path.resolve(htmlFile)}`, { waitUntil: "load", timeout: opts.timeoutMs ?? 30000 });
    const count = () =>
      page.evaluate(() => {
        type PlotDiv = { querySelector(s: string): unknown; querySelectorAll(s: string): { length: number }; _fullData?: { visible?: unknown }[] };
        const doc = (globalThis as unknown as { document: { querySelectorAll(s: string): ArrayLike<unknown> } }).document;
        const plots = Array.from(doc.querySelectorAll(".js-plotly-plot, .fwprune-plot")) as PlotDiv[];
        const drawnPlots = plots.filter(
          (p) =>
            p.querySelector(".main-svg") !== null &&
            (p._fullData ?? []).some((t) => t.visible !== false) &&
            p.querySelectorAll(".main-svg .trace, .main-svg .hm, .main-svg image").length > 0,
        );
        // A drawn figure's static fallback image (matched by the marker showFigure put on both) should be hidden.
        type Img = { src: string; offsetParent: unknown };
        const imgs = Array.from(doc.querySelectorAll("img")) as Img[];
        const staticVisible = drawnPlots.filter((p) => {
          const marker = (p as unknown as { dataset: Record<string, string | undefined> }).dataset.fwpruneStatic;
          return marker !== undefined && imgs.some((img) => img.offsetParent !== null && img.src.includes(marker));
        }).length;
        return { figures: plots.length, drawn: drawnPlots.length, staticVisible };
      });
    let result = await count();
    // Figures draw asynchronously; wait until all are drawn or the timeout passes.
    const deadline = Date.now() + (opts.timeoutMs ?? 30000);
    while (result.drawn < result.figures && Date.now() < deadline) {
      await page.waitForTimeout(200);
      result = await count();
    }
    if (opts.screenshot) {
      const height = await page.evaluate(() => (globalThis as unknown as { document: { body: { scrollHeight: number } } }).document.body.scrollHeight);
      fs.mkdirSync(path.dirname(path.resolve(opts.screenshot)), { recursive: true });
      await page.screenshot({
        path: opts.screenshot,
        clip: { x: 0, y: 0, width: 1100, height: Math.min(height, opts.maxScreenshotHeight ?? 6000) },
        fullPage: true,
      });
    }
    return { ...result, blockedRequests: blocked, errors };
  } finally {
    await page.context().close();
  }
}

function numberOr(v: unknown, fallback: number): number {
  return typeof v === "number" && v > 0 ? v : fallback;
}
