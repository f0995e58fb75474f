// `fwprune prune --data DIR` on an image folder of PNG files (digits from the package), run through the built CLI.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { datasetFor, resolveDataArgument } from "../src/datasets";
import { loadInTfjs, saveLayersModel } from "./graph-models";
import { writeDigitFolder } from "./png-digits";

const CLI = path.join(__dirname, "..", "dist", "cli.js");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-prune-images-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

test("fwprune prune on an image folder of PNG digits: the report's final accuracy is plain tfjs's on the same held-out images", async () => {
  const images = path.join(tmp, "digits");
  writeDigitFolder(images, 20);
  const model = tf.sequential({
    name: "small",
    layers: [
      tf.layers.conv2d({ name: "conv", inputShape: [28, 28, 1], filters: 4, kernelSize: 3, activation: "relu" }),
      tf.layers.maxPooling2d({ name: "pool", poolSize: 4 }),
      tf.layers.flatten({ name: "flat" }),
      tf.layers.dense({ name: "logits", units: 10 }),
    ],
  });
  const saved = await saveLayersModel(model);
  model.dispose();
  const modelDir = path.join(tmp, "model");
  fs.mkdirSync(modelDir);
  fs.writeFileSync(path.join(modelDir, "model.json"), JSON.stringify(saved.json));
  fs.writeFileSync(path.join(modelDir, "weights.bin"), saved.weights);

  const out = path.join(tmp, "out");
  const r = spawnSync(
    process.execPath,
    [CLI, "prune", "--model", path.join(modelDir, "model.json"), "--data", images, "--method", "magnitude", "--sparsity", "0.5", "--out", out, "--json"],
    { encoding: "utf8" },
  );
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout.trim().split("\n").pop()!);
  assert.equal(report.method, "magnitude");
  assert.equal(Math.round(100 * report.sparsity), 50);

  // The same held-out split (seeded, 4 of each class's 20), read back as the CLI read it; plain tfjs on the export.
  const test = datasetFor(resolveDataArgument(images, { inputShape: [28, 28, 1], classes: 10 })).test;
  assert.equal(test.count, 40);
  const exported = await loadInTfjs(
    JSON.parse(fs.readFileSync(path.join(out, "model.json"), "utf8")),
    new Uint8Array(fs.readFileSync(path.join(out, "weights.bin"))),
  );
  const predicted = tf.tidy(() => (exported.predict(tf.tensor4d(test.images, [test.count, 28, 28, 1])) as tf.Tensor).argMax(-1).dataSync());
  exported.dispose();
  let correct = 0;
  for (let i = 0; i < test.count; i++) if (predicted[i] === test.labels[i]) correct++;
  assert.equal(correct / test.count, report.accuracy.final);
});
