import * as tf from "@tensorflow/tfjs-core";
import { BackendName, initBackend } from "./backend";
import { cpuClockMs, FusedMomentumOptimizer, kernelThreads, KernelTiming, profileKernels, whenSplitWorkersReady } from "./kernels";
import { classCount, inputShape } from "./graph";
import { loadModel } from "./graph/load";
import { Model, countParams, createModel, disposeModel, getWeights, modelFromWeights, PAPER_CNN } from "./model";
import { groupLayout, keptGroups, l1GroupMask, specFlops } from "./prune/groups";
import { surgery } from "./prune/surgery";
import { ImageShape, Split } from "./data";
import { whenInferenceWorkersReady } from "./inference/split-predict";
import { Predictor, msPerCall, roundTo, timeInferenceSideBySide } from "./measure";
import { mulberry32 } from "./random";
import { trainStep } from "./train";
import { layersTrainStep, ZOO_MODELS, ZooModelName, zooModel } from "./zoo";

/** `fwprune bench --json`'s line; the same definition as the PyTorch peers (scripts/bench/torch_model_bench.py for the zoo models). */
export interface BenchResult {
  backend: string;
  /** A BenchModel, or the name of the model read with --model. */
  model: string;
  batch: 64;
  trainSamplesPerSec: number;
  inferSamplesPerSec: number;
  /** Threads of the matrix products (kernelThreads(); 1 on backends other than wasm, whose kernels fwprune does not thread). */
  threads: number;
}

/** The paper CNN, or a reference architecture of src/zoo.ts. */
export type BenchModel = "paper-cnn" | ZooModelName;

