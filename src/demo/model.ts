import * as fs from "fs";
import * as path from "path";
import { quickCheckpoint } from "../bench-sparse";
import { magnitudePruned, roundTo } from "../measure";
import { ensureBackend } from "../experiment/run";
import { writeFileAtomic } from "../fsutil";
import { decodeSparseWeights, encodeSparseWeights, layersArtifactsFor } from "../inference/export";
import { loadSparseModel } from "../runtime";
import type { DemoInfo } from "./types";

export type { DemoInfo };

/**
 * The model the demo page serves: the quick preset's checkpoint (seed 0, epoch 2: the one `bench --sparse` prunes)
 * pruned by global magnitude to 95%, exported as `fwprune export` writes a model (model.json + weights.bin for plain
 * tfjs, model.fwsparse for the runtime), with the first test digits and what the page shows about them.
 */
export const DEMO_SPARSITY = 0.95;
export const DEMO_BUDGET = 2;
export const DEMO_DIGITS = 1000;

export const DEMO_FILES = ["model.json", "weights.bin", "model.fwsparse", "digits.f32"] as const;

export function demoFolder(dataDir: string): string {
  return path.join(dataDir, "exports", `demo-magnitude-${DEMO_SPARSITY}`);
}

/** Whether a file is a sparse file this fwprune reads (an older format, or a damaged file, is exported again). */
function currentSparseFormat(file: string): boolean {
  try {
    decodeSparseWeights(fs.readFileSync(file), file);
    return true;
  } catch {
    return false;
  }
}

/** The demo's folder, exported now if it is missing, incomplete (info.json is written last) or of an older sparse format. */
export async function ensureDemoModel(dataDir: string, onStatus: (message: string) => void = () => {}): Promise<{ dir: string; info: DemoInfo }> {
  const dir = demoFolder(dataDir);
  const infoFile = path.join(dir, "info.json");
  if (fs.existsSync(infoFile) && DEMO_FILES.every((f) => fs.existsSync(path.join(dir, f))) && currentSparseFormat(path.join(dir, "model.fwsparse"))) {
    return { dir, info: JSON.parse(fs.readFileSync(infoFile, "utf8")) as DemoInfo };
  }
  await ensureBackend();
  const { spec, weights, test } = await quickCheckpoint(dataDir, DEMO_BUDGET, onStatus);
  onStatus(`exporting it pruned to ${100 * DEMO_SPARSITY}% by global magnitude into ${dir}`);
  const { pruned, flops } = magnitudePruned(spec, weights, DEMO_SPARSITY);
  const flopsSpeedup = roundTo(flops.speedup, 2);
  const { json, weights: weightBytes } = layersArtifactsFor(spec, pruned);
  const sparse = encodeSparseWeights(spec, pruned);
  const runtime = await loadSparseModel(sparse);
  const logits = runtime.predict(test.images, test.count);
  let correct = 0;
  for (let i = 0; i < test.count; i++) {
    const row = logits.subarray(i * 10, i * 10 + 10);
    if (row.indexOf(Math.max(...row)) === test.labels[i]) correct++;
  }
  const count = Math.min(DEMO_DIGITS, test.count);
  const info: DemoInfo = {
    model: spec.name,
    checkpoint: `quick preset, seed 0, epoch ${DEMO_BUDGET}`,
    pruning: "global magnitude",
    sparsity: DEMO_SPARSITY,
    flopsSpeedup,
    testAccuracy: correct / test.count,
    digits: { count, labels: Array.from(test.labels.subarray(0, count)) },
  };
  fs.mkdirSync(dir, { recursive: true });
  fs.rmSync(infoFile, { force: true });
  writeFileAtomic(path.join(dir, "model.json"), JSON.stringify(json));
  writeFileAtomic(path.join(dir, "weights.bin"), weightBytes);
  writeFileAtomic(path.join(dir, "model.fwsparse"), sparse);
  writeFileAtomic(path.join(dir, "digits.f32"), new Uint8Array(test.images.slice(0, count * 784).buffer));
  writeFileAtomic(infoFile, JSON.stringify(info, null, 1) + "\n");
  return { dir, info };
}
