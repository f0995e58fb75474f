import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { hasRelaxedGemm, kernelThreads, registerWasmKernels, setKernelThreads } from "../src/kernels";
import { blockedPackingCount, enableBlockedPacking, enableTwoRowTiles } from "../src/kernels/gemm";
import { enablePointwiseFilterGradBlocks, pointwiseFilterGradBlockRuns } from "../src/kernels/conv2d-backprop-filter";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { firstBitDifference, randomValues } from "./bits";
import { relativeError } from "./logits";

// Under frozen numerics, relaxedMatMul packing B a block at a time, gemm.wat's 2-row tiles for a 6-row tile's leftover
// rows, and a 1×1 filter's gradient transposing x a block of pixels at a time must give the bits of packing B whole,
// 1-row tiles and transposing x whole, and match cpu.
registerWasmKernels();

async function onBackend(backend: string, kernel: string, inputs: Record<string, tf.Tensor>, attrs: tf.NamedAttrMap): Promise<Float32Array> {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const copies = Object.fromEntries(Object.entries(inputs).map(([name, t]) => [name, tf.tensor(t.dataSync(), t.shape)]));
    return (tf.engine().runKernel(kernel, copies, attrs) as tf.Tensor).dataSync() as Float32Array;
  });
}

async function relaxedGemmHere(t: { skip: (why: string) => void }): Promise<boolean> {
  await tf.setBackend("wasm");
  if (hasRelaxedGemm(tf.backend() as BackendWasm)) return true;
  t.skip("no relaxed SIMD here: the blocked paths do not run");
  return false;
}

// [batch, m, k, n]: the separable net's filter-gradient products (k = batch·h·w), k not a multiple of KC_MAX (512),
// one block and a bit, m not a multiple of 6 (rows1x8), a batch of two.
const PRODUCTS = [
  [1, 32, 50176, 64],
  [1, 64, 12544, 128],
  [1, 128, 3136, 256],
  [1, 7, 1000, 16],
  [1, 13, 513, 8],
  [2, 6, 1537, 24],
  [1, 1, 4096, 8],
];

test("relaxedMatMul packing B block by block gives the bits of packing it whole, and matches cpu", async (t) => {
  if (!(await relaxedGemmHere(t))) return;
  const threads = kernelThreads();
  setKernelThreads(1);
  try {
    let seed = 70;
    for (const [batch, m, k, n] of PRODUCTS) {
      const label = `${batch}×${m}×${k}×${n}`;
      const a = tf.tensor(randomValues([batch, m, k], seed++), [batch, m, k]);
      const b = tf.tensor(randomValues([batch, k, n], seed++), [batch, k, n]);
      const attrs = { transposeA: false, transposeB: false } as unknown as tf.NamedAttrMap;
      const before = blockedPackingCount();
      const blocked = await onBackend("wasm", "BatchMatMul", { a, b }, attrs);
      assert.equal(blockedPackingCount(), before + batch * Math.ceil(k / 512), `${label}: blocks packed`);
      enableBlockedPacking(false);
      const whole = await onBackend("wasm", "BatchMatMul", { a, b }, attrs);
      enableBlockedPacking(true);
      assert.equal(blockedPackingCount(), before + batch * Math.ceil(k / 512), `${label}: switched off, blocks still packed`);
      const at = firstBitDifference(blocked, whole);
      assert.equal(at, -1, `${label}: c[${at}] = ${blocked[at]} blocked, ${whole[at]} whole`);
      const error = relativeError(blocked, await onBackend("cpu", "BatchMatMul", { a, b }, attrs));
      assert.ok(error <= 1e-5, `${label}: relative error ${error.toExponential(2)} against cpu`);
      tf.dispose([a, b]);
    }
  } finally {
    enableBlockedPacking(true);
    setKernelThreads(threads);
  }
});

// [batch, h, w, ci, co]: the separable net's pointwise convolutions, then odd sizes (pixels not a multiple of 512,
// fewer than 512, channels not a multiple of 4 or 6).
const POINTWISE = [
  [64, 28, 28, 32, 64],
  [64, 14, 14, 64, 128],
  [64, 14, 14, 128, 128],
  [64, 7, 7, 128, 256],
  [3, 5, 7, 13, 16],
  [2, 9, 9, 6, 8],
  [1, 40, 40, 3, 24],
  [2, 23, 25, 40, 32],
];

