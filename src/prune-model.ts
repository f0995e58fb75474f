import { Command } from "commander";
import * as path from "path";
import { Dataset } from "./data";
import { DatasetSpec, ModelIO, checkDataFitsModel, datasetFor, resolveDataArgument } from "./datasets";
import { countingBar } from "./experiment/commands";
import { fraction, positiveInteger } from "./experiment/flags";
import { ensureBackend } from "./experiment/run";
import { valuesOf } from "./kernels";
import { flopsOf, layersModelAccuracy } from "./measure";
import { assertReplaceableFolder, assertWritableFolder, publishFolder } from "./fsutil";
import { classCount, inputShape, paramCount, totalFlops } from "./graph";
import { loadModel } from "./graph/load";
import { decodeSparseWeights, encodeSparseWeights, layersArtifactsFor } from "./inference/export";
import * as tf from "@tensorflow/tfjs-core";
import { Model, disposeModel, forward, getWeights, modelFromWeights, trainableVariables } from "./model";
import { Mask, applyMask, sparsityOfWeights, weightSparsity } from "./prune/mask";
import { surgery, unsurgery } from "./prune/surgery";
import { getMethod, methodNames, parseParams } from "./prune/method";
import "./prune/methods";
import { retrainInPlace } from "./prune/retrain";
import { loadSparseModel } from "./runtime";
import { evaluate, lossOf, train } from "./train";
import { setKernelThreads, THREADS_HELP, threadsFlag } from "./kernels";

/** `fwprune prune`: prune a TensorFlow.js layers model the user saved (model.json), fine-tune it, write it back. */

export interface PruneModelOptions {
  /** Path of the model.json (its weight files beside it). */
  model: string;
  /** mnist-embedded | mnist | fashion-mnist | a folder (four IDX files, or one sub-folder of images per class); or a dataset spec. */
  data: string | DatasetSpec;
  method: string;
  /** Method parameters (as a config's `params` for this method); defaults otherwise. */
  params?: Record<string, unknown>;
  /** Target of weight-level methods: the fraction of prunable weights to remove (default 0.9). */
  sparsity?: number;
  /** Target of structured methods: the fraction of multiply-adds to remove (default 0.5). */
  flopReduction?: number;
  /** Fine-tuning epochs with the mask held (default 1). */
  epochs?: number;
  seed?: number;
  /** Keep only the first N training / test examples (quick trials, tests). */
  limitTrain?: number;
  limitTest?: number;
  out: string;
  onStatus?: (message: string) => void;
  /** Pruning steps, then fine-tuning minibatches. */
  onProgress?: (phase: "prune" | "fine-tune", done: number, total: number) => void;
}

export interface PruneReport {
  model: string;
  data: string;
  method: string;
  params: { before: number; after: number };
  /** Achieved: exact zeros over all prunable weights of the final model. */
  sparsity: number;
  /** Achieved: 1 − flops.after / flops.before. */
  flopReduction: number;
  /** Multiply-adds per example of the prunable kernels (after: on their non-zero weights). */
  flops: { before: number; after: number };
  /** Test accuracy before pruning, right after it, after fine-tuning, and of the written model.json through plain tfjs. */
  accuracy: { dense: number; pruned: number; final: number; exported: number };
  /** Mean test cross-entropy at the same three points. */
  loss: { dense: number; pruned: number; final: number };
  epochs: number;
  seed: number;
  seconds: { prune: number; fineTune: number; total: number };
  files: string[];
  /** What was not written, and why. */
  notes: string[];
}

function definedLimits(limits: { limitTrain?: number; limitTest?: number }): { limitTrain?: number; limitTest?: number } {
  return Object.fromEntries(Object.entries({ limitTrain: limits.limitTrain, limitTest: limits.limitTest }).filter(([, v]) => v !== undefined));
}

/**
 * One gradient of the loss on a blank example, discarded: a layer the backend cannot differentiate (a kernel it
 * lacks) stops the command here, before any work, rather than in the middle of pruning.
 */
function checkTrainable(model: Model, file: string): void {
  try {
    tf.tidy(() => {
      const x = tf.zeros([1, ...inputShape(model.graph)]);
      const { grads } = tf.variableGrads(
        () => lossOf(forward(model.graph, model.params, x, { training: true }) as tf.Tensor2D, tf.tensor1d([0], "int32")),
        trainableVariables(model),
      );
      return Object.values(grads);
    });
  } catch (err) {
    throw new Error(`--model ${file}: cannot be trained on the ${tf.getBackend()} backend (${(err as Error).message}); FWPRUNE_BACKEND=cpu trains it, slowly`);
  }
}

