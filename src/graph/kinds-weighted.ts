import * as tf from "@tensorflow/tfjs-core";
import { batchNormTraining, movingAverage } from "../kernels/batch-norm-train";
import {
  ChannelSlice,
  KindDef,
  activate,
  sameChannels,
  splitActivation,
  kerasActivation,
  kerasBool,
  kerasImageLayout,
  kerasNumber,
  kerasPadding,
  kerasPair,
  kerasPositiveInt,
  paramName,
  product,
  spatialOut,
} from "./kind";

/** The node kinds with parameters: conv2d, depthwise-conv2d, separable-conv2d, batch-norm, dense. */

function convForward(
  x: tf.Tensor,
  filter: tf.Tensor,
  bias: tf.Tensor | undefined,
  strides: [number, number],
  pad: "valid" | "same",
  act: Parameters<typeof activate>[1],
) {
  const { fused, after } = splitActivation(act);
  return activate(tf.fused.conv2d({ x: x as tf.Tensor4D, filter: filter as tf.Tensor4D, bias, strides, pad, activation: fused }), after);
}

/** A kernel whose axis `inAxis` reads the input's channels and whose axis `outAxis` makes the output's. */
function filterSlices(inAxis: number, outAxis: number): ChannelSlice[] {
  return [
    { role: "kernel", axis: inAxis, side: "input", produces: false },
    { role: "kernel", axis: outAxis, side: "output", produces: true },
  ];
}

function biasSlice(useBias: boolean): ChannelSlice[] {
  return useBias ? [{ role: "bias", axis: 0, side: "output", produces: true }] : [];
}

export const conv2d: KindDef<"conv2d"> = {
  kerasClasses: ["Conv2D"],
  inputs: "one",
  outputShape: (c, [x], where) => [...spatialOut(x, c.kernelSize, c.strides, c.padding, where), c.filters],
  params: (c, [x], out) => {
    const [kh, kw] = c.kernelSize;
    const cin = x[2];
    const kernel = { role: "kernel" as const, shape: [kh, kw, cin, c.filters], fanIn: kh * kw * cin, fanOut: kh * kw * c.filters, uses: out[0] * out[1] };
    return c.useBias ? [kernel, { role: "bias" as const, shape: [c.filters] }] : [kernel];
  },
  forward: (n, [x], p) => convForward(x, p("kernel") as tf.Tensor, p("bias"), n.config.strides, n.config.padding, n.config.activation),
  fromKeras: (_cls, k, where) => {
    kerasImageLayout(k, where, true);
    if ((k.groups ?? 1) !== 1) throw new Error(`${where}: groups ${JSON.stringify(k.groups)} is not supported; expected 1`);
    return {
      filters: kerasPositiveInt(k, "filters", where),
      kernelSize: kerasPair(k, "kernel_size", where),
      strides: kerasPair(k, "strides", where, [1, 1]),
      padding: kerasPadding(k, where),
      useBias: kerasBool(k, "use_bias", where, true),
      activation: kerasActivation(k, where),
    };
  },
  toKeras: ({ config: c }) => ({
    filters: c.filters,
    kernel_size: c.kernelSize,
    strides: c.strides,
    padding: c.padding,
    data_format: "channels_last",
    dilation_rate: [1, 1],
    activation: c.activation,
    use_bias: c.useBias,
  }),
  channels: { flow: () => "new", slices: (c) => [...filterSlices(2, 3), ...biasSlice(c.useBias)], narrow: (c, kept) => ({ ...c, filters: kept }) },
};

