import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { registerWasmKernels } from "../src/kernels";
import { enableSimdLoops } from "../src/kernels/simd";
import { mulberry32 } from "../src/random";

// The depthwise convolution's gradient kernels fwprune adds to wasm, and the other gradients the zoo models need
// (average pooling, batch norm, relu6/sigmoid/tanh), match the cpu backend within 1e-4 relative error; the
// depthwise ones also match finite differences of wasm's own forward convolution.
registerWasmKernels();

type Pad = "valid" | "same" | tf.backend_util.ExplicitPadding;

function randomValues(shape: number[], seed: number): Float32Array {
  const rand = mulberry32(seed);
  return new Float32Array(shape.reduce((a, b) => a * b, 1)).map(() => 2 * rand() - 1);
}

function relativeError(expected: ArrayLike<number>, actual: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length);
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < expected.length; i++) {
    scale = Math.max(scale, Math.abs(expected[i]));
    diff = Math.max(diff, Math.abs(expected[i] - actual[i]));
  }
  return diff / Math.max(scale, 1e-12);
}

/** Run `f` on a backend over fresh tensors of `inputs`; returns the values of what it gives back. */
async function on(backend: string, inputs: Record<string, { shape: number[]; values: Float32Array }>, f: (t: Record<string, tf.Tensor>) => tf.Tensor[]) {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const tensors: Record<string, tf.Tensor> = {};
    for (const [name, input] of Object.entries(inputs)) tensors[name] = tf.tensor(input.values, input.shape);
    return f(tensors).map((t) => ({ shape: t.shape, values: t.dataSync() as Float32Array }));
  });
}

async function expectSameOnWasmAndCpu(label: string, inputs: Parameters<typeof on>[1], f: Parameters<typeof on>[2]) {
  const cpu = await on("cpu", inputs, f);
  const wasm = await on("wasm", inputs, f);
  for (let i = 0; i < cpu.length; i++) {
    assert.deepEqual(wasm[i].shape, cpu[i].shape, `${label} #${i}: shape`);
    const rel = relativeError(cpu[i].values, wasm[i].values);
    assert.ok(rel <= 1e-4, `${label} #${i}: relative error ${rel.toExponential(2)}`);
  }
}

interface DepthwiseCase {
  batch: number;
  size: [number, number];
  channels: number;
  multiplier: number;
  kernel: [number, number];
  stride: number | [number, number];
  pad: Pad;
}

function depthwiseInputs(c: DepthwiseCase, seed: number) {
  const xShape = [c.batch, c.size[0], c.size[1], c.channels];
  const filterShape = [c.kernel[0], c.kernel[1], c.channels, c.multiplier];
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    c.stride,
    1,
    c.pad,
    undefined,
    true,
  );
  return {
    x: { shape: xShape, values: randomValues(xShape, seed) },
    filter: { shape: filterShape, values: randomValues(filterShape, seed + 1) },
    dy: { shape: info.outShape, values: randomValues(info.outShape, seed + 2) },
  };
}

const CASES: DepthwiseCase[] = [];
for (const pad of ["valid", "same"] as const) {
  for (const stride of [1, 2, [2, 3]] as (number | [number, number])[]) {
    for (const multiplier of [1, 3]) {
      for (const kernel of [
        [3, 3],
        [2, 5],
        [1, 1],
      ] as [number, number][]) {
        CASES.push({ batch: 3, size: [9, 8], channels: 5, multiplier, kernel, stride, pad });
      }
    }
    // Multiplier 1 and channels in fours: the SIMD path.
    for (const kernel of [
      [3, 3],
      [2, 5],
      [1, 1],
    ] as [number, number][])
      CASES.push({ batch: 2, size: [9, 8], channels: 8, multiplier: 1, kernel, stride, pad });
  }
}
CASES.push({
  batch: 1,
  size: [7, 7],
  channels: 1,
  multiplier: 2,
  kernel: [3, 3],
  stride: 2,
  pad: [
    [0, 0],
    [1, 2],
    [0, 1],
    [0, 0],
  ],
});
CASES.push({ batch: 2, size: [5, 6], channels: 3, multiplier: 1, kernel: [5, 5], stride: 1, pad: "same" });
// A zoo-sized layer: long sums over batch × positions.
CASES.push({ batch: 16, size: [14, 14], channels: 32, multiplier: 1, kernel: [3, 3], stride: 2, pad: "same" });