function checkFraction(flag: string, value: number | undefined): void {
  if (value !== undefined && !(value >= 0 && value < 1)) throw new Error(`${flag}: expected a number in [0, 1), got ${value}`);
}

/** What `fwprune prune` writes; --out may be new, empty, or an earlier output holding only these, which is replaced. */
const PRUNE_FILES = ["model.json", "weights.bin", "model.fwsparse", "report.json"];

/** Examples the sparse file is checked on through the runtime. */
const SPARSE_CHECK_EXAMPLES = 64;

/**
 * The model as a .fwsparse file, checked before anything is written: it decodes to exactly these weights, and the
 * standalone runtime (src/runtime) run on it gives the model's outputs on the first test examples (max relative error
 * ≤ 1e-5).
 */
async function checkedSparseFile(model: Model, test: Dataset["test"]): Promise<Uint8Array> {
  const weights = getWeights(model);
  const bytes = encodeSparseWeights(model.graph, weights);
  const back = decodeSparseWeights(bytes, "model.fwsparse").weights;
  for (const [name, v] of Object.entries(weights)) {
    if (back[name]?.length !== v.length || back[name].some((x, i) => x !== v[i]))
      throw new Error(`model.fwsparse does not give back ${name} exactly; nothing was written`);
  }
  const n = Math.min(SPARSE_CHECK_EXAMPLES, test.count);
  const size = inputShape(model.graph).reduce((a, b) => a * b, 1);
  const examples = test.images.subarray(0, n * size);
  const expected = valuesOf(() => forward(model.graph, model.params, tf.tensor(examples, [n, ...inputShape(model.graph)]), { output: "output" }));
  const got = (await loadSparseModel(bytes)).predict(examples, n);
  let [diff, scale] = [0, 0];
  expected.forEach((e, i) => ([diff, scale] = [Math.max(diff, Math.abs(got[i] - e)), Math.max(scale, Math.abs(e))]));
  if (!(diff <= 1e-5 * scale)) {
    throw new Error(
      `the runtime on model.fwsparse gives outputs ${diff / scale} (max relative error) off the model's on ${n} test examples; nothing was written`,
    );
  }
  return bytes;
}

/**
 * Prune a saved model: every input checked before any work (files, method, target, data against the model's input
 * shape and head); the test accuracy measured dense, pruned and fine-tuned; then model.json + weights.bin (loadable
 * by plain tfjs, checked through it) and report.json written to `out` all at once.
 */
