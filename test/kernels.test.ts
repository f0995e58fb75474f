import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import {
  enableRelaxedGemm,
  filledTensor,
  FusedMomentumOptimizer,
  hasRelaxedGemm,
  kernelThreads,
  registerWasmKernels,
  setKernelThreads,
  threadedProducts,
} from "../src/kernels";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { enableSimdLoops, simdLoops } from "../src/kernels/simd";
import { mulberry32 } from "../src/random";

// Every wasm kernel fwprune registers must match the cpu backend (the reference) within 1e-4 relative error.
registerWasmKernels();

type Shape = number[];
interface Input {
  shape: Shape;
  values: Float32Array;
}

function randomInput(shape: Shape, seed: number, zeroFraction = 0): Input {
  const rand = mulberry32(seed);
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i++) values[i] = rand() < zeroFraction ? 0 : 2 * rand() - 1;
  return { shape, values };
}

async function runOn(backend: string, kernel: string, inputs: Record<string, Input>, attrs: tf.NamedAttrMap) {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const tensors: tf.NamedTensorMap = {};
    for (const [name, input] of Object.entries(inputs)) tensors[name] = tf.tensor(input.values, input.shape);
    const out = tf.engine().runKernel(kernel, tensors, attrs) as tf.Tensor;
    return { shape: out.shape, values: out.dataSync() as Float32Array };
  });
}

async function expectSameAsCpu(label: string, kernel: string, inputs: Record<string, Input>, attrs: tf.NamedAttrMap) {
  const cpu = await runOn("cpu", kernel, inputs, attrs);
  const wasm = await runOn("wasm", kernel, inputs, attrs);
  assert.deepEqual(wasm.shape, cpu.shape, `${label}: shape`);
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < cpu.values.length; i++) {
    scale = Math.max(scale, Math.abs(cpu.values[i]));
    diff = Math.max(diff, Math.abs(cpu.values[i] - wasm.values[i]));
  }
  const relative = diff / Math.max(scale, 1e-12);
  assert.ok(relative <= 1e-4, `${label}: relative error ${relative.toExponential(2)} (max |Δ| ${diff}, max |cpu| ${scale})`);
}

const PADS: ("valid" | "same")[] = ["valid", "same"];
const SIZES = [
  [7, 7],
  [8, 6],
];
const GRID: { batch: number; inChannels: number; stride: number; pad: "valid" | "same"; size: number[] }[] = [];
for (const batch of [1, 7]) {
  for (const inChannels of [1, 5]) {
    for (const stride of [1, 2]) for (const pad of PADS) for (const size of SIZES) GRID.push({ batch, inChannels, stride, pad, size });
  }
}

function convCase(c: (typeof GRID)[number], seed: number, kernel = 3) {
  const outChannels = 4;
  const [h, w] = c.size;
  const info = tf.backend_util.computeConv2DInfo([c.batch, h, w, c.inChannels], [kernel, kernel, c.inChannels, outChannels], c.stride, 1, c.pad);
  return {
    x: randomInput([c.batch, h, w, c.inChannels], seed),
    filter: randomInput([kernel, kernel, c.inChannels, outChannels], seed + 1),
    dy: randomInput(info.outShape, seed + 2),
    filterShape: [kernel, kernel, c.inChannels, outChannels],
  };
}

test("Conv2DBackpropFilter on wasm matches cpu over the grid (stride, padding, sizes, batch, channels)", async () => {
  let seed = 1;
  for (const c of GRID) {
    // 1×1 at stride 1: the im2col matrix is the transposed input itself
    for (const kernel of [1, 2, 3]) {
      const { x, dy, filterShape } = convCase(c, (seed += 3), kernel);
      const attrs = { strides: c.stride, pad: c.pad, dataFormat: "NHWC", filterShape };
      await expectSameAsCpu(`dW ${JSON.stringify(c)} k${kernel}`, "Conv2DBackpropFilter", { x, dy }, attrs);
    }
  }
});

