import * as tf from "@tensorflow/tfjs-core";
import { deriveSeed } from "../random";
import {
  KerasConfig,
  KindDef,
  activate,
  sameChannels,
  kerasActivation,
  kerasImageLayout,
  kerasNumber,
  kerasPadding,
  kerasPair,
  product,
  spatialOut,
} from "./kind";
import { NodeConfigs } from "./types";

/** The node kinds without parameters. */

const none = () => [];
const empty = (): Record<string, never> => ({});

export const input: KindDef<"input"> = {
  kerasClasses: ["InputLayer"],
  inputs: "none",
  outputShape: (c) => c.shape,
  params: none,
  forward: () => {
    throw new Error("the input node has no forward of its own");
  },
  fromKeras: (_cls, k, where) => {
    const batchShape = k.batch_input_shape ?? k.batch_shape;
    if (!Array.isArray(batchShape) || batchShape.length < 2 || !batchShape.slice(1).every((n) => Number.isInteger(n) && n >= 1)) {
      throw new Error(`${where}: batch_input_shape must be [null, ...positive integers], got ${JSON.stringify(batchShape)}`);
    }
    return { shape: batchShape.slice(1) as number[] };
  },
  toKeras: ({ config: c }) => ({ batch_input_shape: [null, ...c.shape], dtype: "float32", sparse: false }),
  channels: { flow: () => "fixed" },
};

export const activation: KindDef<"activation"> = {
  kerasClasses: ["Activation", "ReLU", "Softmax"],
  inputs: "one",
  outputShape: (_c, [x]) => x,
  params: none,
  forward: ({ config: c }, [x]) => activate(x, c.activation),
  fromKeras: (cls, k, where) => {
    if (cls === "Activation") return { activation: kerasActivation(k, where) };
    if (cls === "Softmax") {
      if ((k.axis ?? -1) !== -1) throw new Error(`${where}: axis ${JSON.stringify(k.axis)} is not supported; expected -1`);
      return { activation: "softmax" };
    }
    const maxValue = k.max_value ?? null;
    if ((k.negative_slope ?? 0) !== 0 || (k.threshold ?? 0) !== 0 || (maxValue !== null && maxValue !== 6)) {
      throw new Error(`${where}: only ReLU with max_value null or 6, negative_slope 0 and threshold 0 is supported, got ${JSON.stringify(k)}`);
    }
    return { activation: maxValue === 6 ? "relu6" : "relu" };
  },
  toKeras: (n) => {
    if (n.kerasClass === "ReLU") return { max_value: n.config.activation === "relu6" ? 6 : null };
    if (n.kerasClass === "Softmax") return { axis: -1 };
    return { activation: n.config.activation };
  },
  // softmax mixes the channels it normalizes
  channels: { flow: (c, inputs, output, link) => (c.activation === "softmax" ? "fixed" : sameChannels(c, inputs, output, link)) },
};

function pool(kind: "max-pool" | "avg-pool", kerasClass: string): KindDef<"max-pool" | "avg-pool"> {
  return {
    kerasClasses: [kerasClass],
    inputs: "one",
    outputShape: (c, [x], where) => [...spatialOut(x, c.poolSize, c.strides, c.padding, where), x[2]],
    params: none,
    forward: ({ config: c }, [x]) =>
      kind === "max-pool" ? tf.maxPool(x as tf.Tensor4D, c.poolSize, c.strides, c.padding) : tf.avgPool(x as tf.Tensor4D, c.poolSize, c.strides, c.padding),
    fromKeras: (_cls, k, where) => {
      kerasImageLayout(k, where);
      const poolSize = kerasPair(k, "pool_size", where, [2, 2]);
      return { poolSize, strides: k.strides == null ? poolSize : kerasPair(k, "strides", where), padding: kerasPadding(k, where) };
    },
    toKeras: ({ config: c }) => ({ pool_size: c.poolSize, strides: c.strides, padding: c.padding, data_format: "channels_last" }),
    channels: { flow: sameChannels },
  };
}
export const maxPool = pool("max-pool", "MaxPooling2D") as KindDef<"max-pool">;
export const avgPool = pool("avg-pool", "AveragePooling2D") as KindDef<"avg-pool">;

function globalPool(kind: "global-avg-pool" | "global-max-pool", kerasClass: string): KindDef<"global-avg-pool" | "global-max-pool"> {
  return {
    kerasClasses: [kerasClass],
    inputs: "one",
    outputShape: (_c, [x], where) => {
      if (x.length !== 3) throw new Error(`${where}: expects an image input [height, width, channels], got [${x}]`);
      return [x[2]];
    },
    params: none,
    forward: (_n, [x]) => (kind === "global-avg-pool" ? tf.mean(x, [1, 2]) : tf.max(x, [1, 2])),
    fromKeras: (_cls, k, where) => {
      kerasImageLayout(k, where);
      if (k.keepdims === true) throw new Error(`${where}: keepdims true is not supported`);
      return {};
    },
    toKeras: () => ({ data_format: "channels_last" }),
    channels: { flow: sameChannels },
  };
}
export const globalAvgPool = globalPool("global-avg-pool", "GlobalAveragePooling2D") as KindDef<"global-avg-pool">;
export const globalMaxPool = globalPool("global-max-pool", "GlobalMaxPooling2D") as KindDef<"global-max-pool">;

