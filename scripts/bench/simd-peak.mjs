// The ceilings behind the zoo models' speed (README § Speed): WebAssembly SIMD's arithmetic peak on one core and on
// two at once, fwprune's own matrix product at a large square size on one thread and on two, a native BLAS's (NumPy's OpenBLAS, when a python3 with NumPy
// is found) and the multiply-adds of a training step of each zoo model, so that samples/s read as GFLOP/s.
// Run after `npm run build`: node scripts/bench/simd-peak.mjs   (PYTHON=path picks the python3; default /usr/bin/python3)
import { spawnSync } from "child_process";
import { createRequire } from "module";
import { performance } from "perf_hooks";
import { setFlagsFromString } from "v8";
import fw from "../../dist/index.js";
import { zooModel, ZOO_MODELS } from "../../dist/zoo.js";
import { graphFromLayersTopology } from "../../dist/graph/keras-import.js";
import { kernelFlops } from "../../dist/graph/graph.js";

// The CommonJS tfjs that dist uses (an ES import would load a second copy with its own backends).
const tf = createRequire(import.meta.url)("@tensorflow/tfjs");

// scripts/bench/simd-peak.wat, compiled (see its first lines).
const PEAK_WASM =
  "AGFzbQEAAAABBgFgAX8BfQMDAgAABxACA2ZtYQAABm11bGFkZAABCqsDAsQBAQx7Q+//fz/9EyEBQ703hjX9EyECA0AgAyABIAL9hQIhAyAEIAEgAv2FAiEEIAUgASAC/YUCIQUgBiABIAL9hQIhBiAHIAEgAv2FAiEHIAggASAC/YUCIQggCSABIAL9hQIhCSAKIAEgAv2FAiEKIAsgASAC/YUCIQsgDCABIAL9hQIhDCAAQQFrIQAgAA0ACyADIAT95AEgBf3kASAG/eQBIAf95AEgCP3kASAJ/eQBIAr95AEgC/3kASAM/eQB/R8AC+IBAQx7Q+//fz/9EyEBQ703hjX9EyECA0AgAyACIAH95gH95AEhAyAEIAIgAf3mAf3kASEEIAUgAiAB/eYB/eQBIQUgBiACIAH95gH95AEhBiAHIAIgAf3mAf3kASEHIAggAiAB/eYB/eQBIQggCSACIAH95gH95AEhCSAKIAIgAf3mAf3kASEKIAsgAiAB/eYB/eQBIQsgDCACIAH95gH95AEhDCAAQQFrIQAgAA0ACyADIAT95AEgBf3kASAG/eQBIAf95AEgCP3kASAJ/eQBIAr95AEgC/3kASAM/eQB/R8ACw==";

const best = (times, run) => Math.min(...Array.from({ length: times }, run));
const seconds = (f) => {
  const start = performance.now();
  f();
  return (performance.now() - start) / 1000;
};

setFlagsFromString("--experimental-wasm-relaxed-simd");
const peak = new globalThis.WebAssembly.Instance(new globalThis.WebAssembly.Module(Buffer.from(PEAK_WASM, "base64"))).exports;
const iterations = 2e7;
for (const [name, what] of [
  ["fma", "relaxed fused multiply-add"],
  ["muladd", "multiply, then add"],
]) {
  peak[name](1e6); // optimised before it is timed
  const s = best(3, () => seconds(() => peak[name](iterations)));
  console.log(`WebAssembly SIMD peak, 1 core, ${what}: ${((iterations * 80) / s / 1e9).toFixed(1)} GFLOP/s`);
}

// The fused loop on `threads` worker threads at once (they start together): each thread's GFLOP/s.
async function peakOnThreads(threads) {
  const ready = new Int32Array(new SharedArrayBuffer(4));
  const source = `
    const { parentPort, workerData } = require("worker_threads");
    require("v8").setFlagsFromString("--experimental-wasm-relaxed-simd");
    const peak = new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(workerData.wasm, "base64"))).exports;
    peak.fma(1e6);
    const ready = new Int32Array(workerData.ready);
    Atomics.add(ready, 0, 1);
    while (Atomics.load(ready, 0) < workerData.threads);
    const start = performance.now();
    peak.fma(${iterations});
    parentPort.postMessage(${iterations * 80} / ((performance.now() - start) / 1000) / 1e9);`;
  const { Worker } = await import("worker_threads");
  return Promise.all(
    Array.from({ length: threads }, () => {
      const worker = new Worker(source, { eval: true, workerData: { wasm: PEAK_WASM, ready: ready.buffer, threads } });
      return new Promise((resolve, reject) => worker.once("message", resolve).once("error", reject));
    }),
  );
}
for (const threads of [1, 2]) {
  const rates = [];
  for (let round = 0; round < 3; round++) rates.push((await peakOnThreads(threads)).reduce((x, y) => x + y, 0));
  console.log(`WebAssembly SIMD peak, fused multiply-add, ${threads} thread(s) at once: ${Math.max(...rates).toFixed(1)} GFLOP/s in all`);
}

await fw.initBackend("wasm", { quiet: true });
for (const threads of [1, 2]) {
  fw.setKernelThreads(threads);
  for (const n of [256, 1024]) {
    const [a, b] = [tf.randomUniform([n, n]), tf.randomUniform([n, n])];
    const product = () =>
      tf.tidy(() => {
        tf.matMul(a, b).dataSync();
      });
    product();
    const s = best(5, () => seconds(product));
    console.log(`fwprune matMul ${n}x${n}, ${threads} thread(s): ${((2 * n ** 3) / s / 1e9).toFixed(1)} GFLOP/s`);
  }
}
fw.setKernelThreads(1);

const python = process.env.PYTHON ?? "/usr/bin/python3";
const numpy = spawnSync(
  python,
  [
    "-c",
    "import numpy as np,time\na=np.random.rand(1024,1024).astype(np.float32);a@a\nprint(min(2*1024**3/(lambda t:(a@a,time.perf_counter()-t)[1])(time.perf_counter())/1e9 for _ in range(10)))",
  ],
  { env: { ...process.env, OPENBLAS_NUM_THREADS: "1", OMP_NUM_THREADS: "1" }, encoding: "utf8" },
);
console.log(
  numpy.status === 0
    ? `NumPy (${python}) matmul 1024x1024, 1 thread: ${Number(numpy.stdout).toFixed(1)} GFLOP/s`
    : `NumPy matmul: not measured (${python} with NumPy not found)`,
);

// A training step's products: forward, filter gradient and input gradient of every kernel, but the first layer's
// input gradient (nothing needs it).
await tf.setBackend("cpu");
for (const name of ZOO_MODELS) {
  const kernels = kernelFlops(graphFromLayersTopology(zooModel(name, { seed: 1 }).toJSON(null, false)));
  const macs = 3 * kernels.reduce((n, k) => n + k.multiplyAdds, 0) - kernels[0].multiplyAdds;
  console.log(`${name}: ${((2 * macs) / 1e6).toFixed(2)} MFLOP of products per training sample (N samples/s = N × ${((2 * macs) / 1e9).toFixed(5)} GFLOP/s)`);
}
fw.shutdownKernelThreads?.();
