import { Command } from "commander";
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { Split, pixelsPerImage } from "../data";
import { datasetFor } from "../datasets";
import { assertReplaceableFolder, assertWritableFolder, publishFolder } from "../fsutil";
import { FileSize, decodeSparseWeights, encodeSparseWeights, layersArtifactsFor, sizeOf } from "../inference/export";
import { Model, ModelSpec, getWeights, specOf } from "../model";
import { PRESET_NAMES, dataDirFromFlag, displayPath } from "../paths";
import { ExperimentConfig, loadConfig, validateConfig } from "./config";
import { planRuns } from "./plan";
import { computeRecord, ensureBackend } from "./run";
import { runOne } from "./sweep";
import { countingBar, positiveInteger } from "./commands";

export interface ExportOptions {
  /** A preset name or config file (as --preset), or a config. */
  preset: string | ExperimentConfig;
  method: string;
  budget: number;
  seed?: number;
  sparsity?: number;
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
 * Export one run's final model. Records hold no weights, so the run is recomputed from its checkpoint (runs are
 * seeded and deterministic on one machine) and must reproduce its recorded test accuracy and zeros exactly; the
 * layers model, loaded back through plain tfjs, must give that accuracy too; the sparse file must decode to the
 * same weights. Any mismatch stops the export before a file is written.
 */
export async function exportRun(opts: ExportOptions): Promise<ExportReport> {
  await ensureBackend();
  const config = typeof opts.preset === "string" ? loadConfig(opts.preset) : validateConfig(opts.preset);
  // Refuse a run the config does not have, and an --out that cannot be written, before any computing.
  const plans = planRuns(config);
  const runs = plans.filter((p) => p.label === opts.method);
  if (runs.length === 0)
    throw new Error(`--method: ${JSON.stringify(opts.method)} is not a method of ${config.name} (${[...new Set(plans.map((p) => p.label))].join(", ")})`);
  const seed = opts.seed ?? config.seeds[0];
  if (!runs.some((p) => p.budget === opts.budget && p.seed === seed && (opts.sparsity === undefined || p.sparsity === opts.sparsity))) {
    const values = (f: (p: (typeof runs)[number]) => unknown) => [...new Set(runs.map(f))].join(", ");
    throw new Error(
      `${opts.method} of ${config.name} has no run at budget ${opts.budget}, seed ${seed}${opts.sparsity === undefined ? "" : `, target ${opts.sparsity}`}; ` +
        `its runs have budgets ${values((p) => p.budget)}, seeds ${values((p) => p.seed)}, targets ${values((p) => p.sparsity ?? "none")}`,
    );
  }
  assertWritableFolder(opts.out, "--out");
  assertReplaceableFolder(opts.out, EXPORT_FILES, "--out");
  opts.onStatus?.("the run's record (computed now if it is not cached)");
  const record = await runOne(config, { method: opts.method, budget: opts.budget, seed: opts.seed, sparsity: opts.sparsity }, { dataDir: opts.dataDir });
  if (!record || record.status !== "ok" || !record.metrics) throw new Error(`the run failed, nothing to export: ${record?.reason ?? "no record"}`);
  const plan = plans.find((p) => p.key === record.key);
  if (!plan) throw new Error(`run ${record.key} is not among the runs of ${config.name}`);

  opts.onStatus?.("recomputing the run from its checkpoint to take its final weights");
  let weights: Record<string, Float32Array> | undefined;
  let spec: ModelSpec | undefined;
  const again = await computeRecord(plan, opts.dataDir, record.config, opts.onProgress, (model: Model) => {
    weights = getWeights(model);
    spec = specOf(model);
  });
  if (again.status !== "ok" || !again.metrics || !weights || !spec) throw new Error(`recomputing the run failed: ${again.reason ?? "no final model"}`);
  const recorded = record.metrics;
  if (again.metrics.testAccuracy !== recorded.testAccuracy || again.metrics.zeros !== recorded.zeros) {
    throw new Error(
      `recomputing ${record.label} (budget ${record.budget}, seed ${record.seed}) gave test accuracy ${again.metrics.testAccuracy} with ${again.metrics.zeros} zeros; ` +
        `the record (${record.backend}, tfjs ${record.versions.tfjs}, ${record.host}) says ${recorded.testAccuracy} with ${recorded.zeros}: ` +
        "the run does not reproduce here, so these weights are not the recorded model; nothing was written",
    );
  }

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

/** Test accuracy of a layers model loaded by tf.loadLayersModel from memory, as a plain tfjs user would load it. */
export async function layersModelAccuracy(
  json: { modelTopology: object; weightsManifest: { weights: tf.io.WeightsManifestEntry[] }[] },
  weightBytes: Uint8Array,
  split: Split,
): Promise<number> {
  const weightData = weightBytes.buffer.slice(weightBytes.byteOffset, weightBytes.byteOffset + weightBytes.length) as ArrayBuffer;
  const model = await tf.loadLayersModel({
    load: async () => ({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest[0].weights, weightData }),
  });
  try {
    let correct = 0;
    for (let s = 0; s < split.count; s += 1000) {
      const n = Math.min(1000, split.count - s);
      const size = pixelsPerImage(split.shape);
      const predicted = tf.tidy(() =>
        (model.predict(tf.tensor4d(split.images.subarray(s * size, (s + n) * size), [n, ...split.shape])) as tf.Tensor).argMax(-1).dataSync(),
      );
      for (let i = 0; i < n; i++) if (predicted[i] === split.labels[s + i]) correct++;
    }
    return correct / split.count;
  } finally {
    model.dispose();
  }
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
  program
    .command("export")
    .description("write one run's final model as a TensorFlow.js layers model (model.json + weights.bin), a compact sparse file, and their sizes")
    .requiredOption("--preset <name|file>", `${PRESET_NAMES.join(" | ")} | path of a JSON config`)
    .requiredOption("--method <name>", "a method name of the config (or a variant's name)")
    .requiredOption("--budget <epochs>", "pre-training budget (checkpoint epoch)", positiveInteger("--budget", 1))
    .requiredOption("--out <dir>", "the folder to write (created if missing)")
    .option("--seed <n>", "seed (default: the config's first)", positiveInteger("--seed"))
    .option("--sparsity <s>", "target sparsity, or FLOP reduction for a structured method (default: the config's first)", (t: string) => {
      const n = Number(t);
      if (t.trim() === "" || !(n >= 0 && n < 1)) throw new Error(`--sparsity: expected a number in [0, 1), got ${JSON.stringify(t)}`);
      return n;
    })
    .option("--data-dir <dir>", "where checkpoints and run records live (default: the data folder)")
    .action(async (opts: { preset: string; method: string; budget: number; out: string; seed?: number; sparsity?: number; dataDir?: string }) => {
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
