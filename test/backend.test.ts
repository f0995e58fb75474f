import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";

// fwprune loads tfjs-core, not the @tensorflow/tfjs package (four packages more, 0.1 s of every start and of every
// inference thread's). tfjs-core's Node build registers no gradients: initBackend registers them (tfjs-layers' build
// does), except in a thread that only infers. Each case runs in a fresh process, where no test has loaded the package.
function inFreshProcess(training: boolean) {
  const source = `
    const tf = require("@tensorflow/tfjs-core");
    const { initBackend } = require(${JSON.stringify(path.join(__dirname, "..", "src", "backend.ts"))});
    initBackend("wasm", { quiet: true, training: ${training} }).then(() => {
      const loaded = (name) => Object.keys(require.cache).some((f) => f.includes("/node_modules/" + name + "/"));
      const x = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 3, 3, 1]);
      const w = tf.tensor4d([1, -1, 2, 0.5], [2, 2, 1, 1]);
      let grad;
      try {
        grad = Array.from(tf.grad((f) => tf.sum(tf.conv2d(x, f, 1, "valid")))(w).dataSync());
      } catch (err) {
        grad = String(err.message);
      }
      console.log(JSON.stringify({ layers: loaded("@tensorflow/tfjs-layers"), tfjs: loaded("@tensorflow/tfjs"), grad }));
    });`;
  const out = spawnSync(process.execPath, ["--import", "tsx", "-e", source], { encoding: "utf8" });
  assert.equal(out.status, 0, out.stderr);
  return JSON.parse(out.stdout.trim().split("\n").pop()!) as { layers: boolean; tfjs: boolean; grad: number[] | string };
}

test("initBackend registers tfjs's gradients without the @tensorflow/tfjs package", () => {
  const r = inFreshProcess(true);
  assert.equal(r.tfjs, false);
  assert.equal(r.layers, true);
  // d/dw Σ conv(x, w) = the sum of the 2×2 windows' entries at each kernel position: by hand, 1+2+4+5 = 12, ...
  assert.deepEqual(r.grad, [12, 16, 24, 28]);
});

test("a thread that only infers loads neither tfjs-layers nor the tfjs package, and has no gradients", () => {
  const r = inFreshProcess(false);
  assert.equal(r.tfjs, false);
  assert.equal(r.layers, false);
  assert.match(String(r.grad), /gradient/i);
});