export const flatten: KindDef<"flatten"> = {
  kerasClasses: ["Flatten"],
  inputs: "one",
  outputShape: (_c, [x]) => [product(x)],
  params: none,
  forward: (_n, [x]) => tf.reshape(x, [x.shape[0], -1]),
  fromKeras: (_cls, k, where) => {
    kerasImageLayout(k, where);
    return empty();
  },
  toKeras: () => ({}),
  channels: { flow: reshapeChannels },
};

/**
 * A reshape (or flatten) keeps the row-major order: value i is input channel i mod C_in and output channel i mod C_out,
 * one channel (the pattern repeats every lcm(C_in, C_out) values).
 */
function reshapeChannels(_c: unknown, [x]: number[][], output: number[], link: (input: number, from: number, to: number) => void): "pass" {
  const cin = x[x.length - 1];
  const cout = output[output.length - 1];
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  const period = (cin / gcd(cin, cout)) * cout;
  for (let i = 0; i < period; i++) link(0, i % cin, i % cout);
  return "pass";
}

export const reshape: KindDef<"reshape"> = {
  kerasClasses: ["Reshape"],
  inputs: "one",
  outputShape: (c, [x], where) => {
    const known = product(c.targetShape.filter((d) => d !== -1));
    const unknown = c.targetShape.filter((d) => d === -1).length;
    const size = product(x);
    const out = c.targetShape.map((d) => (d === -1 ? size / known : d));
    if (unknown > 1 || product(out) !== size || !out.every((d) => Number.isInteger(d) && d >= 1)) {
      throw new Error(`${where}: cannot reshape [${x}] (${size} values) to [${c.targetShape}]`);
    }
    return out;
  },
  params: none,
  forward: (n, [x]) => tf.reshape(x, [x.shape[0], ...n.config.targetShape]),
  fromKeras: (_cls, k, where) => {
    const t = k.target_shape;
    if (!Array.isArray(t) || !t.every((d) => d === -1 || (Number.isInteger(d) && d >= 1))) {
      throw new Error(`${where}: target_shape must be a list of positive integers (one may be -1), got ${JSON.stringify(t)}`);
    }
    return { targetShape: t as number[] };
  },
  toKeras: ({ config: c }) => ({ target_shape: c.targetShape }),
  channels: {
    flow: reshapeChannels,
    narrow: (c, kept) => ({ targetShape: c.targetShape.map((d, i) => (i === c.targetShape.length - 1 && d !== -1 ? kept : d)) }),
  },
};

export const dropout: KindDef<"dropout"> = {
  kerasClasses: ["Dropout"],
  inputs: "one",
  outputShape: (_c, [x]) => x,
  params: none,
  forward: (n, [x], _p, ctx) => (ctx.training && n.config.rate > 0 ? tf.dropout(x, n.config.rate, undefined, deriveSeed(ctx.seed, `dropout/${n.name}`)) : x),
  fromKeras: (_cls, k, where) => {
    if (k.noise_shape != null) throw new Error(`${where}: noise_shape is not supported`);
    return { rate: kerasNumber(k, "rate", where, 0, (v) => v >= 0 && v < 1, "in [0, 1)") };
  },
  toKeras: ({ config: c }) => ({ rate: c.rate }),
  channels: { flow: sameChannels },
};

function sameShapes(inputs: number[][], where: string, exceptLast: boolean): void {
  const first = inputs[0];
  for (const s of inputs) {
    const a = exceptLast ? s.slice(0, -1) : s;
    const b = exceptLast ? first.slice(0, -1) : first;
    if (s.length !== first.length || a.some((d, i) => d !== b[i])) {
      throw new Error(`${where}: input shapes [${inputs.map((x) => `[${x}]`).join(", ")}] do not match${exceptLast ? " (except the last axis)" : ""}`);
    }
  }
}

export const add: KindDef<"add"> = {
  kerasClasses: ["Add"],
  inputs: "many",
  outputShape: (_c, xs, where) => {
    sameShapes(xs, where, false);
    return xs[0];
  },
  params: none,
  forward: (_n, xs) => xs.slice(1).reduce((sum, x) => tf.add(sum, x), xs[0]),
  fromKeras: empty,
  toKeras: () => ({}),
  channels: { flow: sameChannels },
};

export const concatenate: KindDef<"concatenate"> = {
  kerasClasses: ["Concatenate"],
  inputs: "many",
  outputShape: (_c, xs, where) => {
    sameShapes(xs, where, true);
    return [...xs[0].slice(0, -1), xs.reduce((n, x) => n + x[x.length - 1], 0)];
  },
  params: none,
  forward: (_n, xs) => tf.concat(xs, -1),
  fromKeras: (_cls: string, k: KerasConfig, where: string): NodeConfigs["concatenate"] => {
    if ((k.axis ?? -1) !== -1) throw new Error(`${where}: axis ${JSON.stringify(k.axis)} is not supported; expected -1`);
    return {};
  },
  toKeras: () => ({ axis: -1 }),
  channels: {
    // input i's channels are the output's channels from the sum of the earlier inputs' counts on
    flow: (_c, xs, _out, link) => {
      let offset = 0;
      xs.forEach((x, i) => {
        const channels = x[x.length - 1];
        for (let c = 0; c < channels; c++) link(i, c, offset + c);
        offset += channels;
      });
      return "pass";
    },
  },
};