export const depthwiseConv2d: KindDef<"depthwise-conv2d"> = {
  kerasClasses: ["DepthwiseConv2D"],
  inputs: "one",
  outputShape: (c, [x], where) => [...spatialOut(x, c.kernelSize, c.strides, c.padding, where), x[2] * c.depthMultiplier],
  params: (c, [x], out) => {
    const [kh, kw] = c.kernelSize;
    const m = c.depthMultiplier;
    const kernel = { role: "depthwise-kernel" as const, shape: [kh, kw, x[2], m], fanIn: kh * kw * x[2], fanOut: kh * kw * m, uses: out[0] * out[1] };
    return c.useBias ? [kernel, { role: "bias" as const, shape: [x[2] * m] }] : [kernel];
  },
  forward: ({ config: c }, [x], p) => {
    const { fused, after } = splitActivation(c.activation);
    const y = tf.fused.depthwiseConv2d({
      x: x as tf.Tensor4D,
      filter: p("depthwise-kernel") as tf.Tensor4D,
      bias: p("bias"),
      strides: c.strides,
      pad: c.padding,
      activation: fused,
    });
    return activate(y, after);
  },
  fromKeras: (_cls, k, where) => {
    kerasImageLayout(k, where, true);
    return {
      kernelSize: kerasPair(k, "kernel_size", where),
      strides: kerasPair(k, "strides", where, [1, 1]),
      padding: kerasPadding(k, where),
      depthMultiplier: kerasPositiveInt(k, "depth_multiplier", where, 1),
      useBias: kerasBool(k, "use_bias", where, true),
      activation: kerasActivation(k, where),
    };
  },
  toKeras: ({ config: c }) => ({
    kernel_size: c.kernelSize,
    strides: c.strides,
    padding: c.padding,
    depth_multiplier: c.depthMultiplier,
    data_format: "channels_last",
    dilation_rate: [1, 1],
    activation: c.activation,
    use_bias: c.useBias,
  }),
  channels: {
    // with depth multiplier m, output channel o is input channel ⌊o / m⌋ (tfjs orders them c·m + j)
    flow: (c, [x], _out, link) => {
      for (let o = 0; o < x[2] * c.depthMultiplier; o++) link(0, Math.floor(o / c.depthMultiplier), o);
      return "pass";
    },
    slices: (c) => [{ role: "depthwise-kernel", axis: 2, side: "input", produces: true }, ...biasSlice(c.useBias)],
  },
};

export const separableConv2d: KindDef<"separable-conv2d"> = {
  kerasClasses: ["SeparableConv2D"],
  inputs: "one",
  outputShape: (c, [x], where) => [...spatialOut(x, c.kernelSize, c.strides, c.padding, where), c.filters],
  params: (c, [x], out) => {
    const [kh, kw] = c.kernelSize;
    const mid = x[2] * c.depthMultiplier;
    const positions = out[0] * out[1];
    const decls = [
      {
        role: "depthwise-kernel" as const,
        shape: [kh, kw, x[2], c.depthMultiplier],
        fanIn: kh * kw * x[2],
        fanOut: kh * kw * c.depthMultiplier,
        uses: positions,
      },
      { role: "pointwise-kernel" as const, shape: [1, 1, mid, c.filters], fanIn: mid, fanOut: c.filters, uses: positions },
    ];
    return c.useBias ? [...decls, { role: "bias" as const, shape: [c.filters] }] : decls;
  },
  forward: ({ config: c }, [x], p) => {
    const depthwise = tf.depthwiseConv2d(x as tf.Tensor4D, p("depthwise-kernel") as tf.Tensor4D, c.strides, c.padding);
    return convForward(depthwise, p("pointwise-kernel") as tf.Tensor, p("bias"), [1, 1], "valid", c.activation);
  },
  fromKeras: (cls, k, where) => ({ ...depthwiseConv2d.fromKeras(cls, k, where), filters: kerasPositiveInt(k, "filters", where) }),
  toKeras: ({ config: c }) => ({
    filters: c.filters,
    kernel_size: c.kernelSize,
    strides: c.strides,
    padding: c.padding,
    depth_multiplier: c.depthMultiplier,
    data_format: "channels_last",
    dilation_rate: [1, 1],
    activation: c.activation,
    use_bias: c.useBias,
  }),
  channels: {
    flow: () => "new",
    // the pointwise kernel's rows are the depthwise outputs c·m + j, each reading input channel c
    slices: (c) => [
      { role: "depthwise-kernel", axis: 2, side: "input", produces: false },
      { role: "pointwise-kernel", axis: 2, side: "input", per: c.depthMultiplier, produces: false },
      { role: "pointwise-kernel", axis: 3, side: "output", produces: true },
      ...biasSlice(c.useBias),
    ],
    narrow: (c, kept) => ({ ...c, filters: kept }),
  },
};

