// The exported layers model as a plain TensorFlow.js user meets it: this file imports @tensorflow/tfjs and Node's
// builtins only, no fwprune code. The export itself runs as the CLI (dist/cli.js; npm test builds first).
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";

const ROOT = path.join(__dirname, "..");
const CLI = path.join(ROOT, "dist", "cli.js");

const CONFIG = {
  preset: "quick",
  name: "tiny-export-test",
  dataset: { name: "mnist-embedded", trainSize: 8000, testSize: 2000, seed: 0, limitTrain: 600, limitTest: 300 },
  pretrain: { epochs: 1 },
  budgets: [1],
  methods: ["fw-momentum"],
  params: { "fw-momentum": { iterations: 10 } },
  inference: { repeats: 1, batchSize: 1000 },
};

/** The config's test digits as files, dumped by a separate process through the library (this file imports none of it). */
function testSplit(dir: string, dataset: typeof CONFIG.dataset): { images: Float32Array; labels: Int32Array; count: number } {
  const dump = path.join(dir, "test-split.bin");
  const script = `const fs = require("fs"); const { datasetFor } = require(${JSON.stringify(path.join(ROOT, "dist", "datasets"))});
    const t = datasetFor(${JSON.stringify(dataset)}).test;
    fs.writeFileSync(${JSON.stringify(dump)}, Buffer.concat([Buffer.from(t.images.buffer, t.images.byteOffset, t.images.byteLength), Buffer.from(t.labels.buffer, t.labels.byteOffset, t.labels.byteLength)]));`;
  const dumped = spawnSync(process.execPath, ["-e", script], { encoding: "utf8" });
  assert.equal(dumped.status, 0, dumped.stderr);
  const bytes = fs.readFileSync(dump);
  const count = dataset.limitTest;
  return {
    images: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + count * 784 * 4)),
    labels: new Int32Array(bytes.buffer.slice(bytes.byteOffset + count * 784 * 4, bytes.byteOffset + count * 785 * 4)),
    count,
  };
}

/** A plain tfjs user's loader (no file:// handler without tfjs-node: an IOHandler that reads the two files), and its predicted classes. */
async function loadAndPredict(out: string, images: Float32Array, count: number): Promise<{ model: tf.LayersModel; predicted: Int32Array }> {
  const modelJson = JSON.parse(fs.readFileSync(path.join(out, "model.json"), "utf8")) as {
    format: string;
    modelTopology: object;
    weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  };
  assert.equal(modelJson.format, "layers-model");
  const handler: tf.io.IOHandler = {
    load: async () => {
      const weightBytes = fs.readFileSync(path.join(out, modelJson.weightsManifest[0].paths[0]));
      return {
        modelTopology: modelJson.modelTopology,
        weightSpecs: modelJson.weightsManifest[0].weights,
        weightData: weightBytes.buffer.slice(weightBytes.byteOffset, weightBytes.byteOffset + weightBytes.length),
      };
    },
  };
  await tf.setBackend("cpu");
  const model = await tf.loadLayersModel(handler);
  const predicted = tf.tidy(() => (model.predict(tf.tensor4d(images, [count, 28, 28, 1])) as tf.Tensor).argMax(-1).dataSync()) as Int32Array;
  return { model, predicted };
}

const accuracyOf = (predicted: Int32Array, labels: Int32Array) => predicted.reduce((n, p, i) => n + (p === labels[i] ? 1 : 0), 0) / labels.length;