test("Conv2DBackpropFilter on wasm: explicit padding, and the paper CNN's conv shapes", async () => {
  const explicit: tf.backend_util.ExplicitPadding = [
    [0, 0],
    [1, 2],
    [0, 1],
    [0, 0],
  ];
  for (const stride of [1, 2]) {
    for (const inChannels of [1, 5]) {
      const info = tf.backend_util.computeConv2DInfo([3, 9, 8, inChannels], [3, 3, inChannels, 4], stride, 1, explicit);
      const x = randomInput([3, 9, 8, inChannels], 100 + stride + inChannels);
      const dy = randomInput(info.outShape, 200 + stride + inChannels);
      const attrs = { strides: stride, pad: explicit, dataFormat: "NHWC", filterShape: [3, 3, inChannels, 4] };
      await expectSameAsCpu(`dW explicit s${stride} c${inChannels}`, "Conv2DBackpropFilter", { x, dy }, attrs);
    }
  }
  // 32 output channels and one or two input channels take the direct SIMD path.
  for (const pad of ["valid", "same", explicit] as const) {
    for (const stride of [1, 2]) {
      for (const inChannels of [1, 2]) {
        const shape: [number, number, number, number] = [7, 9, 8, inChannels];
        const info = tf.backend_util.computeConv2DInfo(shape, [3, 3, inChannels, 32], stride, 1, pad);
        const x = randomInput(shape, 300 + stride + inChannels);
        const dy = randomInput(info.outShape, 400 + stride + inChannels);
        const attrs = { strides: stride, pad, dataFormat: "NHWC", filterShape: [3, 3, inChannels, 32] };
        await expectSameAsCpu(`dW direct ${JSON.stringify(pad)} s${stride} c${inChannels}`, "Conv2DBackpropFilter", { x, dy }, attrs);
      }
    }
  }
  // The paper CNN's first layer at batch 64: long sums, so float32 accumulation error would show here.
  const conv1 = { x: randomInput([64, 28, 28, 1], 5), dy: randomInput([64, 26, 26, 32], 6) };
  await expectSameAsCpu("dW conv1", "Conv2DBackpropFilter", conv1, { strides: 1, pad: "valid", dataFormat: "NHWC", filterShape: [3, 3, 1, 32] });
  const conv2 = { x: randomInput([2, 13, 13, 32], 7), dy: randomInput([2, 11, 11, 64], 8) };
  await expectSameAsCpu("dW conv2", "Conv2DBackpropFilter", conv2, { strides: 1, pad: "valid", dataFormat: "NHWC", filterShape: [3, 3, 32, 64] });
});

test("Conv2DBackpropFilter on one thread (stride 1: read in place from padded xT; else im2col in blocks of images; one or two input channels: a direct sum) matches cpu, and 2 and 3 threads its bits", async () => {
  const cases = [
    { x: [6, 20, 20, 16], co: 8, stride: 1 }, // in place, image by image
    { x: [6, 20, 12, 16], co: 8, stride: 1 }, // rows too short to read in place: 2 blocks of 3 images
    { x: [20, 30, 30, 8], co: 16, stride: 2 }, // blocks of 8 images, the last of 4
    { x: [16, 28, 28, 1], co: 32, stride: 1 }, // one input channel: the direct sum, its taps split on the threads
    { x: [16, 29, 29, 2], co: 32, stride: 2 }, // two, at stride 2
  ];
  const threads = kernelThreads();
  try {
    let seed = 800;
    for (const c of cases) {
      const filterShape = [3, 3, c.x[3], c.co];
      const info = tf.backend_util.computeConv2DInfo(
        c.x as [number, number, number, number],
        filterShape as [number, number, number, number],
        c.stride,
        1,
        "same",
      );
      const inputs = { x: randomInput(c.x, seed++), dy: randomInput(info.outShape, seed++) };
      const attrs = { strides: c.stride, pad: "same", dataFormat: "NHWC", filterShape };
      setKernelThreads(1);
      await expectSameAsCpu(`dW blocked ${JSON.stringify(c)}`, "Conv2DBackpropFilter", inputs, attrs);
      const blocked = await runOn("wasm", "Conv2DBackpropFilter", inputs, attrs);
      for (const n of [2, 3]) {
        setKernelThreads(n); // im2col image by image, then dW's rows, on the kernel threads
        const jobs = threadedProducts();
        const threaded = await runOn("wasm", "Conv2DBackpropFilter", inputs, attrs);
        assert.ok(threadedProducts() > jobs, `dW ${JSON.stringify(c)}: ${n} threads ran nothing on the pool`);
        assert.deepEqual(blocked.values, threaded.values, `dW ${JSON.stringify(c)}: ${n} threads give one thread's bits`);
      }
    }
  } finally {
    setKernelThreads(threads);
  }
});

