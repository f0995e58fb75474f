import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { initBackend } from "../src/backend";
import { profileKernels, useFastGradients } from "../src/kernels";
import { normLoops } from "../src/kernels/batch-norm-grad";
import { heapBuffer, simdLoops, withScratch } from "../src/kernels/simd";
import { mulberry32 } from "../src/random";

// fwprune's gradients of batch norm (one fused pass on wasm), Mean and Sum (broadcast without a tensor of ones) must
// give exactly tfjs-core's bits: shipped records were trained with tfjs-core's. Each case is computed both ways on
// wasm and compared bit for bit; the fused kernel must have run where it applies.

function random(shape: number[], seed: number, positive = false): tf.Tensor {
  const rand = mulberry32(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: size }, () => (positive ? 0.2 + rand() : (rand() - 0.5) * 3)),
    shape,
  );
}

function bits(ts: tf.Tensor[]): number[][] {
  return ts.map((t) => Array.from(new Uint32Array((t.dataSync() as Float32Array).slice().buffer)));
}

/** The gradients of `f` at `args` (weighted by `dy`) with fwprune's gradients or tfjs-core's, and fused-kernel calls. */
function gradients(fast: boolean, f: (...xs: tf.Tensor[]) => tf.Tensor, args: tf.Tensor[], dy: tf.Tensor): { grads: number[][]; fusedCalls: number } {
  useFastGradients(fast);
  const profiler = profileKernels("wasm");
  try {
    const grads = tf.tidy(() => tf.grads(f)(args, dy));
    const fusedCalls = profiler.timings().find((t) => t.kernel === "FwpruneBatchNormGrad")?.calls ?? 0;
    const out = bits(grads);
    tf.dispose(grads);
    return { grads: out, fusedCalls };
  } finally {
    profiler.stop();
    useFastGradients(true);
  }
}

const SHAPES: [number[], boolean][] = [
  [[2, 3, 5, 8], true],
  [[3, 4, 4, 12], true],
  [[1, 7, 3, 4], true],
  [[2, 3, 3, 6], false], // channels not in fours: tfjs-core's composite gradient
];

for (const [shape, fusable] of SHAPES) {
  test(`batch norm [${shape}] with given statistics: fused gradients of x, mean, variance, scale, offset have tfjs-core's bits`, async () => {
    await initBackend("wasm", { quiet: true });
    const c = shape[3];
    const x = random(shape, 1);
    const dy = random(shape, 2);
    const [mean, variance, scale, offset] = [random([c], 3), random([c], 4, true), random([c], 5), random([c], 6)];
    const f = (xx: tf.Tensor, m: tf.Tensor, v: tf.Tensor, s: tf.Tensor, o: tf.Tensor) => tf.batchNorm(xx, m, v, o, s, 1e-3);
    const fast = gradients(true, f as (...xs: tf.Tensor[]) => tf.Tensor, [x, mean, variance, scale, offset], dy);
    const reference = gradients(false, f as (...xs: tf.Tensor[]) => tf.Tensor, [x, mean, variance, scale, offset], dy);
    assert.equal(fast.fusedCalls, fusable ? 1 : 0);
    assert.equal(reference.fusedCalls, 0);
    assert.deepEqual(fast.grads, reference.grads);
    tf.dispose([x, dy, mean, variance, scale, offset]);
  });
}

test("batch norm in training mode (moments, Mean and Sum gradients): the same bits as tfjs-core's gradients, and they move", async () => {
  await initBackend("wasm", { quiet: true });
  const shape = [4, 5, 5, 8];
  const x = random(shape, 7);
  const dy = random(shape, 8);
  const [scale, offset] = [random([8], 9), random([8], 10)];
  const f = (xx: tf.Tensor, s: tf.Tensor, o: tf.Tensor) => {
    const { mean, variance } = tf.moments(xx, [0, 1, 2]);
    // a Sum and a Mean of the output too, as the loss and global average pooling add them
    const y = tf.batchNorm(xx, mean, variance, o, s, 1e-3);
    return tf.add(y, tf.add(tf.mean(y, [1, 2], true), tf.sum(y, [0], true)));
  };
  const fast = gradients(true, f as (...xs: tf.Tensor[]) => tf.Tensor, [x, scale, offset], dy);
  const reference = gradients(false, f as (...xs: tf.Tensor[]) => tf.Tensor, [x, scale, offset], dy);
  assert.equal(fast.fusedCalls, 1);
  assert.deepEqual(fast.grads, reference.grads);
  assert.ok(
    fast.grads.every((g) => g.some((v) => v !== 0)),
    "every gradient is non-zero somewhere",
  );
  tf.dispose([x, dy, scale, offset]);
});

