import { Command } from "commander";
import * as fs from "fs";
import * as path from "path";
import { datasetFor } from "../datasets";
import { assertReplaceableFolder, assertWritableFolder, publishFolder } from "../fsutil";
import { FileSize, decodeSparseWeights, encodeSparseWeights, layersArtifactsFor, sizeOf } from "../inference/export";
import { dataDirFromFlag, displayPath } from "../paths";
import { ExperimentConfig, loadConfig, validateConfig } from "./config";
import { RunSelectionFlags, runSelectionOptions, selectRun } from "./flags";
import { ensureBackend, ensureFinalModel } from "./run";
import { layersModelAccuracy } from "../measure";
import { runOne } from "./run-one";
import { countingBar } from "./commands";

/** Which run to export (the run-selection flags) and where to. */
export interface ExportOptions extends Omit<RunSelectionFlags, "preset" | "dataDir"> {
  /** A preset name or config file (as --preset), or a config. */
  preset: string | ExperimentConfig;
  out: string;
  dataDir: string;
  onStatus?: (message: string) => void;
  onProgress?: (done: number, total: number) => void;
}

/** What an export folder holds: a folder with only these may be replaced by another export. */
const EXPORT_FILES = ["model.json", "weights.bin", "model.fwsparse", "sizes.json"];

export interface ExportReport {
  key: string;
  testAccuracy: number;
  sparsity: number;
  files: { layersModel: FileSize[]; sparse: FileSize };
  /** model.json + weights file, and the sparse file, raw and gzipped. */
  denseBytes: number;
  denseGzippedBytes: number;
  sparseBytes: number;
  sparseGzippedBytes: number;
}

/**
 * Export one run's final model, as the store keeps it beside the run's record (final-model.ts): nothing is trained or
 * timed when both are cached. A run without a stored model (a shipped record, a record older than the model files) or
 * with one that fails verification is recomputed once from its checkpoint (runs are seeded and deterministic on one
 * machine), must reproduce its recorded test accuracy and zeros exactly, and keeps its model. The layers model, loaded
 * back through plain tfjs, must give the recorded accuracy; the sparse file must decode to the same weights. Any
 * mismatch stops the export before a file is written.
 */
export async function exportRun(opts: ExportOptions): Promise<ExportReport> {
  await ensureBackend();
  const config = typeof opts.preset === "string" ? loadConfig(opts.preset) : validateConfig(opts.preset);
  // Refuse a run the config does not have, and an --out that cannot be written, before any computing.
  const plan = selectRun(config, opts);
  assertWritableFolder(opts.out, "--out");
  assertReplaceableFolder(opts.out, EXPORT_FILES, "--out");
  opts.onStatus?.("the run's record (computed now if it is not cached)");
  const selection = { model: plan.model, method: opts.method, budget: plan.budget, seed: plan.seed, sparsity: plan.sparsity ?? undefined };
  const record = await runOne(config, selection, { dataDir: opts.dataDir });
  if (!record || record.status !== "ok" || !record.metrics) throw new Error(`the run failed, nothing to export: ${record?.reason ?? "no record"}`);
  if (record.key !== plan.key) throw new Error(`run ${record.key} is not the run ${plan.key} of ${config.name} that the flags name`);
  const final = await ensureFinalModel(config, plan, record, opts.dataDir, opts);
  const spec = final.layers;
  const weights = final.weights;
  const recorded = record.metrics;

  opts.onStatus?.("checking the layers model through plain tfjs, and the sparse file's round trip");
  const { json, weights: weightBytes } = layersArtifactsFor(spec, weights);
  const accuracy = await layersModelAccuracy(json, weightBytes, datasetFor(plan.dataset).test);
  if (accuracy !== recorded.testAccuracy) {
    throw new Error(`the exported layers model scores ${accuracy} on the test split; the record says ${recorded.testAccuracy}; nothing was written`);
  }
  const sparseBytes = encodeSparseWeights(spec, weights);
  const decoded = decodeSparseWeights(sparseBytes);
  for (const [name, v] of Object.entries(weights)) {
    const back = decoded.weights[name];
    if (!back || back.length !== v.length || back.some((x, i) => x !== v[i]))
      throw new Error(`the sparse file does not give back ${name} exactly; nothing was written`);
  }

  const modelJson = Buffer.from(JSON.stringify(json));
  const layersModel = [sizeOf("model.json", modelJson), sizeOf("weights.bin", weightBytes)];
  const sparse = sizeOf("model.fwsparse", sparseBytes);
  const report: ExportReport = {
    key: record.key,
    testAccuracy: recorded.testAccuracy,
    sparsity: recorded.sparsity,
    files: { layersModel, sparse },
    denseBytes: layersModel.reduce((n, f) => n + f.bytes, 0),
    denseGzippedBytes: layersModel.reduce((n, f) => n + f.gzippedBytes, 0),
    sparseBytes: sparse.bytes,
    sparseGzippedBytes: sparse.gzippedBytes,
  };
  // All or nothing: the four files appear together in --out, or the previous export stays there whole.
  const files = {
    "model.json": modelJson,
    "weights.bin": weightBytes,
    "model.fwsparse": sparseBytes,
    "sizes.json": Buffer.from(JSON.stringify(report, null, 1) + "\n"),
  };
  publishFolder(opts.out, files, EXPORT_FILES, "--out");
  return report;
}

export function formatExport(r: ExportReport, out: string): string {
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  return [
    `exported run ${r.key} (test accuracy ${r.testAccuracy}, sparsity ${(100 * r.sparsity).toFixed(1)}%) to ${displayPath(out)}:`,
    `  layers model (model.json + weights.bin): ${kb(r.denseBytes)}, gzipped ${kb(r.denseGzippedBytes)}`,
    `  sparse file (model.fwsparse):            ${kb(r.sparseBytes)}, gzipped ${kb(r.sparseGzippedBytes)}`,
    `  sparse / dense: ${(r.sparseBytes / r.denseBytes).toFixed(3)} raw, ${(r.sparseGzippedBytes / r.denseGzippedBytes).toFixed(3)} gzipped (sizes.json)`,
  ].join("\n");
}

export function registerExportCommand(program: Command): void {
  runSelectionOptions(
    program
      .command("export")
      .description("write one run's final model as a TensorFlow.js layers model (model.json + weights.bin), a compact sparse file, and their sizes"),
  )
    .requiredOption("--out <dir>", "the folder to write (created if missing)")
    .action(async (opts: RunSelectionFlags & { out: string }) => {
      const out = path.resolve(opts.out);
      if (fs.existsSync(out) && !fs.statSync(out).isDirectory()) throw new Error(`--out: ${out} exists and is not a folder`);
      const report = await exportRun({
        ...opts,
        out,
        dataDir: dataDirFromFlag(opts.dataDir),
        onStatus: (m) => process.stderr.write(`fwprune export: ${m}\n`),
        onProgress: countingBar("{bar} {value}/{total} pruning steps").update,
      });
      console.log(formatExport(report, out));
    });
}