export const batchNorm: KindDef<"batch-norm"> = {
  kerasClasses: ["BatchNormalization"],
  inputs: "one",
  outputShape: (c, [x], where) => {
    if (c.axis !== -1 && c.axis !== x.length) throw new Error(`${where}: axis ${c.axis} is not supported; expected -1 (the last axis, ${x.length})`);
    return x;
  },
  params: (c, [x]) => {
    const shape = [x[x.length - 1]];
    return [
      ...(c.scale ? [{ role: "gamma" as const, shape }] : []),
      ...(c.center ? [{ role: "beta" as const, shape }] : []),
      { role: "moving-mean" as const, shape },
      { role: "moving-variance" as const, shape },
    ];
  },
  forward: (n, [x], p, ctx) => {
    const c = n.config;
    // tfjs's batchNorm gradient saves its scale and offset: give it constants where the layer has none
    const channels = [x.shape[x.rank - 1]];
    const gamma = p("gamma") ?? tf.ones(channels);
    const beta = p("beta") ?? tf.zeros(channels);
    if (!ctx.training) return tf.batchNorm(x, p("moving-mean") as tf.Tensor, p("moving-variance") as tf.Tensor, beta, gamma, c.epsilon);
    // Training: batch statistics (biased variance, as tfjs-layers and Keras); the moving ones move toward them.
    const { y, mean, variance } = batchNormTraining(x, gamma, beta, c.epsilon, ctx.inputUnshared === true);
    if (ctx.statUpdates) {
      for (const [role, batch] of [
        ["moving-mean", mean],
        ["moving-variance", variance],
      ] as const) {
        ctx.statUpdates[paramName(n.name, role)] = tf.keep(movingAverage(p(role) as tf.Tensor, batch, c.momentum));
      }
    }
    return y;
  },
  fromKeras: (_cls, k, where) => {
    const rawAxis = Array.isArray(k.axis) && k.axis.length === 1 ? k.axis[0] : (k.axis ?? -1);
    if (!(typeof rawAxis === "number" && Number.isInteger(rawAxis))) throw new Error(`${where}: axis must be one integer, got ${JSON.stringify(k.axis)}`);
    return {
      axis: rawAxis,
      momentum: kerasNumber(k, "momentum", where, 0.99, (v) => v >= 0 && v <= 1, "in [0, 1]"),
      epsilon: kerasNumber(k, "epsilon", where, 1e-3, (v) => v > 0, "> 0"),
      center: kerasBool(k, "center", where, true),
      scale: kerasBool(k, "scale", where, true),
    };
  },
  toKeras: ({ config: c }) => ({ axis: c.axis, momentum: c.momentum, epsilon: c.epsilon, center: c.center, scale: c.scale }),
  channels: {
    flow: sameChannels,
    slices: (c) =>
      [...(c.scale ? ["gamma" as const] : []), ...(c.center ? ["beta" as const] : []), "moving-mean" as const, "moving-variance" as const].map((role) => ({
        role,
        axis: 0,
        side: "output" as const,
        produces: true,
      })),
  },
};

export const dense: KindDef<"dense"> = {
  kerasClasses: ["Dense"],
  inputs: "one",
  outputShape: (c, [x]) => [...x.slice(0, -1), c.units],
  params: (c, [x]) => {
    const cin = x[x.length - 1];
    const kernel = { role: "kernel" as const, shape: [cin, c.units], fanIn: cin, fanOut: c.units, uses: product(x.slice(0, -1)) };
    return c.useBias ? [kernel, { role: "bias" as const, shape: [c.units] }] : [kernel];
  },
  forward: ({ config: c }, [x], p) => {
    const { fused, after } = splitActivation(c.activation);
    const a = x.rank === 2 ? x : tf.reshape(x, [-1, x.shape[x.rank - 1]]);
    let y: tf.Tensor = tf.fused.matMul({ a: a as tf.Tensor2D, b: p("kernel") as tf.Tensor2D, bias: p("bias"), activation: fused });
    if (x.rank !== 2) y = tf.reshape(y, [...x.shape.slice(0, -1), c.units]);
    return activate(y, after);
  },
  fromKeras: (_cls, k, where) => ({
    units: kerasPositiveInt(k, "units", where),
    useBias: kerasBool(k, "use_bias", where, true),
    activation: kerasActivation(k, where),
  }),
  toKeras: ({ config: c }) => ({ units: c.units, activation: c.activation, use_bias: c.useBias }),
  channels: { flow: () => "new", slices: (c) => [...filterSlices(0, 1), ...biasSlice(c.useBias)], narrow: (c, kept) => ({ ...c, units: kept }) },
};