test("the gradients agree with the cpu backend's (tfjs-core's formulas) to float32 rounding", async () => {
  const run = async (backend: "cpu" | "wasm") => {
    await initBackend(backend, { quiet: true });
    const shape = [2, 4, 4, 8];
    const x = random(shape, 11);
    const dy = random(shape, 12);
    const [scale, offset] = [random([8], 13), random([8], 14)];
    const f = (xx: tf.Tensor, s: tf.Tensor, o: tf.Tensor) => {
      const { mean, variance } = tf.moments(xx, [0, 1, 2]);
      return tf.batchNorm(xx, mean, variance, o, s, 1e-3);
    };
    const grads = tf.grads(f as (...xs: tf.Tensor[]) => tf.Tensor)([x, scale, offset], dy);
    const values = grads.map((g) => Array.from(g.dataSync()));
    tf.dispose([x, dy, scale, offset, ...grads]);
    return values;
  };
  const cpu = await run("cpu");
  const wasm = await run("wasm");
  cpu.forEach((expected, i) => {
    const scale = Math.max(...expected.map(Math.abs));
    const diff = Math.max(...expected.map((v, j) => Math.abs(v - wasm[i][j])));
    assert.ok(diff <= 1e-5 * scale, `gradient ${i}: max |Δ| ${diff} vs max ${scale}`);
  });
});

test("norm.wat's blocked row sums give simd.wat's sumRowsF64 bits, for any rows and channels in fours", async () => {
  await initBackend("wasm", { quiet: true });
  const backend = tf.backend() as BackendWasm;
  const simd = simdLoops(backend);
  const norm = normLoops(backend);
  assert.ok(simd && norm, "WebAssembly SIMD runs here");
  for (const [rows, cols] of [
    [1, 4],
    [31, 8],
    [33, 12],
    [70, 20],
    [65, 64],
    [40, 28], // sixteen, eight, then four channels
    [33, 44],
  ]) {
    // magnitudes from 2^-40 to 2^40, so that float64 sums round and their order shows
    const rand = mulberry32(rows * cols);
    const x = tf.tensor2d(
      Float32Array.from({ length: rows * cols }, () => (rand() - 0.5) * 2 ** Math.floor(rand() * 80 - 40)),
      [rows, cols],
    );
    const sums: number[][] = [simd.sumRowsF64.bind(simd), (p: number, acc: number, r: number, c: number) => norm.sumRowsF64Blocked(p, acc, r, c * 4)].map(
      (loop) =>
        withScratch(backend, cols * 8, (acc) => {
          new Float64Array(heapBuffer(backend), acc, cols).fill(0.25); // the loops add to what is there
          loop(backend.getMemoryOffset(x.dataId), acc, rows, cols);
          return Array.from(new Float64Array(heapBuffer(backend), acc, cols));
        }),
    );
    assert.deepEqual(sums[1], sums[0], `${rows}×${cols}`);
    x.dispose();
  }
});

test("the fused Relu and Square gradients give tfjs-core's bits (zeros of either sign included), and run", async () => {
  await initBackend("wasm", { quiet: true });
  for (const shape of [
    [2, 3, 3, 8],
    [5, 4],
    [3, 3], // a size not in fours: tfjs-core's gradient
  ]) {
    const size = shape.reduce((a, b) => a * b, 1);
    const rand = mulberry32(size);
    const pick = [0, -0, 1e-30, -2.5];
    const x = tf.tensor(
      Float32Array.from({ length: size }, (_, i) => (i % 5 === 0 ? pick[i % 4] : (rand() - 0.5) * 4)),
      shape,
    );
    const dy = random(shape, size + 1);
    for (const [op, kernel] of [
      [tf.relu, "FwpruneReluGrad"],
      [tf.square, "FwpruneSquareGrad"],
    ] as const) {
      const run = (fast: boolean) => {
        useFastGradients(fast);
        const profiler = profileKernels("wasm");
        try {
          const g = tf.grad((t: tf.Tensor) => op(t))(x, dy);
          const out = bits([g]);
          g.dispose();
          return { out, calls: profiler.timings().find((t) => t.kernel === kernel)?.calls ?? 0 };
        } finally {
          profiler.stop();
          useFastGradients(true);
        }
      };
      const fast = run(true);
      assert.deepEqual(fast.out, run(false).out, `${kernel} [${shape}]`);
      assert.equal(fast.calls, size % 4 === 0 ? 1 : 0, `${kernel} [${shape}] ran fused`);
    }
    tf.dispose([x, dy]);
  }
});