test("simd.wat's transpose2D moves every value of [rows, cols] to [cols, rows] (4×4 blocks and the odd edges)", async () => {
  await tf.setBackend("wasm");
  const backend = tf.backend() as BackendWasm;
  const simd = simdLoops(backend);
  assert.ok(simd, "WebAssembly SIMD in this Node");
  for (const [rows, cols] of [
    [8, 4],
    [7, 6],
    [13, 3],
    [2, 9],
  ]) {
    const src = tf.tensor2d(randomInput([rows, cols], rows * 31 + cols).values, [rows, cols]);
    const dst = tf.zeros([cols, rows]);
    simd.transpose2D(backend.getMemoryOffset(src.dataId), backend.getMemoryOffset(dst.dataId), rows, cols);
    const a = src.dataSync();
    const t = dst.dataSync();
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) assert.equal(t[j * rows + i], a[i * cols + j], `[${rows}, ${cols}] at (${i}, ${j})`);
    tf.dispose([src, dst]);
  }
});

test("Conv2DBackpropInput on wasm matches cpu over the grid", async () => {
  let seed = 500;
  for (const c of GRID) {
    for (const kernel of [2, 3]) {
      const { filter, dy } = convCase(c, (seed += 3), kernel);
      const attrs = { strides: c.stride, pad: c.pad, dataFormat: "NHWC", inputShape: [c.batch, c.size[0], c.size[1], c.inChannels] };
      await expectSameAsCpu(`dx ${JSON.stringify(c)} k${kernel}`, "Conv2DBackpropInput", { dy, filter }, attrs);
    }
  }
  const dx2 = { dy: randomInput([2, 11, 11, 64], 11), filter: randomInput([3, 3, 32, 64], 12) };
  await expectSameAsCpu("dx conv2", "Conv2DBackpropInput", dx2, { strides: 1, pad: "valid", dataFormat: "NHWC", inputShape: [2, 13, 13, 32] });
  const explicit: tf.backend_util.ExplicitPadding = [
    [0, 0],
    [2, 1],
    [1, 0],
    [0, 0],
  ];
  const info = tf.backend_util.computeConv2DInfo([3, 9, 8, 5], [3, 3, 5, 4], 1, 1, explicit);
  await expectSameAsCpu(
    "dx explicit",
    "Conv2DBackpropInput",
    { dy: randomInput(info.outShape, 9), filter: randomInput([3, 3, 5, 4], 10) },
    { strides: 1, pad: explicit, dataFormat: "NHWC", inputShape: [3, 9, 8, 5] },
  );
});

