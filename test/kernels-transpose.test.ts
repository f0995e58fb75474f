import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { registerWasmKernels } from "../src/kernels";
import { makeTransposeConfig, swapsLastTwo } from "../src/kernels/transpose";
import { mulberry32 } from "../src/random";

registerWasmKernels();

function values(n: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = 2 * rand() - 1;
  if (n > 3) out.set([-0, NaN, Infinity], 0);
  return out;
}

/** Transpose on a backend: the output's shape and its values' bits. */
async function transposeOn(backend: string, shape: number[], perm: number[], dtype: "float32" | "int32", seed: number) {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const n = shape.reduce((a, b) => a * b, 1);
    const x =
      dtype === "float32"
        ? tf.tensor(values(n, seed), shape)
        : tf.tensor(
            Int32Array.from(values(n, seed), (v) => Math.round(1000 * v) | 0),
            shape,
            "int32",
          );
    const y = tf.engine().runKernel(tf.Transpose, { x }, { perm } as unknown as tf.NamedAttrMap) as tf.Tensor;
    return { shape: y.shape, bits: Array.from(new Uint32Array(Float32Array.from(y.dataSync()).buffer)) };
  });
}

test("Transpose on wasm gives cpu's bits: matrices and batches of them on simd.wat's loop (odd edges included), other permutations and int32 on wasm's own", async () => {
  const cases: [number[], number[], "float32" | "int32"][] = [];
  for (const rows of [1, 3, 4, 5, 8, 13]) for (const cols of [1, 2, 4, 7, 16, 21]) cases.push([[rows, cols], [1, 0], "float32"]);
  cases.push(
    [[1, 128, 10], [0, 2, 1], "float32"],
    [[3, 5, 9], [0, 2, 1], "float32"],
    [[2, 3, 6, 5], [0, 1, 3, 2], "float32"],
    [[128, 1600], [1, 0], "float32"],
    [[0, 5], [1, 0], "float32"],
    [[3, 5, 9], [1, 0, 2], "float32"],
    [[3, 5, 9], [2, 1, 0], "float32"],
    [[5, 7], [1, 0], "int32"],
  );
  let seed = 1;
  for (const [shape, perm, dtype] of cases) {
    const cpu = await transposeOn("cpu", shape, perm, dtype, seed);
    const wasm = await transposeOn("wasm", shape, perm, dtype, seed++);
    assert.deepEqual(wasm.shape, cpu.shape, `${shape} ${perm}: shape`);
    assert.deepEqual(wasm.bits, cpu.bits, `${shape} ${perm} ${dtype}: values`);
  }
});

test("Transpose on wasm: only the last two axes swapped go to the loop, and empty or int32 tensors to wasm's own kernel", async () => {
  assert.ok(swapsLastTwo([1, 0]) && swapsLastTwo([0, 2, 1]) && swapsLastTwo([0, 1, 3, 2]));
  assert.ok(!swapsLastTwo([0]) && !swapsLastTwo([0, 1]) && !swapsLastTwo([1, 0, 2]) && !swapsLastTwo([1, 0, 3, 2]) && !swapsLastTwo([2, 1, 0]));
  await tf.setBackend("wasm");
  const backend = tf.backend() as BackendWasm;
  const own = tf.getKernel(tf.Transpose, "wasm");
  assert.ok(own);
  let calls = 0;
  const counted = makeTransposeConfig({ ...own, kernelFunc: (args) => (calls++, own.kernelFunc(args)) });
  const run = (x: tf.Tensor, perm: number[]) =>
    tf.dispose(tf.engine().makeTensorFromTensorInfo(counted.kernelFunc({ inputs: { x }, backend, attrs: { perm } }) as tf.TensorInfo));
  const m = tf.ones([4, 6]);
  const b = tf.ones([2, 4, 6]);
  run(m, [1, 0]);
  run(b, [0, 2, 1]);
  assert.equal(calls, 0, "the loop's cases");
  run(b, [1, 0, 2]);
  run(tf.ones([4, 6], "int32"), [1, 0]);
  run(tf.ones([0, 6]), [1, 0]);
  assert.equal(calls, 3, "wasm's own cases");
  tf.dispose([m, b]);
});