test("a 1×1 filter's gradient with x transposed a block of pixels at a time gives the bits of transposing it whole, on 1 and 2 threads, and matches cpu", async (t) => {
  if (!(await relaxedGemmHere(t))) return;
  const threads = kernelThreads();
  setKernelThreads(1);
  try {
    let seed = 90;
    for (const [batch, h, w, ci, co] of POINTWISE) {
      const label = `${batch}×${h}×${w}×${ci}→${co}`;
      const x = tf.tensor(randomValues([batch, h, w, ci], seed++), [batch, h, w, ci]);
      const dy = tf.tensor(randomValues([batch, h, w, co], seed++), [batch, h, w, co]);
      const attrs = { strides: 1, pad: "valid", dataFormat: "NHWC", filterShape: [1, 1, ci, co] } as unknown as tf.NamedAttrMap;
      const before = pointwiseFilterGradBlockRuns();
      const blocks = await onBackend("wasm", "Conv2DBackpropFilter", { x, dy }, attrs);
      assert.equal(pointwiseFilterGradBlockRuns(), before + 1, `${label}: the blocked path ran`);
      enablePointwiseFilterGradBlocks(false);
      const whole = await onBackend("wasm", "Conv2DBackpropFilter", { x, dy }, attrs);
      enablePointwiseFilterGradBlocks(true);
      assert.equal(pointwiseFilterGradBlockRuns(), before + 1, `${label}: switched off, the blocked path still ran`);
      let at = firstBitDifference(blocks, whole);
      assert.equal(at, -1, `${label}: dW[${at}] = ${blocks[at]} in blocks, ${whole[at]} whole`);
      setKernelThreads(2);
      const threaded = await onBackend("wasm", "Conv2DBackpropFilter", { x, dy }, attrs);
      setKernelThreads(1);
      at = firstBitDifference(threaded, blocks);
      assert.equal(at, -1, `${label}: dW[${at}] = ${threaded[at]} on 2 threads, ${blocks[at]} on one`);
      if (batch * h * w * ci * co < 1e7) {
        // (cpu's kernel takes minutes on the net's shapes: those are checked bit for bit against the old path)
        const error = relativeError(blocks, await onBackend("cpu", "Conv2DBackpropFilter", { x, dy }, attrs));
        assert.ok(error <= 1e-5, `${label}: relative error ${error.toExponential(2)} against cpu`);
      }
      tf.dispose([x, dy]);
    }
  } finally {
    enablePointwiseFilterGradBlocks(true);
    setKernelThreads(threads);
  }
});

test("gemm.wat's 2-row tiles for a 6-row tile's leftover rows give the 1-row tiles' bits, and match cpu", async (t) => {
  if (!(await relaxedGemmHere(t))) return;
  const threads = kernelThreads();
  setKernelThreads(1);
  try {
    let seed = 110;
    // every leftover count (m % 6 = 0..5), short and long k (one and several KC_MAX blocks), one and several panels
    for (const m of [1, 2, 3, 4, 5, 6, 7, 8, 11, 32, 64]) {
      for (const [k, n] of [
        [9, 8],
        [77, 24],
        [1100, 16],
      ]) {
        const label = `${m}×${k}×${n}`;
        const a = tf.tensor(randomValues([1, m, k], seed++), [1, m, k]);
        const b = tf.tensor(randomValues([1, k, n], seed++), [1, k, n]);
        const attrs = { transposeA: false, transposeB: false } as unknown as tf.NamedAttrMap;
        const twoRows = await onBackend("wasm", "BatchMatMul", { a, b }, attrs);
        enableTwoRowTiles(false);
        const oneRow = await onBackend("wasm", "BatchMatMul", { a, b }, attrs);
        enableTwoRowTiles(true);
        const at = firstBitDifference(twoRows, oneRow);
        assert.equal(at, -1, `${label}: c[${at}] = ${twoRows[at]} with 2-row tiles, ${oneRow[at]} with 1-row tiles`);
        const error = relativeError(twoRows, await onBackend("cpu", "BatchMatMul", { a, b }, attrs));
        assert.ok(error <= 1e-5, `${label}: relative error ${error.toExponential(2)} against cpu`);
        tf.dispose([a, b]);
      }
    }
  } finally {
    enableTwoRowTiles(true);
    setKernelThreads(threads);
  }
});