test("Conv2DBackpropInput on one thread (product in blocks of rows, each scattered at once; 1×1: the product) matches cpu, and 2 and 3 threads its bits", async () => {
  const cases = [
    { dx: [4, 16, 16, 16], co: 8, stride: 1 }, // 11 blocks of 6 image rows, the last of 4
    { dx: [5, 30, 30, 8], co: 16, stride: 2 }, // blocks of 14 image rows (15 wide: 210 rows, a multiple of 6), the last of 5
    { dx: [4, 9, 9, 24], co: 16, stride: 1, kernel: 1 }, // 1×1: the product is dx, no scatter
  ];
  const threads = kernelThreads();
  try {
    let seed = 700;
    for (const c of cases) {
      const size = c.kernel ?? 3;
      const info = tf.backend_util.computeConv2DInfo(c.dx as [number, number, number, number], [size, size, c.dx[3], c.co], c.stride, 1, "same");
      const inputs = { dy: randomInput(info.outShape, seed++), filter: randomInput([size, size, c.dx[3], c.co], seed++) };
      const attrs = { strides: c.stride, pad: "same", dataFormat: "NHWC", inputShape: c.dx };
      setKernelThreads(1);
      await expectSameAsCpu(`dx blocked ${JSON.stringify(c)}`, "Conv2DBackpropInput", inputs, attrs);
      const blocked = await runOn("wasm", "Conv2DBackpropInput", inputs, attrs);
      for (const n of [2, 3]) {
        setKernelThreads(n); // image by image on the kernel threads, each product scattered at once (1×1: the product)
        const jobs = threadedProducts();
        const threaded = await runOn("wasm", "Conv2DBackpropInput", inputs, attrs);
        if (size > 1) assert.ok(threadedProducts() > jobs, `dx ${JSON.stringify(c)}: ${n} threads ran nothing on the pool`); // 1×1: too small
        assert.deepEqual(blocked.values, threaded.values, `dx ${JSON.stringify(c)}: ${n} threads give one thread's bits`);
      }
    }
  } finally {
    setKernelThreads(threads);
  }
});

test("MaxPoolGrad on wasm matches cpu: window and stride, padding, sizes, batch, channels, ties", async () => {
  let seed = 900;
  for (const batch of [1, 7]) {
    // 4 and 8 channels take the SIMD path for 2×2 windows at stride 2.
    for (const channels of [1, 4, 5, 8]) {
      for (const [h, w] of SIZES) {
        for (const [filterSize, stride] of [
          [2, 2],
          [3, 2],
          [2, 1],
          [3, 1],
        ]) {
          for (const pad of PADS) {
            const shape = [batch, h, w, channels];
            const info = tf.backend_util.computePool2DInfo(shape as [number, number, number, number], filterSize, stride, 1, pad);
            // Many exact zeros (as after a ReLU) make ties; the gradient must go to the first maximum, as on cpu.
            const input = randomInput(shape, (seed += 2), 0.5);
            const dy = randomInput(info.outShape, seed + 1);
            const output = await runOn("cpu", "MaxPool", { x: input }, { filterSize, strides: stride, pad });
            const attrs = { filterSize, strides: stride, pad };
            const label = `maxPoolGrad ${JSON.stringify({ shape, filterSize, stride, pad })}`;
            await expectSameAsCpu(label, "MaxPoolGrad", { dy, input, output: { shape: output.shape, values: output.values } }, attrs);
          }
        }
      }
    }
  }
});

test("Sum and BatchMatMul (transposed operands) on wasm match cpu", async () => {
  const x = randomInput([7, 5, 6, 3], 41);
  const x4 = randomInput([7, 5, 6, 8], 46);
  for (const axis of [[0], [0, 1], [0, 1, 2]]) await expectSameAsCpu(`sum simd ${axis}`, "Sum", { x: x4 }, { axis, keepDims: false });
  for (const axis of [[0], [0, 1], [0, 1, 2], [1, 2], [3], [0, 3]]) {
    for (const keepDims of [false, true]) await expectSameAsCpu(`sum ${axis} ${keepDims}`, "Sum", { x }, { axis, keepDims });
  }
  for (const [transposeA, transposeB] of [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ]) {
    const a = randomInput(transposeA ? [2, 6, 7] : [2, 7, 6], 42);
    const b = randomInput(transposeB ? [2, 5, 6] : [2, 6, 5], 43);
    await expectSameAsCpu(`matMul ${transposeA} ${transposeB}`, "BatchMatMul", { a, b }, { transposeA, transposeB });
    const a2 = randomInput(transposeA ? [6, 7] : [7, 6], 44);
    const b2 = randomInput(transposeB ? [5, 6] : [6, 5], 45);
    await expectSameAsCpu(`matMul 2d ${transposeA} ${transposeB}`, "BatchMatMul", { a: a2, b: b2 }, { transposeA, transposeB });
  }
  // A·Bᵀ with a large B (a dense layer's input gradient) goes through (B·Aᵀ)ᵀ.
  const dy = randomInput([6, 12], 47);
  const kernel = randomInput([40, 12], 48);
  await expectSameAsCpu("matMul dy·Wᵀ", "BatchMatMul", { a: dy, b: kernel }, { transposeA: false, transposeB: true });
});