test("DepthwiseConv2dNativeBackpropFilter and ...BackpropInput on wasm match cpu (kernel sizes, strides, padding, multiplier)", async () => {
  let seed = 10;
  for (const c of CASES) {
    const inputs = depthwiseInputs(c, (seed += 3));
    const filterShape = inputs.filter.shape as [number, number, number, number];
    const xShape = inputs.x.shape as [number, number, number, number];
    await expectSameOnWasmAndCpu(`dW ${JSON.stringify(c)}`, inputs, (t) => [
      tf
        .engine()
        .runKernel(tf.DepthwiseConv2dNativeBackpropFilter, { x: t.x, dy: t.dy }, { strides: c.stride, pad: c.pad, dilations: 1, filterShape }) as tf.Tensor,
    ]);
    await expectSameOnWasmAndCpu(`dx ${JSON.stringify(c)}`, inputs, (t) => [
      tf
        .engine()
        .runKernel(
          tf.DepthwiseConv2dNativeBackpropInput,
          { dy: t.dy, filter: t.filter },
          { strides: c.stride, pad: c.pad, dilations: 1, inputShape: xShape },
        ) as tf.Tensor,
    ]);
  }
});

test("without the SIMD loops, the depthwise gradients on wasm still match cpu", async () => {
  enableSimdLoops(false);
  try {
    const c = CASES[CASES.length - 1];
    const inputs = depthwiseInputs(c, 5);
    const attrs = { strides: c.stride, pad: c.pad, dilations: 1 };
    await expectSameOnWasmAndCpu("dW and dx, plain", inputs, (t) => [
      tf.engine().runKernel(tf.DepthwiseConv2dNativeBackpropFilter, { x: t.x, dy: t.dy }, { ...attrs, filterShape: inputs.filter.shape }) as tf.Tensor,
      tf.engine().runKernel(tf.DepthwiseConv2dNativeBackpropInput, { dy: t.dy, filter: t.filter }, { ...attrs, inputShape: inputs.x.shape }) as tf.Tensor,
    ]);
  } finally {
    enableSimdLoops(true);
  }
});

test("the depthwise gradients on wasm match central finite differences of wasm's forward depthwise convolution", async () => {
  await tf.setBackend("wasm");
  for (const c of [CASES[7], CASES[CASES.length - 3], CASES[CASES.length - 1]]) {
    const inputs = depthwiseInputs(c, 77);
    const r = tf.tensor(inputs.dy.values, inputs.dy.shape);
    const x = tf.tensor4d(inputs.x.values, inputs.x.shape as [number, number, number, number]);
    const filter = tf.tensor4d(inputs.filter.values, inputs.filter.shape as [number, number, number, number]);
    // L = Σ r ⊙ depthwiseConv2d(x, W) is linear in x and in W, so central differences are exact up to float32 rounding.
    const loss = (xv: tf.Tensor4D, wv: tf.Tensor4D): tf.Scalar => tf.sum(tf.mul(r, tf.depthwiseConv2d(xv, wv, c.stride, c.pad)));
    const [gx, gw] = tf
      .grads((xv, wv) => loss(xv as tf.Tensor4D, wv as tf.Tensor4D))([x, filter])
      .map((g) => g.dataSync());
    const fd = (values: Float32Array, shape: number[], i: number, lossAt: (t: tf.Tensor4D) => tf.Scalar) => {
      const h = 0.5;
      const at = (delta: number) => {
        const moved = values.slice();
        moved[i] += delta;
        return tf.tidy(() => lossAt(tf.tensor4d(moved, shape as [number, number, number, number])).dataSync()[0]);
      };
      return (at(h) - at(-h)) / (2 * h);
    };
    const check = (label: string, grad: ArrayLike<number>, values: Float32Array, shape: number[], lossAt: (t: tf.Tensor4D) => tf.Scalar) => {
      const step = Math.max(1, Math.floor(values.length / 60));
      for (let i = 0; i < values.length; i += step) {
        const numeric = fd(values, shape, i, lossAt);
        assert.ok(Math.abs(grad[i] - numeric) <= 1e-3 + 1e-3 * Math.abs(numeric), `${label}[${i}]: kernel ${grad[i]}, finite differences ${numeric}`);
      }
    };
    check(`dW ${JSON.stringify(c)}`, gw, inputs.filter.values, inputs.filter.shape, (w) => loss(x, w));
    check(`dx ${JSON.stringify(c)}`, gx, inputs.x.values, inputs.x.shape, (xv) => loss(xv, filter));
    tf.dispose([r, x, filter]);
  }
});

