import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { enableConvProduct, kernelThreads, registerWasmKernels, setKernelThreads, threadedProducts } from "../src/kernels";
import { enableSimdLoops } from "../src/kernels/simd";
import { firstBitDifference, randomValues } from "./bits";
import { relativeError } from "./logits";

// FusedConv2D without bias or activation (conv.wat's product) and PadV2 with zeros (conv.wat's copyRows) replace
// wasm's own kernels under frozen numerics: they must give XNNPACK's and wasm's own bits exactly, and match cpu.
registerWasmKernels();

async function run(backend: string, f: () => tf.Tensor): Promise<{ shape: number[]; values: Float32Array }> {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const out = f();
    return { shape: out.shape, values: out.dataSync() as Float32Array };
  });
}

type Pad = "valid" | "same" | tf.backend_util.ExplicitPadding;
const CONVS: { x: [number, number, number, number]; k: number; co: number; stride: number; pad: Pad }[] = [
  { x: [2, 7, 7, 1], k: 3, co: 16, stride: 1, pad: "same" },
  { x: [3, 8, 8, 16], k: 3, co: 16, stride: 1, pad: "same" },
  { x: [2, 8, 8, 16], k: 3, co: 32, stride: 2, pad: "same" },
  { x: [2, 9, 9, 5], k: 3, co: 8, stride: 2, pad: "same" },
  { x: [2, 8, 8, 16], k: 1, co: 32, stride: 2, pad: "same" },
  { x: [1, 9, 7, 3], k: 5, co: 24, stride: 1, pad: "same" },
  { x: [2, 9, 9, 4], k: 3, co: 8, stride: 1, pad: "valid" },
  {
    x: [2, 6, 6, 2],
    k: 3,
    co: 8,
    stride: 1,
    pad: [
      [0, 0],
      [2, 0],
      [1, 2],
      [0, 0],
    ],
  },
  { x: [1, 5, 5, 3], k: 3, co: 4, stride: 1, pad: "same" }, // output channels not in 8s: wasm's own kernel
];

test("FusedConv2D without bias or activation (conv.wat) gives XNNPACK's bits and matches cpu: strides, paddings, 1×1 to 5×5, 1 to 16 channels", async () => {
  for (const [i, c] of CONVS.entries()) {
    const label = `x ${c.x.join("×")}, ${c.k}×${c.k}→${c.co}, stride ${c.stride}, pad ${JSON.stringify(c.pad)}`;
    const xValues = randomValues(c.x, 10 + i);
    const wValues = randomValues([c.k, c.k, c.x[3], c.co], 50 + i);
    const conv = () => tf.fused.conv2d({ x: tf.tensor4d(xValues, c.x), filter: tf.tensor4d(wValues, [c.k, c.k, c.x[3], c.co]), strides: c.stride, pad: c.pad });
    const cpu = await run("cpu", conv);
    enableConvProduct(false);
    const xnnpack = await run("wasm", conv);
    enableConvProduct(true);
    const product = await run("wasm", conv);
    assert.deepEqual(product.shape, cpu.shape, `${label}: shape`);
    assert.equal(firstBitDifference(xnnpack.values, product.values), -1, `${label}: bits differ from XNNPACK's`);
    assert.ok(relativeError(product.values, cpu.values) <= 1e-5, `${label}: relative error against cpu`);
  }
});

/**
 * `f` on 2 and 3 threads runs on the pool and gives the bits of wasm's own XNNPACK kernel on one thread (there without
 * the SIMD loops where `withoutLoops`: the max pool runs simd.wat's loop on one thread too, which it gives on 1 thread).
 */
async function expectOneThreadsBits(label: string, f: () => tf.Tensor, withoutLoops = false): Promise<void> {
  const threads = kernelThreads();
  try {
    setKernelThreads(1);
    enableSimdLoops(!withoutLoops);
    const xnnpack = await run("wasm", f);
    enableSimdLoops(true);
    const threadCounts = withoutLoops ? [1, 2, 3] : [2, 3];
    for (const n of threadCounts) {
      setKernelThreads(n);
      const jobs = threadedProducts();
      const threaded = await run("wasm", f);
      if (n > 1) assert.ok(threadedProducts() > jobs, `${label}: ${n} threads ran nothing on the pool`);
      assert.equal(firstBitDifference(xnnpack.values, threaded.values), -1, `${label}: ${n} threads' bits differ from XNNPACK's`);
    }
  } finally {
    enableSimdLoops(true);
    setKernelThreads(threads);
  }
}

