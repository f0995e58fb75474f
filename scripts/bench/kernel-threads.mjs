// Each threaded kernel of a paper-CNN training step (batch 64) alone, on one thread and on two, interleaved within one
// process so that a slow minute slows both: the median wall time of each and the gain. tfjs's own Relu is timed beside
// them as the control: it stays on one thread.
// Run after `npm run build`: node scripts/bench/kernel-threads.mjs [rounds]   (default 40; the first 5 warm up)
import { createRequire } from "module";
import { performance } from "perf_hooks";
import fw from "../../dist/index.js";
import threads from "../../dist/kernels/threads.js";

// The CommonJS tfjs that dist uses (an ES import would load a second copy with its own backends).
const tf = createRequire(import.meta.url)("@tensorflow/tfjs");

const rounds = Number(process.argv[2] ?? 40);
fw.setKernelThreads(2);
await fw.initBackend("wasm", { quiet: true });
const random = (shape) => tf.randomUniform(shape);
const [x1, dy1, f1] = [random([64, 28, 28, 1]), random([64, 26, 26, 32]), random([3, 3, 1, 32])];
const [x2, dy2, f2] = [random([64, 13, 13, 32]), random([64, 11, 11, 64]), random([3, 3, 32, 64])];
const [flat, w3, dy3] = [random([64, 1600]), random([1600, 128]), random([64, 128])];
const conv = { strides: 1, pad: "valid", dataFormat: "NHWC" };
const kernels = {
  "conv1 forward": () => tf.conv2d(x1, f1, 1, "valid"),
  "conv1 filter gradient": () => tf.engine().runKernel("Conv2DBackpropFilter", { x: x1, dy: dy1 }, { ...conv, filterShape: [3, 3, 1, 32] }),
  "max pool": () => tf.maxPool(dy1, 2, 2, "valid"),
  "relu (tfjs, control)": () => tf.relu(dy1),
  "conv2 forward": () => tf.conv2d(x2, f2, 1, "valid"),
  "conv2 filter gradient": () => tf.engine().runKernel("Conv2DBackpropFilter", { x: x2, dy: dy2 }, { ...conv, filterShape: [3, 3, 32, 64] }),
  "conv2 input gradient": () => tf.engine().runKernel("Conv2DBackpropInput", { dy: dy2, filter: f2 }, { ...conv, inputShape: [64, 13, 13, 32] }),
  "dense forward": () => tf.matMul(flat, w3),
  "dense filter gradient": () => tf.matMul(flat, dy3, true, false),
};
const times = Object.fromEntries(Object.keys(kernels).map((name) => [name, { 1: [], 2: [] }]));
// Every (threads, kernel) pair once per round, in a new random order each round: what ran just before (on one core or
// two, with which data in cache) shifts a kernel's time, the same for both counts on average.
const pairs = [1, 2].flatMap((n) => Object.keys(kernels).map((name) => [n, name]));
for (let round = 0; round < rounds; round++) {
  for (let i = pairs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [pairs[i], pairs[j]] = [pairs[j], pairs[i]];
  }
  for (const [n, name] of pairs) {
    // One thread: the same process and pool, the kernel kept on this thread (as inside a split batch).
    const start = performance.now();
    const out = n === 1 ? threads.onThisThreadAlone(kernels[name]) : kernels[name]();
    // wasm kernels are synchronous, but a deferred product (the filter gradient's) ends only when its output is
    // disposed (or read): the disposal is timed with the kernel.
    tf.dispose(out);
    const ms = performance.now() - start;
    if (round >= 5) times[name][n].push(ms);
  }
}
const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
for (const [name, t] of Object.entries(times)) {
  const [one, two] = [median(t[1]), median(t[2])];
  console.log(`${name.padEnd(24)} 1 thread ${one.toFixed(2)} ms   2 threads ${two.toFixed(2)} ms   ×${(one / two).toFixed(2)}`);
}
fw.shutdownKernelThreads();
