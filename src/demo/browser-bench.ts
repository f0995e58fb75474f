import { Command } from "commander";
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { BrowserContext, Page } from "playwright-core";
import { dataDirFromFlag } from "../paths";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../report/png";
import type { BrowserBenchLine } from "./types";
import { startDemoServer } from "./server";

export type { BrowserBenchLine };

type DemoHandle = { bench(opts: { batches?: number[]; rounds?: number }): Promise<BrowserBenchLine[]> };

/**
 * Debian's Chromium, headless, with a fresh profile (removed on close), through playwright-core. `onConsole` sees
 * every console message and page error of every page.
 */
export async function launchChromium(
  onConsole: (type: string, text: string) => void = () => {},
): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  if (!fs.existsSync(CHROMIUM_PATH)) throw new Error(`Chromium not found at ${CHROMIUM_PATH} (set FWPRUNE_CHROMIUM, or apt-get install chromium)`);
  const { chromium } = await import("playwright-core");
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-chromium-"));
  try {
    const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
    const watch = (page: Page) => {
      page.on("console", (m) => onConsole(m.type(), m.text()));
      page.on("pageerror", (e) => onConsole("pageerror", e.message));
    };
    context.pages().forEach(watch);
    context.on("page", watch);
    return {
      context,
      close: async () => {
        await context.close();
        fs.rmSync(profile, { recursive: true, force: true });
      },
    };
  } catch (err) {
    fs.rmSync(profile, { recursive: true, force: true });
    throw err;
  }
}

/** The demo page's benchmark in headless Chromium: tfjs-wasm dense vs the fwprune runtime, measured in the page. */
export async function runBrowserBench(opts: {
  dataDir: string;
  batches?: number[];
  rounds?: number;
  onStatus?: (message: string) => void;
}): Promise<BrowserBenchLine[]> {
  for (const b of opts.batches ?? []) if (!Number.isInteger(b) || b < 1 || b > 1000) throw new Error(`--batches: expected integers in 1..1000, got ${b}`);
  if (opts.rounds !== undefined && (!Number.isInteger(opts.rounds) || opts.rounds < 3))
    throw new Error(`--rounds: expected an integer ≥ 3, got ${opts.rounds}`);
  const server = await startDemoServer({ port: 0, dataDir: opts.dataDir, onStatus: opts.onStatus });
  const errors: string[] = [];
  try {
    const browser = await launchChromium((type, text) => {
      if (type === "error" || type === "pageerror") errors.push(text);
    });
    try {
      const page = await browser.context.newPage();
      opts.onStatus?.(`timing in Chromium at ${server.url}`);
      await page.goto(server.url);
      const lines = await page.evaluate(
        async (o) => {
          const demo = await (globalThis as unknown as { fwpruneDemo: Promise<DemoHandle> }).fwpruneDemo;
          return demo.bench(o);
        },
        { batches: opts.batches, rounds: opts.rounds },
      );
      if (errors.length) throw new Error(`the page reported errors: ${errors.join("; ")}`);
      return lines;
    } finally {
      await browser.close();
    }
  } finally {
    await server.close();
  }
}

export function formatBrowserBenchLine(l: BrowserBenchLine): string {
  const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  return [
    `Chromium, sparsity ${l.sparsity}, batch ${l.batch}: tfjs-wasm dense ${l.denseSamplesPerSec.toFixed(0)} samples/s, fwprune sparse ${l.sparseSamplesPerSec.toFixed(0)} samples/s, ×${l.speedup.toFixed(2)} (FLOP bound ×${l.flopsSpeedup.toFixed(2)}; max relative error ${l.maxRelativeError})`,
    `  gzipped downloads: tfjs ${kib(l.runtimeBytes.dense)} + model ${kib(l.modelBytes.dense)}; fwprune runtime ${kib(l.runtimeBytes.sparse)} + model ${kib(l.modelBytes.sparse)} ` +
      `(${((l.runtimeBytes.sparse + l.modelBytes.sparse) / (l.runtimeBytes.dense + l.modelBytes.dense)).toFixed(3)} of tfjs's)`,
  ].join("\n");
}

export function registerDemoCommand(program: Command): void {
  program
    .command("demo")
    .description(
      "serve the demo page on 127.0.0.1: the pruned paper CNN through the fwprune runtime in the browser, tfjs beside it (exports the model first if it is missing)",
    )
    .option("--port <n>", "port to listen on (0: any free port)", "8765")
    .option("--no-open", "do not open a browser")
    .option("--data-dir <dir>", "where the quick preset's checkpoint and the demo export are cached (default: the data folder)")
    .action(async (opts: { port: string; open: boolean; dataDir?: string }) => {
      const port = Number(opts.port);
      if (opts.port.trim() === "" || !Number.isInteger(port)) throw new Error(`--port: expected an integer in 0..65535, got ${JSON.stringify(opts.port)}`);
      const started = Date.now();
      const server = await startDemoServer({ port, dataDir: dataDirFromFlag(opts.dataDir), onStatus: (m) => process.stderr.write(`fwprune demo: ${m}\n`) });
      console.log(`fwprune demo: ${server.url} (ready in ${((Date.now() - started) / 1000).toFixed(1)} s; Ctrl-C stops it)`);
      if (opts.open) {
        const opener = spawn("xdg-open", [server.url], { stdio: "ignore", detached: true });
        opener.on("error", () => console.log("fwprune demo: no browser to open here; open the address above"));
        opener.unref();
      }
      await new Promise<void>((resolve) => process.once("SIGINT", resolve));
      await server.close();
    });
}