export async function pruneModelFile(opts: PruneModelOptions): Promise<PruneReport> {
  const start = performance.now();
  const method = getMethod(opts.method);
  if (!method.prune)
    throw new Error(
      `--method: "${opts.method}" does not prune; expected one of ${methodNames()
        .filter((n) => getMethod(n).prune)
        .join(", ")}`,
    );
  const params = parseParams(method, opts.params ?? {});
  const structured = method.retrain(params) === "surgered";
  if (structured && opts.sparsity !== undefined)
    throw new Error(`--sparsity is the target of weight-level methods; ${opts.method} is structured: give --flop-reduction instead`);
  if (!structured && opts.flopReduction !== undefined)
    throw new Error(`--flop-reduction is the target of structured methods; ${opts.method} is weight-level: give --sparsity instead`);
  checkFraction("--sparsity", opts.sparsity);
  checkFraction("--flop-reduction", opts.flopReduction);
  const epochs = opts.epochs ?? 1;
  const seed = opts.seed ?? 1;
  if (!(Number.isInteger(epochs) && epochs >= 0)) throw new Error(`--epochs: expected an integer ≥ 0, got ${epochs}`);
  const out = path.resolve(opts.out);
  assertReplaceableFolder(out, PRUNE_FILES, "--out");
  assertWritableFolder(out, "--out");
  const dataName = typeof opts.data === "string" ? opts.data : opts.data.name;
  await ensureBackend();
  const model = loadModel(opts.model);
  let pruned: Model | undefined;
  try {
    // The data is checked against the model's input shape and head before any of it is read.
    const io: ModelIO = { inputShape: inputShape(model.graph), classes: classCount(model.graph) };
    let spec: DatasetSpec;
    if (typeof opts.data === "string") {
      spec = resolveDataArgument(opts.data, io);
    } else {
      spec = opts.data;
      checkDataFitsModel(spec, io);
    }
    spec = { ...spec, ...definedLimits(opts) };
    checkTrainable(model, opts.model);
    opts.onStatus?.(`loading ${dataName}`);
    const data: Dataset = datasetFor(spec);
    const dense = evaluate(model, data.test);

    opts.onStatus?.(`pruning with ${opts.method}`);
    const pruneStart = performance.now();
    const target = structured ? (opts.flopReduction ?? 0.5) : (opts.sparsity ?? 0.9);
    const outcome = await method.prune(model, params, { train: data.train, seed, target, progress: (d, t) => opts.onProgress?.("prune", d, t) });
    const pruneSeconds = (performance.now() - pruneStart) / 1000;
    const groups = structured ? outcome.groups : undefined;
    if (structured && !groups) throw new Error(`method "${opts.method}" returned no group mask`);
    // A structured method's smaller model (its removed channels cut out) trains densely; a weight mask is held.
    const smaller = groups ? surgery(model.graph, getWeights(model), groups) : undefined;
    pruned = smaller ? modelFromWeights(smaller.graph, smaller.weights) : applyMask(model, outcome.mask);
    const afterPruning = evaluate(pruned, data.test);

    opts.onStatus?.(`fine-tuning ${epochs} epoch${epochs === 1 ? "" : "s"}${smaller ? " (the smaller model)" : " with the mask held"}`);
    const onBatch = (b: { epoch: number; batch: number; batches: number }) =>
      opts.onProgress?.("fine-tune", (b.epoch - 1) * b.batches + b.batch, epochs * b.batches);
    const tuned = smaller
      ? await train(pruned, data.train, { epochs, seed, streamLabel: "retrain", onBatch })
      : await retrainInPlace(pruned, outcome.mask as Mask, data.train, { epochs, seed, onBatch });
    const final = evaluate(pruned, data.test);

    const weights = getWeights(pruned);
    const { json, weights: weightBytes } = layersArtifactsFor(pruned.graph, weights);
    const exported = await layersModelAccuracy(json, weightBytes, data.test);
    // A weight mask makes the model sparse: the compact file for the runtime. A surgered model is dense, only smaller.
    const sparseFile = smaller ? undefined : await checkedSparseFile(pruned, data.test);
    // Sparsity over the original kernels (a surgered model's weights put back into the original shapes).
    const sparsity = groups ? sparsityOfWeights(model.graph, unsurgery(model.graph, weights, groups)) : weightSparsity(pruned);
    const flops = flopsOf(model.graph, sparsity.perLayer);
    if (smaller) flops.remaining = totalFlops(pruned.graph);
    const before = paramCount(model.graph);
    const report: PruneReport = {
      model: path.resolve(opts.model),
      data: dataName,
      method: opts.method,
      params: { before, after: smaller ? paramCount(pruned.graph) : before - sparsity.zeros },
      sparsity: sparsity.global,
      flopReduction: 1 - flops.remaining / flops.dense,
      flops: { before: totalFlops(model.graph), after: flops.remaining },
      accuracy: { dense: dense.accuracy, pruned: afterPruning.accuracy, final: final.accuracy, exported },
      loss: { dense: dense.loss, pruned: afterPruning.loss, final: final.loss },
      epochs,
      seed,
      seconds: { prune: pruneSeconds, fineTune: tuned.seconds, total: 0 },
      files: ["model.json", "weights.bin", ...(sparseFile ? ["model.fwsparse"] : []), "report.json"],
      notes: smaller
        ? [
            "a structured method: model.json holds the smaller, surgered model (fewer channels, the same layers and names)",
            "model.fwsparse not written: a structured method's model has no zeros to skip (it is dense, only smaller)",
          ]
        : [],
    };
    report.seconds.total = (performance.now() - start) / 1000;
    publishFolder(
      out,
      {
        "model.json": JSON.stringify(json),
        "weights.bin": weightBytes,
        ...(sparseFile ? { "model.fwsparse": sparseFile } : {}),
        "report.json": JSON.stringify(report, null, 1) + "\n",
      },
      PRUNE_FILES,
      "--out",
    );
    return report;
  } finally {
    if (pruned) disposeModel(pruned);
    disposeModel(model);
  }
}