test("Conv2D of a first layer (few input channels) on 2 and 3 threads (conv.wat's product, pixels split) gives one thread's XNNPACK bits", async () => {
  const cases: { x: [number, number, number, number]; k: number; co: number; stride: number; pad: Pad }[] = [
    { x: [16, 28, 28, 1], k: 3, co: 32, stride: 1, pad: "valid" }, // the paper CNN's first layer
    { x: [8, 32, 32, 3], k: 5, co: 16, stride: 2, pad: "same" },
    { x: [41, 17, 13, 2], k: 3, co: 8, stride: 1, pad: "same" }, // pixels not in whole register tiles
  ];
  for (const [i, c] of cases.entries()) {
    const [xValues, wValues] = [randomValues(c.x, 70 + i), randomValues([c.k, c.k, c.x[3], c.co], 90 + i)];
    const conv = () => tf.conv2d(tf.tensor4d(xValues, c.x), tf.tensor4d(wValues, [c.k, c.k, c.x[3], c.co]), c.stride, c.pad);
    await expectOneThreadsBits(`x ${c.x.join("×")}, ${c.k}×${c.k}→${c.co}, stride ${c.stride}, pad ${c.pad}`, conv);
  }
});

test("MaxPool 2×2 on 1, 2 and 3 threads (simd.wat's maxPool2x2, images split) gives XNNPACK's bits, NaN and ±0 included", async () => {
  const shapes: [number, number, number, number][] = [
    [64, 26, 26, 32], // the paper CNN's pools
    [64, 11, 11, 64], // odd sizes: the last row and column left out
    [5, 40, 41, 24],
  ];
  for (const [i, shape] of shapes.entries()) {
    // randomValues' ±0 and a NaN in every 16th value: windows that mix them, where the maximum's order shows
    const values = randomValues(shape, 120 + i).map((v, j) => (j % 16 === 5 ? NaN : v));
    await expectOneThreadsBits(shape.join("×"), () => tf.maxPool(tf.tensor4d(values, shape), 2, 2, "valid"), true);
  }
});

test("FusedConv2D's gradients through conv.wat's forward still match finite differences", async () => {
  await tf.setBackend("wasm");
  const x = tf.tensor4d(randomValues([1, 5, 5, 2], 7), [1, 5, 5, 2]);
  const w = tf.tensor4d(randomValues([3, 3, 2, 8], 8), [3, 3, 2, 8]);
  const loss = (filter: tf.Tensor) =>
    tf.fused
      .conv2d({ x, filter: filter as tf.Tensor4D, strides: 1, pad: "same" })
      .square()
      .sum() as tf.Scalar;
  const grad = tf.grad(loss)(w).dataSync();
  const values = w.dataSync();
  for (const i of [0, 17, 71, 143]) {
    const at = (delta: number) =>
      loss(
        tf.tensor4d(
          values.map((v, j) => (j === i ? v + delta : v)),
          w.shape as [number, number, number, number],
        ),
      ).dataSync()[0];
    const numeric = (at(1e-2) - at(-1e-2)) / 2e-2;
    assert.ok(Math.abs(numeric - grad[i]) <= 2e-2 * Math.max(1, Math.abs(numeric)), `dW[${i}]: ${grad[i]} vs finite difference ${numeric}`);
  }
});

test("PadV2 with zeros (conv.wat's copyRows) gives wasm's own bits: one or two adjacent padded dimensions, ranks 1 to 4", async () => {
  const cases: { shape: number[]; paddings: [number, number][]; value?: number }[] = [
    {
      shape: [2, 5, 5, 3],
      paddings: [
        [0, 0],
        [1, 1],
        [1, 1],
        [0, 0],
      ],
    },
    {
      shape: [3, 2, 5, 7],
      paddings: [
        [0, 0],
        [0, 0],
        [0, 2],
        [1, 0],
      ],
    },
    {
      shape: [4, 6, 3],
      paddings: [
        [2, 1],
        [0, 0],
        [0, 0],
      ],
    },
    { shape: [7], paddings: [[3, 5]] },
    {
      shape: [2, 3, 4],
      paddings: [
        [0, 0],
        [0, 0],
        [0, 3],
      ],
    },
    {
      shape: [2, 3, 4],
      paddings: [
        [1, 0],
        [0, 0],
        [0, 1],
      ],
    }, // not adjacent: wasm's own kernel
    {
      shape: [2, 3],
      paddings: [
        [1, 1],
        [1, 1],
      ],
      value: 2.5,
    }, // not zero: wasm's own kernel
  ];
  for (const [i, c] of cases.entries()) {
    const values = randomValues(c.shape, 90 + i);
    const pad = () => tf.pad(tf.tensor(values, c.shape), c.paddings, c.value ?? 0);
    const cpu = await run("cpu", pad);
    enableConvProduct(false);
    const own = await run("wasm", pad);
    enableConvProduct(true);
    const rows = await run("wasm", pad);
    assert.deepEqual(rows.shape, cpu.shape, `${JSON.stringify(c)}: shape`);
    assert.equal(firstBitDifference(own.values, rows.values), -1, `${JSON.stringify(c)}: bits differ from wasm's own`);
    assert.equal(firstBitDifference(cpu.values, rows.values), -1, `${JSON.stringify(c)}: bits differ from cpu's`);
  }
});