// Shapes for gemm.ts's relaxed-SIMD product: output columns in 8s (else XNNPACK), rows not a multiple of the 6-row
// tile, k past one block of 512 (C accumulates across blocks), batched.
const PRODUCTS: { a: Shape; b: Shape }[] = [];
for (const m of [1, 5, 6, 13]) for (const k of [1, 7, 700]) for (const n of [8, 24]) PRODUCTS.push({ a: [m, k], b: [k, n] });
PRODUCTS.push({ a: [3, 7, 9], b: [3, 9, 16] }, { a: [1, 64, 160], b: [1, 160, 128] });

async function expectProductsSameAsCpu(label: string) {
  let seed = 2000;
  for (const { a, b } of PRODUCTS) {
    const inputs = { a: randomInput(a, (seed += 2)), b: randomInput(b, seed + 1) };
    await expectSameAsCpu(`${label} matMul ${JSON.stringify(a)}·${JSON.stringify(b)}`, "BatchMatMul", inputs, { transposeA: false, transposeB: false });
  }
  const a = randomInput([2, 9, 13], 2100);
  const b = randomInput([2, 16, 9], 2101);
  await expectSameAsCpu(`${label} matMul transposed`, "BatchMatMul", { a, b }, { transposeA: true, transposeB: true });
}

// Convolutions for gemm.ts's in-place product (valid, ≥ 32 floats per filter row, output channels in 8s) and
// their neighbours that stay on XNNPACK (padding, few channels, odd output channels).
async function expectConvolutionsSameAsCpu(label: string) {
  let seed = 2200;
  for (const [inChannels, outChannels] of [
    [16, 8],
    [32, 16],
    [5, 8],
    [16, 12],
  ]) {
    for (const stride of [1, 2]) {
      for (const pad of PADS) {
        for (const [h, w] of SIZES) {
          const x = randomInput([2, h, w, inChannels], (seed += 2));
          const filter = randomInput([3, 2, inChannels, outChannels], seed + 1);
          const attrs = { strides: stride, pad, dataFormat: "NHWC", dilations: 1 };
          await expectSameAsCpu(`${label} conv2d ${JSON.stringify({ inChannels, outChannels, stride, pad, h, w })}`, "Conv2D", { x, filter }, attrs);
        }
      }
    }
  }
  const conv2 = { x: randomInput([3, 13, 13, 32], 2300), filter: randomInput([3, 3, 32, 64], 2301) };
  await expectSameAsCpu(`${label} conv2d paper conv2`, "Conv2D", conv2, { strides: 1, pad: "valid", dataFormat: "NHWC", dilations: 1 });
}

test("BatchMatMul on 2 and 3 threads (C's rows split, or its 8-column panels where it has fewer rows than columns) gives one thread's bits", async () => {
  const products: { a: Shape; b: Shape; transposeB?: boolean }[] = [
    { a: [64, 1600], b: [1600, 128] }, // the paper CNN's dense layer: panels, k past one block of 512
    { a: [13, 700], b: [700, 200] }, // panels: rows not in whole tiles, an odd number of panels
    { a: [3, 10, 300], b: [3, 300, 400] }, // panels, batched: each product's B packed by the threads
    { a: [1600, 64], b: [64, 128] }, // rows
    // A·Bᵀ, panels packed from B as it lies (one thread: (B·Aᵀ)ᵀ): the dense layer's input gradient, odd sizes
    { a: [64, 128], b: [1600, 128], transposeB: true },
    { a: [16, 203], b: [808, 203], transposeB: true },
    { a: [40, 2000], b: [64, 2000], transposeB: true }, // k past one block of 512
    { a: [56, 300], b: [64, 300], transposeB: true }, // one thread: B transposed, then A·B
  ];
  const threads = kernelThreads();
  try {
    for (const [i, { a, b, transposeB }] of products.entries()) {
      const inputs = { a: randomInput(a, 2400 + i), b: randomInput(b, 2450 + i) };
      const attrs = { transposeA: false, transposeB: transposeB ?? false };
      setKernelThreads(1);
      const one = await runOn("wasm", "BatchMatMul", inputs, attrs);
      for (const n of [2, 3]) {
        setKernelThreads(n);
        const jobs = threadedProducts();
        const threaded = await runOn("wasm", "BatchMatMul", inputs, attrs);
        assert.ok(threadedProducts() > jobs, `${a.join("×")}·${b.join("×")}: ${n} threads ran nothing on the pool`);
        assert.deepEqual(threaded.values, one.values, `${a.join("×")}·${b.join("×")}: ${n} threads give one thread's bits`);
      }
    }
  } finally {
    setKernelThreads(threads);
  }
});