test(
  "fwprune export: plain tfjs loads model.json + weights.bin and scores the run's recorded test accuracy exactly",
  { skip: !fs.existsSync(CLI) && "dist/cli.js not built" },
  async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-export-"));
    try {
      const configFile = path.join(dir, "config.json");
      fs.writeFileSync(configFile, JSON.stringify(CONFIG));
      const out = path.join(dir, "out");
      const env = { ...process.env, FWPRUNE_QUIET: "1" };
      const exported = spawnSync(
        process.execPath,
        [CLI, "export", "--preset", configFile, "--method", "fw-momentum", "--budget", "1", "--out", out, "--data-dir", dir],
        { encoding: "utf8", env },
      );
      assert.equal(exported.status, 0, exported.stderr);
      assert.match(exported.stdout, /sparse file \(model\.fwsparse\)/);

      // The run's record and its test digits, as files (the digits dumped by a separate process through the library).
      const runs = fs.readdirSync(path.join(dir, "runs")).filter((f) => f.endsWith(".json"));
      assert.equal(runs.length, 1);
      const record = JSON.parse(fs.readFileSync(path.join(dir, "runs", runs[0]), "utf8")) as {
        metrics: { testAccuracy: number; sparsity: number; inferenceSparseMedianSeconds?: number; inferenceSparsePaths?: Record<string, string> };
      };
      // The record gained the sparse kernels' time (wasm) and the path each layer took there.
      assert.ok((record.metrics.inferenceSparseMedianSeconds ?? 0) > 0);
      assert.deepEqual(Object.keys(record.metrics.inferenceSparsePaths ?? {}), ["conv1", "conv2", "dense1", "dense2"]);
      const { images, labels, count } = testSplit(dir, CONFIG.dataset);
      const { model, predicted } = await loadAndPredict(out, images, count);
      assert.equal(accuracyOf(predicted, labels), record.metrics.testAccuracy);
      const kernel = model.getLayer("dense1").getWeights()[0].dataSync() as Float32Array;
      const zeros = kernel.reduce((n, w) => n + (w === 0 ? 1 : 0), 0);
      assert.ok(zeros / kernel.length > 0.5, `dense1 is pruned (${zeros} of ${kernel.length} zeros)`);
      model.dispose();

      const sizes = JSON.parse(fs.readFileSync(path.join(out, "sizes.json"), "utf8")) as {
        denseBytes: number;
        sparseBytes: number;
        sparseGzippedBytes: number;
        denseGzippedBytes: number;
      };
      assert.equal(sizes.denseBytes, fs.statSync(path.join(out, "model.json")).size + fs.statSync(path.join(out, "weights.bin")).size);
      assert.equal(sizes.sparseBytes, fs.statSync(path.join(out, "model.fwsparse")).size);
      assert.ok(sizes.sparseBytes < sizes.denseBytes / 4 && sizes.sparseGzippedBytes < sizes.denseGzippedBytes);

      const bad = spawnSync(
        process.execPath,
        [CLI, "export", "--preset", configFile, "--method", "fw-momentum", "--budget", "1", "--out", configFile, "--data-dir", dir],
        { encoding: "utf8", env },
      );
      assert.notEqual(bad.status, 0);
      assert.match(bad.stderr, /--out: .*config\.json exists and is not a folder/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  "fwprune export of a structured run: the surgered model, smaller, loads in plain tfjs and scores its recorded accuracy",
  { skip: !fs.existsSync(CLI) && "dist/cli.js not built" },
  async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-export-structured-"));
    try {
      const configFile = path.join(dir, "config.json");
      fs.writeFileSync(
        configFile,
        JSON.stringify({ ...CONFIG, preset: "structured", name: "tiny-export-structured", methods: ["structured-magnitude"], sparsity: [0.5], params: {} }),
      );
      const out = path.join(dir, "out");
      const exported = spawnSync(
        process.execPath,
        [CLI, "export", "--preset", configFile, "--method", "structured-magnitude", "--budget", "1", "--out", out, "--data-dir", dir],
        { encoding: "utf8", env: { ...process.env, FWPRUNE_QUIET: "1" } },
      );
      assert.equal(exported.status, 0, exported.stderr);
      const runs = fs.readdirSync(path.join(dir, "runs")).filter((f) => f.endsWith(".json"));
      const record = JSON.parse(fs.readFileSync(path.join(dir, "runs", runs[0]), "utf8")) as {
        metrics: { testAccuracy: number; surgered: { params: number; denseParams: number } };
      };
      const { images, labels, count } = testSplit(dir, CONFIG.dataset);
      const { model, predicted } = await loadAndPredict(out, images, count);
      assert.equal(accuracyOf(predicted, labels), record.metrics.testAccuracy);
      assert.equal(model.countParams(), record.metrics.surgered.params);
      assert.ok(model.countParams() < record.metrics.surgered.denseParams, "the exported model is the smaller, surgered one");
      assert.ok((model.getLayer("conv1").getWeights()[0].shape[3] ?? 32) < 32, "conv1 lost filters");
      model.dispose();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);