/** Depthwise gradient cases at stride 1: the input's shape, the filter's size and the padding. */
const DEPTHWISE_CASES: { x: [number, number, number, number]; k: number; pad: Pad }[] = [
  { x: [3, 7, 7, 32], k: 3, pad: "same" },
  { x: [2, 6, 5, 44], k: 3, pad: "same" }, // one 32-channel block and three of four
  { x: [2, 6, 6, 8], k: 3, pad: "valid" },
  { x: [1, 9, 8, 4], k: 5, pad: "same" },
  {
    x: [2, 4, 4, 12],
    k: 2,
    pad: [
      [0, 0],
      [0, 2],
      [1, 0],
      [0, 0],
    ],
  },
];

test("DepthwiseConv2dNativeBackpropFilter at stride 1 (conv.wat's tap-by-tap sums) gives the per-output walk's bits and matches cpu", async () => {
  for (const [i, c] of DEPTHWISE_CASES.entries()) {
    const label = `x ${c.x.join("×")}, ${c.k}×${c.k}, pad ${JSON.stringify(c.pad)}`;
    const xValues = randomValues(c.x, 130 + i);
    const filterShape: [number, number, number, number] = [c.k, c.k, c.x[3], 1];
    const grad = () => {
      const x = tf.tensor4d(xValues, c.x);
      const y = tf.depthwiseConv2d(x, tf.zeros(filterShape), 1, c.pad);
      const dy = tf.tensor4d(randomValues(y.shape, 170 + i), y.shape as [number, number, number, number]);
      return tf.engine().runKernel(tf.DepthwiseConv2dNativeBackpropFilter, { x, dy }, { strides: 1, pad: c.pad, filterShape, dilations: 1 }) as tf.Tensor;
    };
    const cpu = await run("cpu", grad);
    enableConvProduct(false);
    const walk = await run("wasm", grad);
    enableConvProduct(true);
    const taps = await run("wasm", grad);
    assert.equal(firstBitDifference(walk.values, taps.values), -1, `${label}: bits differ from the per-output walk's`);
    assert.ok(relativeError(taps.values, cpu.values) <= 1e-5, `${label}: relative error against cpu`);
  }
});

test("DepthwiseConv2dNativeBackpropInput at stride 1 (conv.wat's gather, sums in registers) gives the scatter's bits and matches cpu", async () => {
  const cases = DEPTHWISE_CASES.map((c) => ({ dx: c.x, k: c.k, pad: c.pad }));
  for (const [i, c] of cases.entries()) {
    const label = `dx ${c.dx.join("×")}, ${c.k}×${c.k}, pad ${JSON.stringify(c.pad)}`;
    const filterShape: [number, number, number, number] = [c.k, c.k, c.dx[3], 1];
    const filterValues = randomValues(filterShape, 210 + i);
    const grad = () => {
      const filter = tf.tensor4d(filterValues, filterShape);
      const y = tf.depthwiseConv2d(tf.zeros(c.dx) as tf.Tensor4D, filter, 1, c.pad);
      const dy = tf.tensor4d(randomValues(y.shape, 250 + i), y.shape as [number, number, number, number]);
      return tf
        .engine()
        .runKernel(tf.DepthwiseConv2dNativeBackpropInput, { dy, filter }, { strides: 1, pad: c.pad, inputShape: c.dx, dilations: 1 }) as tf.Tensor;
    };
    const cpu = await run("cpu", grad);
    enableConvProduct(false);
    const scatter = await run("wasm", grad);
    enableConvProduct(true);
    const gather = await run("wasm", grad);
    assert.equal(firstBitDifference(scatter.values, gather.values), -1, `${label}: bits differ from the scatter's`);
    assert.ok(relativeError(gather.values, cpu.values) <= 1e-5, `${label}: relative error against cpu`);
  }
});