test("relaxed-SIMD products on wasm (BatchMatMul, Conv2D) match cpu; so do the XNNPACK paths without them", async () => {
  await tf.setBackend("wasm");
  assert.ok(hasRelaxedGemm(tf.backend() as never), "relaxed SIMD compiles in this Node");
  await expectProductsSameAsCpu("relaxed");
  await expectConvolutionsSameAsCpu("relaxed");
  enableRelaxedGemm(false);
  try {
    await expectProductsSameAsCpu("xnnpack");
    await expectConvolutionsSameAsCpu("xnnpack");
  } finally {
    enableRelaxedGemm(true);
  }
});

test("without the SIMD loops, the fallback paths match cpu too", async () => {
  enableSimdLoops(false);
  try {
    let seed = 1500;
    for (const c of GRID.filter((_, i) => i % 3 === 0)) {
      const { x, dy, filterShape } = convCase(c, (seed += 3));
      await expectSameAsCpu(
        `dW no-simd ${JSON.stringify(c)}`,
        "Conv2DBackpropFilter",
        { x, dy },
        { strides: c.stride, pad: c.pad, dataFormat: "NHWC", filterShape },
      );
    }
    for (const c of GRID.filter((_, i) => i % 3 === 1)) {
      const { filter, dy } = convCase(c, (seed += 3));
      const attrs = { strides: c.stride, pad: c.pad, dataFormat: "NHWC", inputShape: [c.batch, c.size[0], c.size[1], c.inChannels] };
      await expectSameAsCpu(`dx no-simd ${JSON.stringify(c)}`, "Conv2DBackpropInput", { dy, filter }, attrs);
    }
    const input = randomInput([3, 8, 6, 4], 1600, 0.5);
    const output = await runOn("cpu", "MaxPool", { x: input }, { filterSize: 2, strides: 2, pad: "valid" });
    const dy = randomInput(output.shape, 1601);
    await expectSameAsCpu("maxPoolGrad no-simd", "MaxPoolGrad", { dy, input, output }, { filterSize: 2, strides: 2, pad: "valid" });
    await expectSameAsCpu("sum no-simd", "Sum", { x: randomInput([7, 5, 8], 1602) }, { axis: [0, 1], keepDims: false });
  } finally {
    enableSimdLoops(true);
  }
});

test("Identity and same-dtype Cast on wasm share memory safely; other casts still convert", async () => {
  await tf.setBackend("wasm");
  const a = tf.tensor([1.5, 2, -3]);
  const b = tf.engine().runKernel("Identity", { x: a }, {}) as tf.Tensor;
  const c = tf.engine().runKernel("Cast", { x: a }, { dtype: "float32" }) as tf.Tensor;
  b.dispose();
  c.dispose();
  assert.deepEqual(Array.from(a.dataSync()), [1.5, 2, -3]);
  const d = tf.engine().runKernel("Cast", { x: a }, { dtype: "int32" }) as tf.Tensor;
  assert.equal(d.dtype, "int32");
  assert.deepEqual(Array.from(d.dataSync()), [1, 2, -3]);
  tf.dispose([a, d]);
});

