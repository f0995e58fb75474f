import * as tf from "@tensorflow/tfjs";
import { BackendName, initBackend } from "./backend";
import { cpuClockMs, FusedMomentumOptimizer, KernelTiming, profileKernels } from "./kernels";
import { createModel, disposeModel, forward, PAPER_CNN } from "./model";
import { mulberry32 } from "./random";
import { trainStep } from "./train";

/** `fwprune bench --json`'s line; the same definition as the PyTorch peer (shared/peers/torch_bench.py). */
export interface BenchResult {
  backend: string;
  model: "paper-cnn";
  batch: 64;
  trainSamplesPerSec: number;
  inferSamplesPerSec: number;
}

export interface BenchOptions {
  backend?: BackendName;
  /** Samples timed for training and at least this many for inference (≥ 2,000). */
  samples?: number;
  /** Also time each kernel over the training steps (a separate pass, so it does not slow the timed one). */
  profile?: boolean;
  seed?: number;
}

export interface KernelStepTiming {
  kernel: string;
  callsPerStep: number;
  msPerStep: number;
}

export interface BenchReport {
  result: BenchResult;
  /**
   * Per-kernel self time of one training step at batch 64, slowest first, with the step's total; in CPU time
   * of this process, so that other processes on the machine do not inflate it.
   */
  profile?: { msPerStep: number; kernels: KernelStepTiming[] };
}

const BATCH = 64;
const INFER_BATCH = 1000;
const WARMUP_SAMPLES = 512;

/**
 * Training = forward + backward + SGD-momentum update (src/train.ts's trainStep) of the paper CNN at batch 64;
 * inference = forward at batch 1000; both on uniform random images with random labels, after a warm-up.
 */
export async function runBench(opts: BenchOptions = {}): Promise<BenchReport> {
  const samples = opts.samples ?? 4096;
  if (!Number.isInteger(samples) || samples < 2000) throw new Error(`bench samples: got ${samples}; expected an integer ≥ 2000`);
  const backend = await initBackend(opts.backend, { quiet: true });
  const rand = mulberry32(opts.seed ?? 0);
  const images = new Float32Array(Math.max(samples, INFER_BATCH) * 28 * 28).map(() => rand());
  const labels = new Int32Array(samples).map(() => Math.floor(rand() * 10));
  const model = createModel(PAPER_CNN, opts.seed ?? 0);
  const optimizer = new FusedMomentumOptimizer(0.01, 0.9);
  const steps = Math.ceil(samples / BATCH);
  const batches = Array.from({ length: steps }, (_, i) => {
    const size = Math.min(BATCH, samples - i * BATCH);
    return {
      x: tf.tensor4d(images.subarray(i * BATCH * 784, (i * BATCH + size) * 784), [size, 28, 28, 1]),
      y: tf.tensor1d(labels.subarray(i * BATCH, i * BATCH + size), "int32"),
    };
  });
  const inferX = tf.tensor4d(images.subarray(0, INFER_BATCH * 784), [INFER_BATCH, 28, 28, 1]);
  try {
    const trainOver = (count: number) => {
      for (let i = 0; i < count; i++) trainStep(model, optimizer, batches[i % steps].x, batches[i % steps].y);
    };
    trainOver(WARMUP_SAMPLES / BATCH);
    let start = performance.now();
    trainOver(steps);
    const trainSamplesPerSec = samples / ((performance.now() - start) / 1000);

    const predict = () => tf.tidy(() => forward(model.spec, model.params, inferX).dataSync());
    predict();
    const inferBatches = Math.max(2, Math.ceil(samples / INFER_BATCH));
    start = performance.now();
    for (let i = 0; i < inferBatches; i++) predict();
    const inferSamplesPerSec = (inferBatches * INFER_BATCH) / ((performance.now() - start) / 1000);

    const result: BenchResult = {
      backend,
      model: "paper-cnn",
      batch: BATCH,
      trainSamplesPerSec: round1(trainSamplesPerSec),
      inferSamplesPerSec: round1(inferSamplesPerSec),
    };
    if (!opts.profile) return { result };
    const profiledSteps = Math.min(steps, 32);
    const profiler = profileKernels(backend, cpuClockMs);
    try {
      start = cpuClockMs();
      trainOver(profiledSteps);
      const msPerStep = (cpuClockMs() - start) / profiledSteps;
      const kernels = profiler.timings().map((t: KernelTiming) => ({
        kernel: t.kernel,
        callsPerStep: round1(t.calls / profiledSteps),
        msPerStep: Math.round((t.selfMs / profiledSteps) * 100) / 100,
      }));
      return { result, profile: { msPerStep: Math.round(msPerStep * 100) / 100, kernels } };
    } finally {
      profiler.stop();
    }
  } finally {
    optimizer.dispose();
    disposeModel(model);
    tf.dispose([inferX, ...batches.flatMap((b) => [b.x, b.y])]);
  }
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

/** The readable summary `fwprune bench` prints without --json. */
export function formatBench(report: BenchReport): string {
  const r = report.result;
  const lines = [
    `backend ${r.backend}, model ${r.model}`,
    `training (batch ${r.batch}, SGD momentum): ${r.trainSamplesPerSec.toFixed(0)} samples/s (${((1000 * r.batch) / r.trainSamplesPerSec).toFixed(1)} ms/step)`,
    `inference (batch ${INFER_BATCH}): ${r.inferSamplesPerSec.toFixed(0)} samples/s`,
  ];
  if (report.profile) {
    const { msPerStep, kernels } = report.profile;
    const inKernels = kernels.reduce((s, k) => s + k.msPerStep, 0);
    lines.push(`training step profile, CPU time (${msPerStep.toFixed(1)} ms/step with timers; outside kernels ${(msPerStep - inKernels).toFixed(1)} ms):`);
    for (const k of kernels.filter((k) => k.msPerStep >= 0.05)) {
      lines.push(`  ${k.kernel.padEnd(24)} ${k.msPerStep.toFixed(2).padStart(7)} ms  ${k.callsPerStep.toString().padStart(5)} calls`);
    }
  }
  return lines.join("\n");
}
