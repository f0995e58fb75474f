import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/backend";
import { batchNormTraining, enableFusedBatchNormTraining, profileKernels } from "../src/kernels";
import { mulberry32 } from "../src/random";

// Batch norm in training mode, fused (batch-norm-train.ts), must give the composite path's bits (tf.moments, then
// tf.batchNorm, and autodiff through both) for y, the batch mean and variance, and the gradients of x, gamma and
// beta: shipped records were trained with the composite path. Each case runs both ways on wasm and is compared bit
// for bit; the fused kernels must have run where they apply.

function random(shape: number[], seed: number, scale = 3, offset = 0): tf.Tensor {
  const rand = mulberry32(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: size }, () => offset + (rand() - 0.5) * scale),
    shape,
  );
}

function bits(t: tf.Tensor): number[] {
  return Array.from(new Uint32Array((t.dataSync() as Float32Array).slice().buffer));
}

interface Run {
  values: Record<string, number[]>;
  fusedCalls: number;
}

/**
 * y, mean, variance and the gradients of a loss Σ y·w with respect to x, gamma and beta (`affine`: gamma and beta are
 * arguments; else the constants ones and zeros, as the graph's batch norm passes without scale or center).
 */
function run(fused: boolean, x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, w: tf.Tensor, affine: boolean): Run {
  enableFusedBatchNormTraining(fused);
  const profiler = profileKernels("wasm");
  try {
    const values: Record<string, number[]> = {};
    tf.tidy(() => {
      const stats: tf.Tensor[] = [];
      const loss = (xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
        const { y, mean, variance } = batchNormTraining(xx, g, b, 1e-3, true);
        stats.push(tf.keep(y), tf.keep(mean), tf.keep(variance));
        return tf.sum(tf.mul(y, w));
      };
      const [dx, dGamma, dBeta] = affine
        ? tf.grads(loss)([x, gamma, beta])
        : tf.grads((xx: tf.Tensor) => loss(xx, tf.ones(gamma.shape), tf.zeros(beta.shape)))([x]);
      const [y, mean, variance] = stats;
      Object.assign(values, { y: bits(y), mean: bits(mean), variance: bits(variance), dx: bits(dx) });
      if (affine) Object.assign(values, { dGamma: bits(dGamma), dBeta: bits(dBeta) });
      tf.dispose(stats);
    });
    const calls = (kernel: string) => profiler.timings().find((t) => t.kernel === kernel)?.calls ?? 0;
    return { values, fusedCalls: calls("FwpruneBatchNormTrain") + calls("FwpruneBatchNormTrainGrad") };
  } finally {
    profiler.stop();
    enableFusedBatchNormTraining(true);
  }
}

const SHAPES: number[][] = [
  [2, 5, 7, 4],
  [6, 3, 1, 8], // a spatial axis of one: Sub's gradient sums over axes 0 and 1
  [8, 7, 5, 16],
  [3, 9, 11, 32],
  [4, 6, 6, 64],
  [2, 3, 5, 256],
  [5, 1, 1, 12],
  [8, 24], // dense layers: [batch, channels]
  [1, 4],
  [3, 7, 20], // rank 3
];

for (const shape of SHAPES) {
  for (const affine of [true, false]) {
    test(`training batch norm [${shape}]${affine ? "" : " without scale and center"}: fused y, mean, variance, dx, dgamma, dbeta have the composite path's bits`, async () => {
      await initBackend("wasm", { quiet: true });
      const c = shape[shape.length - 1];
      const seed = shape.reduce((a, b) => a * 31 + b, 7);
      // an offset mean and a spread that differs per run, so the variance's subtraction matters
      const x = random(shape, seed, 4, 1.5);
      const [gamma, beta] = [random([c], seed + 1, 2, 1), random([c], seed + 2)];
      const w = random(shape, seed + 3);
      const fused = run(true, x, gamma, beta, w, affine);
      const composite = run(false, x, gamma, beta, w, affine);
      assert.equal(fused.fusedCalls, 2, "the fused forward and gradient kernels ran once each");
      assert.equal(composite.fusedCalls, 0);
      for (const key of Object.keys(composite.values)) assert.deepEqual(fused.values[key], composite.values[key], `${key} differs`);
      tf.dispose([x, gamma, beta, w]);
    });
  }
}

test("channels not in fours, a shared x, and an x whose summed axes do not lead take the composite path", async () => {
  await initBackend("wasm", { quiet: true });
  const profiler = profileKernels("wasm");
  try {
    tf.tidy(() => {
      const x = random([2, 3, 3, 6], 1);
      batchNormTraining(x, tf.ones([6]), tf.zeros([6]), 1e-3, true);
      const x4 = random([2, 3, 3, 8], 2);
      batchNormTraining(x4, tf.ones([8]), tf.zeros([8]), 1e-3, false);
      // batch 1: Sub's gradient sums over axes 1 and 2 only, with wasm's own Sum
      batchNormTraining(random([1, 3, 3, 8], 3), tf.ones([8]), tf.zeros([8]), 1e-3, true);
    });
    assert.equal(profiler.timings().find((t) => t.kernel === "FwpruneBatchNormTrain")?.calls ?? 0, 0);
  } finally {
    profiler.stop();
  }
});

test("fused training batch norm agrees with the cpu backend to float32 rounding", async () => {
  const shape = [4, 5, 3, 8];
  const compute = async (backend: "cpu" | "wasm") => {
    await initBackend(backend, { quiet: true });
    return tf.tidy(() => {
      const [x, gamma, beta, w] = [random(shape, 1, 4, 1), random([8], 2, 2, 1), random([8], 3), random(shape, 4)];
      let stats: tf.Tensor[] = [];
      const loss = (xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
        const { y, mean, variance } = batchNormTraining(xx, g, b, 1e-3, true);
        stats = [y, mean, variance].map((t) => tf.keep(t));
        return tf.sum(tf.mul(y, w));
      };
      const grads = tf.grads(loss)([x, gamma, beta]);
      const out = [...stats, ...grads].map((t) => Array.from(t.dataSync() as Float32Array));
      tf.dispose(stats);
      return out;
    });
  };
  const cpu = await compute("cpu");
  const wasm = await compute("wasm");
  cpu.forEach((expected, i) => {
    const scale = Math.max(...expected.map(Math.abs), 1e-6);
    const worst = Math.max(...expected.map((v, j) => Math.abs(v - wasm[i][j])));
    assert.ok(worst <= 1e-4 * scale, `output ${i}: largest difference ${worst} (scale ${scale})`);
  });
});