export interface BenchOptions {
  backend?: BackendName;
  /** Default paper-cnn. */
  model?: BenchModel;
  /** Samples timed for training and at least this many for inference (≥ 2,000). */
  samples?: number;
  /** Also time each kernel over the training steps (a separate pass, so it does not slow the timed one). */
  profile?: boolean;
  seed?: number;
  /** Time this saved TensorFlow.js layers model (model.json) instead. */
  modelFile?: string;
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
/**
 * Training steps run before the timed ones: WARMUP_STEPS, or as many as WARMUP_MS allows, at least MIN_WARMUP_STEPS.
 * With the kernel threads on 2 cores, the paper CNN's first 50 or so steps run about 30% slower than the rest (on one
 * thread, about 7%) while its code warms up. A run takes thousands of steps; the bench times the steady rate.
 */
const WARMUP_STEPS = 64;
const MIN_WARMUP_STEPS = 8;
const WARMUP_MS = 3000;

/** What the bench times of one model: a training step (SGD momentum) and the model itself for inference, and its disposal. */
interface BenchSubject {
  train(x: tf.Tensor4D, y: tf.Tensor1D): void;
  predictor: Model | Predictor;
  dispose(): void;
}

function benchSubject(name: BenchModel | Model, seed: number): BenchSubject {
  const optimizer = new FusedMomentumOptimizer(0.01, 0.9);
  if (typeof name !== "string" || name === "paper-cnn") {
    const model = typeof name === "string" ? createModel(PAPER_CNN, seed) : name;
    return {
      train: (x, y) => trainStep(model, optimizer, x, y),
      predictor: model,
      dispose: () => {
        optimizer.dispose();
        disposeModel(model);
      },
    };
  }
  const model = zooModel(name, { seed });
  return {
    train: (x, y) => layersTrainStep(model, optimizer, x, y),
    predictor: { predict: (x) => model.predict(x) as tf.Tensor },
    dispose: () => {
      optimizer.dispose();
      model.dispose();
    },
  };
}

/**
 * Training = forward + backward + SGD-momentum update (src/train.ts's trainStep, or layersTrainStep in training
 * mode for a zoo model) at batch 64; inference = forward at batch 1000; both on uniform random 28×28×1 images
 * with random labels, after a warm-up (WARMUP_STEPS training steps, one inference batch).
 */
export async function runBench(opts: BenchOptions = {}): Promise<BenchReport> {
  const samples = opts.samples ?? 4096;
  if (!Number.isInteger(samples) || samples < 2000) throw new Error(`bench samples: got ${samples}; expected an integer ≥ 2000`);
  const name = opts.model ?? "paper-cnn";
  if (name !== "paper-cnn" && !ZOO_MODELS.includes(name)) {
    throw new Error(`bench model: got ${JSON.stringify(name)}; expected paper-cnn or one of ${ZOO_MODELS.join(", ")}`);
  }
  const backend = await initBackend(opts.backend, { quiet: true });
  const loaded = opts.modelFile ? loadModel(opts.modelFile) : undefined;
  const shape = (loaded ? inputShape(loaded.graph) : [28, 28, 1]) as ImageShape;
  const size = shape.reduce((a, b) => a * b, 1);
  const classes = loaded ? classCount(loaded.graph) : 10;
  const rand = mulberry32(opts.seed ?? 0);
  const inferCount = Math.max(2, Math.ceil(samples / INFER_BATCH)) * INFER_BATCH;
  const images = new Float32Array(Math.max(samples, inferCount) * size).map(() => rand());
  const labels = new Int32Array(samples).map(() => Math.floor(rand() * classes));
  const subject = benchSubject(loaded ?? name, opts.seed ?? 0);
  const steps = Math.ceil(samples / BATCH);
  const batches = Array.from({ length: steps }, (_, i) => {
    const count = Math.min(BATCH, samples - i * BATCH);
    return {
      x: tf.tensor4d(images.subarray(i * BATCH * size, (i * BATCH + count) * size), [count, ...shape] as [number, number, number, number]),
      y: tf.tensor1d(labels.subarray(i * BATCH, i * BATCH + count), "int32"),
    };
  });
  const inferSplit: Split = { images: images.subarray(0, inferCount * size), labels: new Int32Array(inferCount), count: inferCount, shape };
  try {
    const trainStepOf = (i: number) => subject.train(batches[i % steps].x, batches[i % steps].y);
    const warmupEnd = performance.now() + WARMUP_MS;
    for (let i = 0; i < WARMUP_STEPS && (i < MIN_WARMUP_STEPS || performance.now() < warmupEnd); i++) trainStepOf(i);
    const trainSamplesPerSec = samples / ((msPerCall(trainStepOf, steps) * steps) / 1000);
    // One pass over inferCount images in batches of INFER_BATCH, after a warm-up batch.
    // The pool the predictor's inference uses: a model graph's forward is split whole, a layers model's convolutions.
    if (backend === "wasm") await ("params" in subject.predictor ? whenInferenceWorkersReady() : whenSplitWorkersReady());
    const [inference] = timeInferenceSideBySide([subject.predictor], inferSplit, { repeats: 1, batchSize: INFER_BATCH });

    const result: BenchResult = {
      backend,
      model: loaded ? loaded.graph.name : name,
      batch: BATCH,
      trainSamplesPerSec: roundTo(trainSamplesPerSec, 1),
      inferSamplesPerSec: roundTo(inference.samplesPerSec, 1),
      threads: backend === "wasm" ? kernelThreads() : 1,
    };
    if (!opts.profile) return { result };
    const profiledSteps = Math.min(steps, 32);
    const profiler = profileKernels(backend, cpuClockMs);
    try {
      const msPerStep = msPerCall(trainStepOf, profiledSteps, { clockMs: cpuClockMs });
      const kernels = profiler.timings().map((t: KernelTiming) => ({
        kernel: t.kernel,
        callsPerStep: roundTo(t.calls / profiledSteps, 1),
        msPerStep: roundTo(t.selfMs / profiledSteps, 2),
      }));
      return { result, profile: { msPerStep: roundTo(msPerStep, 2), kernels } };
    } finally {
      profiler.stop();
    }
  } finally {
    subject.dispose();
    tf.dispose(batches.flatMap((b) => [b.x, b.y]));
  }
}

/** `fwprune bench --structured r`: the surgered paper CNN at FLOP reduction r beside the dense one. */
export interface StructuredBench {
  backend: string;
  flopReduction: number;
  groups: Record<string, { kept: number; of: number }>;
  params: { dense: number; surgered: number };
  flops: { dense: number; surgered: number; speedup: number };
  /** Medians over the repeats, both models timed interleaved in one process; speedup = dense / surgered. */
  batch1000: { denseMs: number; surgeredMs: number; speedup: number };
  batch1: { denseMs: number; surgeredMs: number; speedup: number };
  /** Measured speed-up at batch 1000 / FLOP speed-up: how much of the removed arithmetic the dense kernels turn into time. */
  measuredOverFlopSpeedup: number;
}

/**
 * Structured pruning's speed-up with ordinary dense kernels: the paper CNN (seeded init) cut by L1 filter pruning
 * (per layer) to the FLOP reduction, surgered, and timed beside the dense model on random images (pruning does not
 * change the arithmetic of a given shape, so trained weights time the same): 2,000 images at batch 1000 and 200
 * at batch 1, interleaved, medians over `repeats`.
 */
export async function benchStructured(reduction: number, opts: { backend?: BackendName; repeats?: number; seed?: number } = {}): Promise<StructuredBench> {
  if (!(reduction > 0 && reduction < 1)) throw new Error(`--structured: got ${reduction}; expected a FLOP reduction in (0, 1), e.g. 0.5`);
  const repeats = opts.repeats ?? 9;
  if (!(Number.isInteger(repeats) && repeats >= 1 && repeats <= 100)) throw new Error(`--repeats: got ${repeats}; expected an integer in 1..100`);
  const backend = await initBackend(opts.backend, { quiet: true });
  const dense = createModel(PAPER_CNN, opts.seed ?? 0);
  const layout = groupLayout(PAPER_CNN);
  const weights = getWeights(dense);
  const { groups } = l1GroupMask(PAPER_CNN, weights, reduction, "flops", "per-layer");
  const smaller = surgery(PAPER_CNN, weights, groups);
  const surgered = modelFromWeights(smaller.spec, smaller.weights);
  const rand = mulberry32((opts.seed ?? 0) + 1);
  const count = 2000;
  const split: Split = { images: new Float32Array(count * 784).map(() => rand()), labels: new Int32Array(count), count, shape: [28, 28, 1] };
  try {
    const ms = (batchSize: number, samples: number) => {
      const [s, d] = timeInferenceSideBySide([surgered, dense], split, { repeats, batchSize, samples });
      return {
        denseMs: roundTo(d.medianSeconds * 1000, 1),
        surgeredMs: roundTo(s.medianSeconds * 1000, 1),
        speedup: roundTo(d.medianSeconds / s.medianSeconds, 3),
      };
    };
    const batch1000 = ms(1000, count);
    const batch1 = ms(1, 200);
    const flops = { dense: specFlops(PAPER_CNN), surgered: specFlops(smaller.spec), speedup: 0 };
    flops.speedup = roundTo(flops.dense / flops.surgered, 3);
    return {
      backend,
      flopReduction: reduction,
      groups: keptGroups(layout, groups),
      params: { dense: countParams(PAPER_CNN), surgered: countParams(smaller.spec) },
      flops,
      batch1000,
      batch1,
      measuredOverFlopSpeedup: roundTo(batch1000.speedup / flops.speedup, 3),
    };
  } finally {
    disposeModel(dense);
    disposeModel(surgered);
  }
}

export function formatStructuredBench(b: StructuredBench): string {
  const widths = Object.entries(b.groups)
    .map(([name, g]) => `${name} ${g.kept}/${g.of}`)
    .join(", ");
  return [
    `backend ${b.backend}; paper CNN cut by L1 filter pruning to a ${(100 * b.flopReduction).toFixed(0)}% FLOP reduction: ${widths}`,
    `parameters ${b.params.surgered} of ${b.params.dense}; multiply-adds ${b.flops.surgered} of ${b.flops.dense} (FLOP speed-up ×${b.flops.speedup.toFixed(2)})`,
    `batch 1000: dense ${b.batch1000.denseMs} ms, surgered ${b.batch1000.surgeredMs} ms: measured speed-up ×${b.batch1000.speedup.toFixed(2)} (${(100 * b.measuredOverFlopSpeedup).toFixed(0)}% of the FLOP speed-up)`,
    `batch 1 (200 images): dense ${b.batch1.denseMs} ms, surgered ${b.batch1.surgeredMs} ms: measured speed-up ×${b.batch1.speedup.toFixed(2)}`,
  ].join("\n");
}

/** The readable summary `fwprune bench` prints without --json. */
export function formatBench(report: BenchReport): string {
  const r = report.result;
  const lines = [
    `backend ${r.backend}, model ${r.model}, ${r.threads} thread${r.threads === 1 ? "" : "s"}`,
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