test("wasm gradient kernels reject attributes they do not implement, naming them", async () => {
  await tf.setBackend("wasm");
  const x = tf.zeros([1, 5, 5, 2]);
  const dy = tf.zeros([1, 3, 3, 4]);
  assert.throws(
    () => tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, { strides: 1, pad: "valid", dataFormat: "NHWC", filterShape: [3, 3, 2, 4], dilations: 2 }),
    /Conv2DBackpropFilter on wasm: dilations 2 are not supported; expected 1/,
  );
  assert.throws(
    () => tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, { strides: 1, pad: "valid", dataFormat: "NCHW", filterShape: [3, 3, 2, 4] }),
    /dataFormat "NCHW" is not supported; expected "NHWC"/,
  );
  tf.dispose([x, dy]);
});

let momentumRun = 0;
/** Weights after a few updates of variables of odd and SIMD-friendly sizes by one optimizer, on one backend. */
/**
 * Weights after a few updates of variables of odd and SIMD-friendly sizes by one optimizer, on one backend; `masked`: each
 * variable held at zero where a mask says so (FusedMomentumOptimizer: in its update; others: tf.mul after each step).
 */
async function momentumWeights(backend: string, makeOptimizer: () => tf.Optimizer, masked = false): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const shapes = [[3, 5], [7], [2, 3, 3, 4]];
  const run = momentumRun++;
  const vars = shapes.map((shape, i) => tf.variable(tf.tensor(randomInput(shape, 10 + i).values, shape), true, `momentum-test-${run}-${i}`));
  const masks = new Map(
    vars.map((v, i) => [
      v.name,
      tf.tensor(
        randomInput(shapes[i], 50 + i).values.map((x) => (x < 0 ? 0 : 1)),
        shapes[i],
      ),
    ]),
  );
  const optimizer = makeOptimizer();
  const inUpdate = masked && optimizer instanceof FusedMomentumOptimizer;
  if (inUpdate) optimizer.holdAtZero(masks);
  for (let step = 0; step < 4; step++) {
    const grads: tf.NamedTensorMap = {};
    vars.forEach((v, i) => (grads[v.name] = tf.tensor(randomInput(shapes[i], 100 * step + i).values, shapes[i])));
    optimizer.applyGradients(grads);
    tf.dispose(Object.values(grads));
    if (masked && !inUpdate) tf.tidy(() => vars.forEach((v) => v.assign(tf.mul(v, masks.get(v.name)!))));
  }
  const weights = vars.map((v) => v.dataSync() as Float32Array);
  optimizer.dispose();
  tf.dispose([...vars, ...masks.values()]);
  return weights;
}

for (const masked of [false, true]) {
  const what = masked ? ", masked in the update as tf.mul masks after it" : "";
  test(`FusedMomentumOptimizer gives tf.train.momentum's weights bit for bit${what}: fused kernel (SIMD and plain) and tf-op fallback`, async () => {
    const reference = await momentumWeights("cpu", () => tf.train.momentum(0.05, 0.9), masked);
    const candidates: Record<string, Float32Array[]> = {
      "wasm tf.train.momentum": await momentumWeights("wasm", () => tf.train.momentum(0.05, 0.9), masked),
      "wasm fused SIMD": await momentumWeights("wasm", () => new FusedMomentumOptimizer(0.05, 0.9), masked),
      "cpu fallback ops": await momentumWeights("cpu", () => new FusedMomentumOptimizer(0.05, 0.9), masked),
    };
    enableSimdLoops(false);
    try {
      candidates["wasm fused plain"] = await momentumWeights("wasm", () => new FusedMomentumOptimizer(0.05, 0.9), masked);
    } finally {
      enableSimdLoops(true);
    }
    for (const [label, weights] of Object.entries(candidates)) {
      weights.forEach((w, i) => assert.deepEqual(Array.from(w), Array.from(reference[i]), `${label}: variable ${i}`));
    }
    assert.notDeepEqual(Array.from(reference[0]), Array.from(randomInput([3, 5], 10).values), "the updates moved the weights");
    const zeros = reference.reduce((n, w) => n + w.filter((v) => v === 0).length, 0);
    assert.ok(masked ? zeros > 10 : zeros === 0, `${zeros} weights are zero`);
  });
}