export function formatPruneReport(r: PruneReport, out: string): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  return [
    `${r.method}: ${pct(r.sparsity)} of the prunable weights removed (${r.params.before} → ${r.params.after} non-zero parameters), ${pct(r.flopReduction)} of the multiply-adds`,
    `  test accuracy: dense ${pct(r.accuracy.dense)}, pruned ${pct(r.accuracy.pruned)}, after ${r.epochs} fine-tuning epoch${r.epochs === 1 ? "" : "s"} ${pct(r.accuracy.final)} (plain tfjs on the written model: ${pct(r.accuracy.exported)})`,
    `  wrote ${r.files.join(", ")} to ${out} in ${r.seconds.total.toFixed(1)} s`,
    ...r.notes.map((n) => `  note: ${n}`),
  ].join("\n");
}

export function registerPruneCommand(program: Command): void {
  program
    .command("prune")
    .description(
      "prune your own TensorFlow.js layers model (model.json + weights, as tfjs model.save or tensorflowjs_converter write it), " +
        "fine-tune it with the mask held, and write model.json + weights.bin (loadable by plain tfjs) and report.json to --out",
    )
    .requiredOption("--model <path>", "the model.json (its weight files beside it)")
    .requiredOption(
      "--data <name|dir>",
      "mnist-embedded | mnist | fashion-mnist | a folder: the four IDX files, or one sub-folder of PNG/JPEG images per class (resized to the model's input)",
    )
    .requiredOption(
      "--method <name>",
      "a pruning method (fwprune methods lists them): magnitude, random, fw, fw-momentum (weight-level); structured-magnitude, structured-random, structured-fw, structured-fw-momentum (whole channels: a smaller model)",
    )
    .requiredOption("--out <dir>", "the folder to write (new, empty, or an earlier fwprune prune output, which is replaced)")
    .option("--sparsity <s>", "weight-level methods: the fraction of prunable weights to remove (default 0.9)", fraction("--sparsity"))
    .option("--flop-reduction <r>", "structured methods: the fraction of multiply-adds to remove (default 0.5)", fraction("--flop-reduction"))
    .option("--epochs <n>", "fine-tuning epochs (mask held)", positiveInteger("--epochs", 0), 1)
    .option("--seed <n>", "seed of pruning and fine-tuning", positiveInteger("--seed"), 1)
    .option("--params <json>", `the method's parameters as JSON, e.g. '{"iterations":50}' (fwprune methods lists them)`)
    .option("--limit-train <n>", "use only the first N training examples", positiveInteger("--limit-train", 1))
    .option("--limit-test <n>", "use only the first N test examples", positiveInteger("--limit-test", 1))
    .option("--json", "print report.json as one line (no progress bar)")
    .option("--threads <n>", THREADS_HELP, threadsFlag)
    .addHelpText(
      "after",
      "\nreport.json: method, sparsity, flopReduction, params {before, after}, flops {before, after},\n" +
        "accuracy {dense, pruned, final, exported} (test accuracy before pruning, after it, after fine-tuning, and of the\n" +
        "written model through plain tfjs), loss {dense, pruned, final}, seconds. The folder is written all at once: on any\n" +
        "error nothing is written.",
    )
    .action(
      async (o: {
        model: string;
        data: string;
        method: string;
        out: string;
        sparsity?: number;
        flopReduction?: number;
        epochs: number;
        seed: number;
        params?: string;
        limitTrain?: number;
        limitTest?: number;
        json?: boolean;
        threads?: number;
      }) => {
        if (o.threads !== undefined) setKernelThreads(o.threads);
        let params: Record<string, unknown> | undefined;
        if (o.params !== undefined) {
          try {
            params = JSON.parse(o.params) as Record<string, unknown>;
          } catch {
            throw new Error(`--params: expected a JSON object, got ${JSON.stringify(o.params)}`);
          }
        }
        const bars = o.json
          ? undefined
          : { prune: countingBar("pruning     {bar} {value}/{total} steps"), "fine-tune": countingBar("fine-tuning {bar} {value}/{total} minibatches") };
        const report = await pruneModelFile({
          ...o,
          params,
          onStatus: o.json ? undefined : (m) => process.stderr.write(`fwprune prune: ${m}\n`),
          onProgress: (phase, done, total) => {
            if (!bars) return;
            if (phase === "fine-tune") bars.prune.stop();
            bars[phase].update(done, total);
            if (done === total) bars[phase].stop();
          },
        }).finally(() => bars && Object.values(bars).forEach((b) => b.stop()));
        console.log(o.json ? JSON.stringify(report) : formatPruneReport(report, path.resolve(o.out)));
      },
    );
}
