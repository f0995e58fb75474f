// `fwprune prune` on models built here with plain tfjs and saved as model.json + weights.bin, run through the built
// CLI (dist/cli.js; npm test builds first) as a user runs it; its outputs read back with plain tfjs.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { datasetFor } from "../src/datasets";
import { loadSparseModel } from "../src/runtime";
import { loadInTfjs, relativeError, saveLayersModel } from "./graph-models";

const CLI = path.join(__dirname, "..", "dist", "cli.js");
const LIMITS = { limitTrain: 400, limitTest: 200 };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-prune-"));

/** A residual block with BN (functional), 28×28×1 → 10 classes, softmax head. */
function residualModel(): tf.LayersModel {
  const x = tf.input({ shape: [28, 28, 1], name: "image" });
  let a = tf.layers.conv2d({ name: "stem", filters: 8, kernelSize: 3, strides: 2, padding: "same", useBias: false }).apply(x) as tf.SymbolicTensor;
  a = tf.layers.batchNormalization({ name: "stem_bn" }).apply(a) as tf.SymbolicTensor;
  a = tf.layers.reLU({ name: "stem_relu" }).apply(a) as tf.SymbolicTensor;
  let b = tf.layers.conv2d({ name: "conv", filters: 8, kernelSize: 3, padding: "same", useBias: false }).apply(a) as tf.SymbolicTensor;
  b = tf.layers.batchNormalization({ name: "conv_bn" }).apply(b) as tf.SymbolicTensor;
  let r = tf.layers.add({ name: "residual" }).apply([a, b]) as tf.SymbolicTensor;
  r = tf.layers.activation({ name: "residual_relu", activation: "relu" }).apply(r) as tf.SymbolicTensor;
  const g = tf.layers.globalAveragePooling2d({ name: "gap" }).apply(r) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: "head", units: 10, activation: "softmax" }).apply(g) as tf.SymbolicTensor;
  return tf.model({ name: "tiny-residual", inputs: x, outputs: out });
}

/** A depthwise-separable CNN (Sequential), 28×28×1 → 10 classes. */
function separableModel(inputShape: [number, number, number] = [28, 28, 1]): tf.Sequential {
  return tf.sequential({
    name: "tiny-separable",
    layers: [
      tf.layers.conv2d({ name: "stem", inputShape, filters: 8, kernelSize: 3, strides: 2, activation: "relu" }),
      tf.layers.depthwiseConv2d({ name: "dw", kernelSize: 3, padding: "same", useBias: false }),
      tf.layers.batchNormalization({ name: "dw_bn" }),
      tf.layers.reLU({ name: "dw_relu6", maxValue: 6 }),
      tf.layers.separableConv2d({ name: "sep", filters: 12, kernelSize: 3, activation: "relu" }),
      tf.layers.maxPooling2d({ name: "pool", poolSize: 2 }),
      tf.layers.flatten({ name: "flat" }),
      tf.layers.dense({ name: "logits", units: 10 }),
    ],
  });
}

async function save(model: tf.LayersModel, name: string): Promise<string> {
  const saved = await saveLayersModel(model);
  model.dispose();
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "model.json"), JSON.stringify(saved.json));
  fs.writeFileSync(path.join(dir, "weights.bin"), saved.weights);
  return path.join(dir, "model.json");
}

function prune(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [CLI, "prune", "--data", "mnist-embedded", "--limit-train", "400", "--limit-test", "200", ...args], {
    encoding: "utf8",
    env: { ...process.env, ...env },
  });
}

/** Test accuracy of a model.json + weights.bin loaded by plain tfjs, on the same test split the CLI used. */
async function plainTfjsAccuracy(dir: string): Promise<{ accuracy: number; model: tf.LayersModel }> {
  const json = JSON.parse(fs.readFileSync(path.join(dir, "model.json"), "utf8"));
  const model = await loadInTfjs(json, new Uint8Array(fs.readFileSync(path.join(dir, "weights.bin"))));
  const testSplit = datasetFor({ name: "mnist-embedded", ...LIMITS }).test;
  const predicted = tf.tidy(() => (model.predict(tf.tensor4d(testSplit.images, [testSplit.count, 28, 28, 1])) as tf.Tensor).argMax(-1).dataSync());
  let correct = 0;
  for (let i = 0; i < testSplit.count; i++) if (predicted[i] === testSplit.labels[i]) correct++;
  return { accuracy: correct / testSplit.count, model };
}

const PRUNABLE = /\/(kernel|depthwise_kernel|pointwise_kernel)$/;