test("the depthwise gradient kernels on wasm refuse dilations other than 1 and mismatched shapes, naming them", async () => {
  await tf.setBackend("wasm");
  const x = tf.zeros([1, 6, 6, 2]);
  const dy = tf.zeros([1, 2, 2, 2]);
  const filter = tf.zeros([3, 3, 2, 1]);
  const attrs = { strides: 1, pad: "valid", dilations: 2 };
  assert.throws(
    () => tf.engine().runKernel(tf.DepthwiseConv2dNativeBackpropFilter, { x, dy }, { ...attrs, filterShape: [3, 3, 2, 1] }),
    /DepthwiseConv2dNativeBackpropFilter on wasm: dilations 2 are not supported; expected 1/,
  );
  assert.throws(
    () => tf.engine().runKernel(tf.DepthwiseConv2dNativeBackpropInput, { dy, filter }, { ...attrs, inputShape: [1, 6, 6, 2] }),
    /DepthwiseConv2dNativeBackpropInput on wasm: dilations 2 are not supported; expected 1/,
  );
  assert.throws(
    () => tf.engine().runKernel(tf.DepthwiseConv2dNativeBackpropInput, { dy, filter }, { strides: 1, pad: "valid", inputShape: [1, 6, 6, 3] }),
    /input shape \[1,6,6,3\] and filter shape \[3,3,2,1\] do not fit/,
  );
  tf.dispose([x, dy, filter]);
});

test("AvgPoolGrad on wasm matches cpu (window, stride, padding, odd sizes)", async () => {
  let seed = 900;
  for (const pad of ["valid", "same"] as const) {
    for (const [window, stride] of [
      [2, 2],
      [3, 2],
      [3, 1],
      [2, 3],
    ]) {
      const xShape = [3, 9, 7, 5];
      const info = tf.backend_util.computePool2DInfo(xShape as [number, number, number, number], window, stride, 1, pad);
      const inputs = {
        x: { shape: xShape, values: randomValues(xShape, (seed += 2)) },
        dy: { shape: info.outShape, values: randomValues(info.outShape, seed + 1) },
      };
      await expectSameOnWasmAndCpu(`avgPool grad ${pad} w${window} s${stride}`, inputs, (t) => [
        tf.grad((x: tf.Tensor) => tf.sum(tf.mul(t.dy, tf.avgPool(x as tf.Tensor4D, window, stride, pad))))(t.x),
      ]);
    }
  }
});