test("Slice: a run of the input copied within the heap (float32, int32, bool; empty; after the heap grew), others by tfjs's kernel, all exactly as cpu", async () => {
  const cases: { shape: number[]; begin: number[]; size: number[] }[] = [
    { shape: [10, 4, 3], begin: [2, 0, 0], size: [5, -1, -1] }, // whole examples: one run
    { shape: [10, 4, 3], begin: [3, 1, 0], size: [1, 2, 3] }, // rows of one example: one run
    { shape: [10, 4, 3], begin: [0, 1, 1], size: [4, 2, 2] }, // a window: many runs (tfjs's kernel)
    { shape: [10, 4, 3], begin: [9, 0, 0], size: [0, 4, 3] }, // empty
    { shape: [7], begin: [6], size: [1] },
  ];
  for (const dtype of ["float32", "int32", "bool"] as const) {
    for (const c of cases) {
      const values = Array.from({ length: c.shape.reduce((a, b) => a * b, 1) }, (_, i) =>
        dtype === "bool" ? i % 3 === 0 : dtype === "int32" ? i * 7 - 50 : i * 0.37 - 4,
      );
      const results: { shape: number[]; values: number[] }[] = [];
      for (const backend of ["cpu", "wasm"]) {
        await tf.setBackend(backend);
        const x = tf.tensor(values as number[], c.shape, dtype);
        if (backend === "wasm") tf.dispose(tf.zeros([4 << 20])); // allocated and freed before: the slice's output may land anywhere
        const out = tf.slice(x, c.begin, c.size);
        results.push({ shape: out.shape, values: Array.from(out.dataSync()) });
        tf.dispose([x, out]);
      }
      assert.deepEqual(results[1], results[0], `${dtype} ${JSON.stringify(c)}`);
    }
  }
  // A large run: a batch of a 10,000-example set, copied within the heap rather than read out whole.
  await tf.setBackend("wasm");
  const set = tf.tensor2d(
    Float32Array.from({ length: 10_000 * 784 }, (_, i) => (i % 1013) / 7),
    [10_000, 784],
  );
  const batch = tf.slice(set, [5_000, 0], [1_000, 784]);
  const expected = Float32Array.from({ length: 1_000 * 784 }, (_, i) => ((i + 5_000 * 784) % 1013) / 7);
  assert.deepEqual(batch.dataSync(), expected);
  tf.dispose([set, batch]);
});

test("filledTensor: the values its fill writes (on wasm, in the tensor's own heap memory), alike on cpu; a failing fill leaves nothing", async () => {
  const fill = (values: Float32Array) => values.forEach((_, i) => (values[i] = i * 0.25 - 3));
  for (const backend of ["cpu", "wasm"]) {
    await tf.setBackend(backend);
    const before = { tensors: tf.memory().numTensors, data: tf.backend().numDataIds() };
    const big = tf.zeros([4 << 20]); // the heap grown and freed before: the output may land anywhere
    big.dispose();
    const t = tf.tidy(() => filledTensor([3, 5, 2], fill));
    assert.deepEqual(t.shape, [3, 5, 2], backend);
    assert.deepEqual(
      t.dataSync(),
      Float32Array.from({ length: 30 }, (_, i) => i * 0.25 - 3),
      backend,
    );
    const empty = filledTensor([0, 4], fill);
    assert.deepEqual(empty.shape, [0, 4], `${backend}: empty`);
    assert.throws(
      () =>
        filledTensor([8], () => {
          throw new Error("fill failed");
        }),
      /fill failed/,
    );
    tf.dispose([t, empty]);
    assert.equal(tf.memory().numTensors, before.tensors, `${backend}: nothing left`);
    assert.equal(tf.backend().numDataIds(), before.data, `${backend}: the failed fill's memory freed`);
  }
});