for (const [label, build, method, extra, env] of [
  ["residual block with BN", residualModel, "magnitude", [], {}],
  ["depthwise-separable", () => separableModel(), "fw-momentum", ["--params", '{"iterations":8}'], {}],
] as const) {
  test(`fwprune prune ${method} on a ${label} model: outputs written, reloaded by plain tfjs with the reported accuracy and sparsity; model.fwsparse runs in the runtime with tfjs's outputs`, async () => {
    const file = await save(build(), label.replace(/\W+/g, "-"));
    const out = path.join(tmp, `out-${method}`);
    const r = prune(["--model", file, "--method", method, "--sparsity", "0.6", "--out", out, "--json", ...extra], env);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.length, 1, r.stdout);
    const report = JSON.parse(lines[0]);
    assert.deepEqual(fs.readdirSync(out).sort(), ["model.fwsparse", "model.json", "report.json", "weights.bin"]);
    assert.deepEqual(report.files, ["model.json", "weights.bin", "model.fwsparse", "report.json"]);
    assert.deepEqual(report.notes, []);
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(out, "report.json"), "utf8")), report);
    for (const field of ["method", "sparsity", "flopReduction", "params", "flops", "accuracy", "loss", "seconds"]) assert.ok(field in report, field);
    assert.equal(report.method, method);
    assert.ok(report.params.after < report.params.before && report.flops.after < report.flops.before, JSON.stringify(report));

    const { accuracy, model } = await plainTfjsAccuracy(out);
    try {
      assert.equal(accuracy, report.accuracy.final);
      assert.equal(report.accuracy.exported, report.accuracy.final);
      // The same layers, names and classes as the model saved above.
      const original = JSON.parse(fs.readFileSync(file, "utf8")).modelTopology.config.layers.map(
        (l: { class_name: string; config: { name: string } }) => `${l.class_name}:${l.config.name}`,
      );
      const exported = JSON.parse(fs.readFileSync(path.join(out, "model.json"), "utf8")).modelTopology.config.layers.map(
        (l: { class_name: string; config: { name: string } }) => `${l.class_name}:${l.config.name}`,
      );
      assert.deepEqual(exported, original);
      // The mask is in the exported weights: their zeros over the prunable kernels are the reported sparsity.
      let zeros = 0;
      let total = 0;
      let parameters = 0;
      for (const w of model.weights) {
        const values = w.read().dataSync();
        parameters += values.length;
        if (!PRUNABLE.test(w.originalName)) continue;
        total += values.length;
        zeros += values.filter((v) => v === 0).length;
      }
      assert.equal(zeros / total, report.sparsity);
      assert.equal(Math.round(report.sparsity * 100), 60);
      assert.equal(parameters, report.params.before);
      assert.equal(report.params.before - zeros, report.params.after);

      // The standalone runtime on the written model.fwsparse gives plain tfjs's outputs on the test split.
      const runtime = await loadSparseModel(fs.readFileSync(path.join(out, "model.fwsparse")));
      assert.equal(
        runtime.layers.reduce((n, l) => n + l.nonzeros, 0),
        total - zeros,
      );
      const testSplit = datasetFor({ name: "mnist-embedded", ...LIMITS }).test;
      const expected = tf.tidy(() => (model.predict(tf.tensor4d(testSplit.images, [testSplit.count, 28, 28, 1])) as tf.Tensor).dataSync());
      const err = relativeError(runtime.predict(testSplit.images, testSplit.count), expected);
      assert.ok(err <= 1e-5, `runtime vs plain tfjs: max relative error ${err.toExponential(2)}`);
    } finally {
      model.dispose();
    }
  });
}

test("fwprune prune structured-magnitude on a residual block with BN: plain tfjs loads the smaller model, same layers, the reported accuracy and parameter count", async () => {
  const file = await save(residualModel(), "structured");
  const out = path.join(tmp, "out-structured");
  const r = prune(["--model", file, "--method", "structured-magnitude", "--flop-reduction", "0.5", "--out", out, "--json"]);
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout.trim());
  assert.deepEqual(fs.readdirSync(out).sort(), ["model.json", "report.json", "weights.bin"]);
  assert.match(report.notes.join("\n"), /model\.fwsparse not written: a structured method's model has no zeros to skip/);
  assert.ok(report.flopReduction >= 0.5 && report.flops.after < report.flops.before, JSON.stringify(report));
  const { accuracy, model } = await plainTfjsAccuracy(out);
  try {
    assert.equal(accuracy, report.accuracy.final);
    assert.equal(model.countParams(), report.params.after);
    assert.ok(report.params.after < report.params.before);
    const names = (f: string) => JSON.parse(fs.readFileSync(f, "utf8")).modelTopology.config.layers.map((l: { config: { name: string } }) => l.config.name);
    assert.deepEqual(names(path.join(out, "model.json")), names(file));
  } finally {
    model.dispose();
  }
  const wrongTarget = prune(["--model", file, "--method", "structured-magnitude", "--sparsity", "0.5", "--out", path.join(tmp, "out-wrong"), "--json"]);
  assert.notEqual(wrongTarget.status, 0);
  assert.match(
    wrongTarget.stderr,
    /fwprune: --sparsity is the target of weight-level methods; structured-magnitude is structured: give --flop-reduction instead/,
  );
  assert.ok(!fs.existsSync(path.join(tmp, "out-wrong")));
});

