import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { hasRelaxedGemm, kernelThreads, registerWasmKernels, setKernelThreads } from "../src/kernels";
import { enableFusedInputGrad, fusedInputGradCalls } from "../src/kernels/input-grad";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { firstBitDifference, randomValues } from "./bits";
import { relativeError } from "./logits";

// Conv2DBackpropInput's fused product and scatter (gemm.wat's gemmCol2im) replaces the blocked product followed by
// simd.wat's col2imAdd under frozen numerics: every dx value must keep its bits, and match cpu.
registerWasmKernels();

async function inputGradient(backend: string, dy: tf.Tensor, filter: tf.Tensor, attrs: tf.NamedAttrMap): Promise<Float32Array> {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const [d, f] = [tf.tensor(dy.dataSync(), dy.shape), tf.tensor(filter.dataSync(), filter.shape)];
    return (tf.engine().runKernel("Conv2DBackpropInput", { dy: d, filter: f }, attrs) as tf.Tensor).dataSync() as Float32Array;
  });
}

type Pad = "valid" | "same" | tf.backend_util.ExplicitPadding;
// dx shapes (batch, h, w, ci), filter size, output channels, stride, padding: the residual net's convolutions (16 to
// 64 channels at 28, 14, 7; 1×1 stride-2 projections), odd sizes, pixel counts not a multiple of 6 (the last tile
// shorter), 8 channels, a 5×5 filter, explicit padding wider than the filter's reach on one side.
const CASES: { dx: [number, number, number, number]; k: number; co: number; stride: number; pad: Pad }[] = [
  { dx: [3, 28, 28, 16], k: 3, co: 16, stride: 1, pad: "same" },
  { dx: [2, 28, 28, 16], k: 3, co: 32, stride: 2, pad: "same" },
  { dx: [3, 14, 14, 32], k: 3, co: 32, stride: 1, pad: "same" },
  { dx: [2, 14, 14, 32], k: 3, co: 64, stride: 2, pad: "same" },
  { dx: [3, 7, 7, 64], k: 3, co: 64, stride: 1, pad: "same" },
  { dx: [2, 28, 28, 16], k: 1, co: 32, stride: 2, pad: "same" },
  { dx: [2, 9, 9, 8], k: 3, co: 16, stride: 2, pad: "same" },
  { dx: [1, 11, 9, 8], k: 3, co: 8, stride: 1, pad: "valid" },
  { dx: [2, 10, 11, 24], k: 3, co: 40, stride: 2, pad: "valid" },
  { dx: [1, 9, 7, 8], k: 5, co: 24, stride: 1, pad: "same" },
  {
    dx: [2, 6, 7, 16],
    k: 3,
    co: 8,
    stride: 1,
    pad: [
      [0, 0],
      [2, 0],
      [1, 3],
      [0, 0],
    ],
  },
];

test("Conv2DBackpropInput's fused product and scatter (gemmCol2im) gives the blocked product's and col2im's bits, on 1 to 3 threads, and matches cpu", async (t) => {
  await tf.setBackend("wasm");
  if (!hasRelaxedGemm(tf.backend() as BackendWasm)) {
    t.skip("no relaxed SIMD here: the fused kernel does not run");
    return;
  }
  const threads = kernelThreads();
  setKernelThreads(1);
  try {
    let seed = 40;
    for (const c of CASES) {
      const label = JSON.stringify(c);
      const [dxShape, filterShape] = [c.dx, [c.k, c.k, c.dx[3], c.co] as [number, number, number, number]];
      const info = tf.backend_util.computeConv2DInfo(dxShape, filterShape, c.stride, 1, c.pad as "same");
      const dy = tf.tensor(randomValues(info.outShape, seed++), info.outShape);
      const filter = tf.tensor(randomValues(filterShape, seed++), filterShape);
      const attrs = { strides: c.stride, pad: c.pad, dataFormat: "NHWC", inputShape: dxShape } as unknown as tf.NamedAttrMap;
      const before = fusedInputGradCalls();
      const fused = await inputGradient("wasm", dy, filter, attrs);
      const runs = c.k > 1 ? 1 : 0; // 1×1: the blocked product and col2im (faster there)
      assert.equal(fusedInputGradCalls(), before + runs, `${label}: gemmCol2im ran ${fusedInputGradCalls() - before} times`);
      enableFusedInputGrad(false);
      const blocked = await inputGradient("wasm", dy, filter, attrs);
      enableFusedInputGrad(true);
      assert.equal(fusedInputGradCalls(), before + runs, `${label}: switched off, gemmCol2im still ran`);
      const at = firstBitDifference(fused, blocked);
      assert.equal(at, -1, `${label}: dx[${at}] = ${fused[at]} fused, ${blocked[at]} blocked`);
      for (const threads of [2, 3]) {
        // image by image on the kernel threads (where the product is large enough), fused or not: one thread's bits
        setKernelThreads(threads);
        for (const on of [true, false]) {
          enableFusedInputGrad(on);
          const calls = fusedInputGradCalls();
          const threaded = await inputGradient("wasm", dy, filter, attrs);
          assert.equal(fusedInputGradCalls(), calls + (on ? runs : 0), `${label}, ${threads} threads, fused ${on}: gemmCol2im runs`);
          const at = firstBitDifference(threaded, fused);
          assert.equal(at, -1, `${label}, ${threads} threads, fused ${on}: dx[${at}] = ${threaded[at]}, one thread ${fused[at]}`);
        }
        enableFusedInputGrad(true);
        setKernelThreads(1);
      }
      const cpu = await inputGradient("cpu", dy, filter, attrs);
      const error = relativeError(fused, cpu);
      assert.ok(error <= 1e-5, `${label}: relative error ${error.toExponential(2)} against cpu`);
      tf.dispose([dy, filter]);
    }
  } finally {
    enableFusedInputGrad(true);
    setKernelThreads(threads);
  }
});