test("batch norm in training mode (tf.moments + tf.batchNorm) and relu6, sigmoid, tanh: wasm's gradients match cpu", async () => {
  const shape = [6, 5, 4, 3];
  const inputs = {
    x: { shape, values: randomValues(shape, 1).map((v) => 4 * v) },
    gamma: { shape: [3], values: randomValues([3], 2) },
    beta: { shape: [3], values: randomValues([3], 3) },
    r: { shape, values: randomValues(shape, 4) },
  };
  const loss = (t: Record<string, tf.Tensor>, activation: (h: tf.Tensor) => tf.Tensor) => (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => {
    const { mean, variance } = tf.moments(x, [0, 1, 2]);
    const y = tf.batchNorm(x, mean, variance, beta, gamma, 1e-3);
    return tf.sum(tf.mul(t.r, activation(tf.mul(y, 3))));
  };
  const activations: Record<string, (h: tf.Tensor) => tf.Tensor> = { relu6: tf.relu6, sigmoid: tf.sigmoid, tanh: tf.tanh, relu: tf.relu };
  for (const [name, activation] of Object.entries(activations)) {
    await expectSameOnWasmAndCpu(`batch norm + ${name}`, inputs, (t) => {
      const { value, grads } = tf.valueAndGrads(loss(t, activation))([t.x, t.gamma, t.beta]);
      return [value, ...grads];
    });
  }
});

test("Tile (float32 and int32, any reps) and Mean over leading axes on wasm match cpu", async () => {
  const cases: [number[], number[]][] = [
    [
      [1, 1, 1, 5],
      [3, 4, 2, 1],
    ],
    [
      [2, 3],
      [2, 3],
    ],
    [
      [3, 1, 2],
      [1, 4, 3],
    ],
    [[7], [3]],
    [
      [2, 2, 3, 4],
      [1, 1, 1, 1],
    ],
  ];
  for (const [shape, reps] of cases) {
    const inputs = { x: { shape, values: randomValues(shape, shape.length) } };
    await expectSameOnWasmAndCpu(`tile ${shape} × ${reps}`, inputs, (t) => [tf.tile(t.x, reps), tf.tile(tf.cast(tf.mul(t.x, 100), "int32"), reps)]);
  }
  const shape = [4, 5, 3, 6];
  const inputs = { x: { shape, values: randomValues(shape, 5) } };
  await expectSameOnWasmAndCpu("mean", inputs, (t) => [
    tf.mean(t.x, [0, 1, 2]),
    tf.mean(t.x, [0, 1], true),
    tf.mean(t.x, 0),
    tf.mean(t.x, [1, 2]),
    tf.mean(t.x),
    tf.mean(tf.slice(t.x, 0, [4, 5, 3, 5]), [0, 1, 2]),
  ]);
});

test("Multiply, Add, Sub, RealDiv on wasm give cpu's bits: one shape, a channel vector or a number on either side; and FusedBatchNorm matches cpu", async () => {
  const full = [3, 5, 2, 8];
  // [3, 5, 2, 1] broadcasts otherwise: wasm's own kernel.
  const others = [full, [8], [1, 1, 1, 8], [1], [], [3, 5, 2, 1]];
  const ops = { mul: tf.mul, add: tf.add, sub: tf.sub, div: tf.div };
  for (const other of others) {
    const inputs = { a: { shape: full, values: randomValues(full, 11) }, b: { shape: other, values: randomValues(other, 12).map((v) => v + 2) } };
    for (const [name, op] of Object.entries(ops)) {
      const cpu = await on("cpu", inputs, (t) => [op(t.a, t.b), op(t.b, t.a)]);
      const wasm = await on("wasm", inputs, (t) => [op(t.a, t.b), op(t.b, t.a)]);
      for (let i = 0; i < 2; i++) {
        assert.deepEqual(wasm[i].shape, cpu[i].shape);
        assert.deepEqual(Array.from(wasm[i].values), Array.from(cpu[i].values), `${name} ${full} with ${JSON.stringify(other)} #${i}`);
      }
    }
  }
  for (const channels of [8, 5]) {
    const shape = [4, 3, 5, channels];
    const inputs = {
      x: { shape, values: randomValues(shape, 21) },
      mean: { shape: [channels], values: randomValues([channels], 22) },
      variance: { shape: [channels], values: randomValues([channels], 23).map((v) => v + 1.5) },
      offset: { shape: [channels], values: randomValues([channels], 24) },
      scale: { shape: [channels], values: randomValues([channels], 25) },
    };
    await expectSameOnWasmAndCpu(`batchNorm c${channels}`, inputs, (t) => [
      tf.batchNorm(t.x, t.mean, t.variance, t.offset, t.scale, 1e-3),
      tf.batchNorm(t.x, t.mean, t.variance, undefined, undefined, 0.1),
    ]);
  }
});