test("fwprune prune refuses bad input with one clear line, a non-zero exit and nothing written", async () => {
  const good = await save(residualModel(), "good");
  const wrongShape = await save(separableModel([12, 12, 3]), "wrong-shape");
  const unsupported = await save(
    tf.sequential({
      layers: [tf.layers.upSampling2d({ name: "up", inputShape: [14, 14, 1] }), tf.layers.flatten({ name: "f" }), tf.layers.dense({ name: "d", units: 10 })],
    }),
    "unsupported",
  );
  const cases: [string, string[], RegExp][] = [
    ["shape mismatch", ["--model", wrongShape, "--method", "magnitude"], /--data "mnist-embedded": its images are 28×28×1 .*the model's input is 12×12×3/],
    ["unsupported layer", ["--model", unsupported, "--method", "magnitude"], /layer "up" has class "UpSampling2D".*supported:/],
    ["--flop-reduction with a weight-level method", ["--model", good, "--method", "magnitude", "--flop-reduction", "0.5"], /--flop-reduction.*--sparsity/],
    ["missing file", ["--model", path.join(tmp, "none", "model.json"), "--method", "magnitude"], /none\/model\.json: cannot read the model \(ENOENT\)/],
    ["unknown method", ["--model", good, "--method", "pruneit"], /"pruneit" is not registered; expected one of/],
  ];
  for (const [what, args, message] of cases) {
    const out = path.join(tmp, `bad-${what.replace(/\W+/g, "-")}`);
    const r = prune([...args, "--out", out, "--json"]);
    assert.notEqual(r.status, 0, what);
    assert.equal(r.stdout, "", what);
    const errors = r.stderr.split("\n").filter((l) => l.startsWith("fwprune:"));
    assert.equal(errors.length, 1, `${what}: ${r.stderr}`);
    assert.match(errors[0], message, what);
    assert.ok(!fs.existsSync(out), `${what}: ${out} was written`);
    assert.deepEqual(
      fs.readdirSync(tmp).filter((f) => f.startsWith(path.basename(out))),
      [],
      `${what}: a temporary folder was left`,
    );
  }
  // Refused before the model is read (as root too, where access() says /proc is writable).
  const unwritable = prune(["--model", good, "--method", "magnitude", "--out", "/proc/fwprune-out", "--json"]);
  assert.notEqual(unwritable.status, 0);
  assert.match(unwritable.stderr, /fwprune: --out \/proc\/fwprune-out: \/proc is not writable/);
});

test("fwprune bench --model times a saved model's training and inference as one JSON line; with --sparse, dense against sparse and the runtime", async () => {
  const file = await save(residualModel(), "bench");
  const r = spawnSync(process.execPath, [CLI, "bench", "--model", file, "--samples", "2000", "--json"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines.length, 1, r.stdout);
  const line = JSON.parse(lines[0]);
  assert.deepEqual(Object.keys(line), ["backend", "model", "batch", "trainSamplesPerSec", "inferSamplesPerSec", "threads"]);
  assert.equal(line.model, "tiny-residual");
  assert.equal(line.batch, 64);
  assert.ok(line.trainSamplesPerSec > 0 && line.inferSamplesPerSec > 0, lines[0]);
  const sparse = spawnSync(
    process.execPath,
    [CLI, "bench", "--model", file, "--sparse", "--sparsities", "0.9", "--batches", "16,1", "--rounds", "3", "--json"],
    { encoding: "utf8" },
  );
  assert.equal(sparse.status, 0, sparse.stderr);
  const sparseLines = sparse.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    sparseLines.map((l) => [l.model, l.sparsity, l.batch]),
    [
      ["tiny-residual", 0.9, 16],
      ["tiny-residual", 0.9, 1],
    ],
  );
  for (const l of sparseLines) {
    assert.ok(l.denseSamplesPerSec > 0 && l.sparseSamplesPerSec > 0 && l.runtimeSamplesPerSec > 0, JSON.stringify(l));
    assert.ok(l.maxRelativeError <= 1e-5 && l.runtimeMaxRelativeError <= 1e-5, JSON.stringify(l));
    assert.deepEqual(
      l.layers.map((y: { layer: string }) => y.layer),
      ["stem", "conv", "head"],
    );
  }
  const browser = spawnSync(process.execPath, [CLI, "bench", "--model", file, "--browser"], { encoding: "utf8" });
  assert.notEqual(browser.status, 0);
  assert.match(browser.stderr, /fwprune: bench --model times your model's training and inference .*drop --browser/);
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
