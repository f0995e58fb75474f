import * as tf from "@tensorflow/tfjs";
import { deriveSeed, mulberry32 } from "./random";

export type Activation = "relu" | "linear";
export type LayerSpec =
  | { type: "conv2d"; filters: number; kernelSize: number; stride?: number; padding?: "valid" | "same"; activation?: Activation }
  | { type: "maxpool"; size: number }
  | { type: "flatten" }
  | { type: "dense"; units: number; activation?: Activation };

/**
 * How weights start. "glorot-uniform": kernels U(±√(6/(fan_in + fan_out))), biases 0 (the Keras default, which the
 * paper's Keras-style code implies; our protocol's choice). "pytorch-default": kernels and biases U(±1/√fan_in)
 * (PyTorch's Conv2d/Linear default). FW's achieved sparsity depends on it: the layers' relative scale moves the
 * magnitude start mask and the spread of θ ⊙ ∇L.
 */
export type InitScheme = "glorot-uniform" | "pytorch-default";
export const INIT_SCHEMES: readonly InitScheme[] = ["glorot-uniform", "pytorch-default"];

/** A feed-forward CNN: input [H, W, C] → layers → logits over numClasses (softmax lives in the loss). */
export interface ModelSpec {
  name: string;
  inputShape: [number, number, number];
  layers: LayerSpec[];
  /** Default "glorot-uniform". */
  init?: InitScheme;
}

/** The paper CNN as our protocol fixes it (notebooks/PROTOCOL.md): 225,034 parameters. The last Dense(10) yields logits; softmax is in the loss. */
export const PAPER_CNN: ModelSpec = {
  name: "paper-cnn",
  inputShape: [28, 28, 1],
  layers: [
    { type: "conv2d", filters: 32, kernelSize: 3, activation: "relu" },
    { type: "maxpool", size: 2 },
    { type: "conv2d", filters: 64, kernelSize: 3, activation: "relu" },
    { type: "maxpool", size: 2 },
    { type: "flatten" },
    { type: "dense", units: 128, activation: "relu" },
    { type: "dense", units: 10 },
  ],
  init: "glorot-uniform",
};

export type Params = Record<string, tf.Tensor>;
export interface Model {
  spec: ModelSpec;
  params: Record<string, tf.Variable>;
}

export interface ParamShape {
  name: string;
  shape: number[];
  /** Conv and dense kernels are prunable; biases are not. */
  prunable: boolean;
  fanIn: number;
  fanOut: number;
  /** Multiply-adds per weight per input image: a conv kernel's output positions, 1 for a dense kernel or a bias. */
  uses: number;
}

/** Walk the spec once: the name and shape of every parameter, in order; throws on a spec that does not fit. */
export function paramShapes(spec: ModelSpec): ParamShape[] {
  let [h, w, c] = spec.inputShape;
  let flat: number | undefined;
  const out: ParamShape[] = [];
  let conv = 0;
  let dense = 0;
  spec.layers.forEach((layer, i) => {
    const where = `model.layers[${i}] (${layer.type})`;
    if (layer.type === "conv2d") {
      if (flat !== undefined) throw new Error(`${where}: conv2d after flatten is not supported`);
      const k = layer.kernelSize;
      const s = layer.stride ?? 1;
      const name = `conv${++conv}`;
      if ((layer.padding ?? "valid") === "valid") {
        h = Math.floor((h - k) / s) + 1;
        w = Math.floor((w - k) / s) + 1;
      } else {
        h = Math.ceil(h / s);
        w = Math.ceil(w / s);
      }
      out.push({ name: `${name}/kernel`, shape: [k, k, c, layer.filters], prunable: true, fanIn: k * k * c, fanOut: k * k * layer.filters, uses: h * w });
      out.push({ name: `${name}/bias`, shape: [layer.filters], prunable: false, fanIn: 0, fanOut: 0, uses: 1 });
      c = layer.filters;
    } else if (layer.type === "maxpool") {
      h = Math.floor(h / layer.size);
      w = Math.floor(w / layer.size);
    } else if (layer.type === "flatten") {
      flat = h * w * c;
    } else {
      const inputs = flat ?? (h === 1 && w === 1 ? c : undefined);
      if (inputs === undefined) throw new Error(`${where}: dense needs a flatten before it`);
      const name = `dense${++dense}`;
      out.push({ name: `${name}/kernel`, shape: [inputs, layer.units], prunable: true, fanIn: inputs, fanOut: layer.units, uses: 1 });
      out.push({ name: `${name}/bias`, shape: [layer.units], prunable: false, fanIn: 0, fanOut: 0, uses: 1 });
      flat = layer.units;
    }
    if (h < 1 || w < 1) throw new Error(`${where}: spatial size became ${h}×${w}; expected ≥ 1`);
  });
  return out;
}

export function prunableNames(spec: ModelSpec): string[] {
  return paramShapes(spec).filter((p) => p.prunable).map((p) => p.name);
}

/** Multiply-adds per input image of each prunable kernel (conv: output positions × kernel volume; dense: in × out). */
export function multiplyAdds(spec: ModelSpec): { kernel: string; weights: number; multiplyAdds: number }[] {
  return paramShapes(spec).filter((p) => p.prunable).map((p) => {
    const weights = p.shape.reduce((a, b) => a * b, 1);
    return { kernel: p.name, weights, multiplyAdds: weights * p.uses };
  });
}

export function countParams(spec: ModelSpec): number {
  return paramShapes(spec).reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
}

/** Glorot-uniform kernels (the Keras default) and zero biases, from a seeded PRNG: same seed, same weights. */
/** Seeded initial weights (spec.init, default Glorot-uniform kernels and zero biases): same seed, same weights. */
export function createModel(spec: ModelSpec, seed: number): Model {
  const init = spec.init ?? "glorot-uniform";
  if (!INIT_SCHEMES.includes(init)) throw new Error(`model.init: expected one of ${INIT_SCHEMES.join(", ")}, got ${JSON.stringify(init)}`);
  const params: Record<string, tf.Variable> = {};
  let layerFanIn = 1;
  for (const p of paramShapes(spec)) {
    const size = p.shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(size);
    if (p.prunable) layerFanIn = p.fanIn;
    const limit = init === "pytorch-default" ? 1 / Math.sqrt(layerFanIn) : p.prunable ? Math.sqrt(6 / (p.fanIn + p.fanOut)) : 0;
    if (limit > 0) {
      const rand = mulberry32(deriveSeed(seed, `init/${p.name}`));
      for (let i = 0; i < size; i++) values[i] = (2 * rand() - 1) * limit;
    }
    params[p.name] = newVariable(p.name, values, p.shape);
  }
  return { spec, params };
}

let nextId = 0;
/** A trainable variable holding these values (tf.variable copies its initial tensor, which tidy then frees). */
function newVariable(name: string, values: Float32Array, shape: number[]): tf.Variable {
  return tf.tidy(() => tf.variable(tf.tensor(values, shape), true, `${name}-${nextId++}`));
}

/** Build a model from plain weight arrays (a checkpoint, a pruned copy). */
export function modelFromWeights(spec: ModelSpec, weights: Record<string, Float32Array>): Model {
  const params: Record<string, tf.Variable> = {};
  for (const p of paramShapes(spec)) {
    const values = weights[p.name];
    const size = p.shape.reduce((a, b) => a * b, 1);
    if (!values || values.length !== size) {
      throw new Error(`weights["${p.name}"]: expected ${size} values of shape [${p.shape}], got ${values ? values.length : "none"}`);
    }
    params[p.name] = newVariable(p.name, values, p.shape);
  }
  return { spec, params };
}

export function getWeights(model: Model): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const [name, v] of Object.entries(model.params)) out[name] = v.dataSync() as Float32Array;
  return out;
}

export function cloneModel(model: Model): Model {
  return modelFromWeights(model.spec, getWeights(model));
}

export function disposeModel(model: Model): void {
  for (const v of Object.values(model.params)) v.dispose();
}

/** The forward pass: images [N, H, W, C] → logits [N, classes]. Any Params (variables or plain tensors) will do. */
export function forward(spec: ModelSpec, params: Params, x: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => {
    let h: tf.Tensor = x;
    let conv = 0;
    let dense = 0;
    // While gradients are recorded tfjs does not fuse bias and ReLU into the conv; then a conv + ReLU followed by a
    // max pool pools first: max commutes with the per-channel bias add and with ReLU (both monotonic), so the values
    // are the same, and the bias add, ReLU and their gradients touch 4× fewer values.
    const recording = tf.engine().state.gradientDepth > 0;
    for (let i = 0; i < spec.layers.length; i++) {
      const layer = spec.layers[i];
      const next = spec.layers[i + 1];
      if (layer.type === "conv2d" && recording && layer.activation === "relu" && next?.type === "maxpool") {
        const name = `conv${++conv}`;
        const z = tf.conv2d(h as tf.Tensor4D, params[`${name}/kernel`] as tf.Tensor4D, layer.stride ?? 1, layer.padding ?? "valid");
        h = tf.relu(tf.add(tf.maxPool(z, next.size, next.size, "valid"), params[`${name}/bias`]));
        i++;
      } else if (layer.type === "conv2d") {
        const name = `conv${++conv}`;
        h = tf.fused.conv2d({
          x: h as tf.Tensor4D,
          filter: params[`${name}/kernel`] as tf.Tensor4D,
          bias: params[`${name}/bias`],
          strides: layer.stride ?? 1,
          pad: layer.padding ?? "valid",
          activation: layer.activation ?? "linear",
        });
      } else if (layer.type === "maxpool") {
        h = tf.maxPool(h as tf.Tensor4D, layer.size, layer.size, "valid");
      } else if (layer.type === "flatten") {
        h = tf.reshape(h, [h.shape[0], -1]);
      } else {
        const name = `dense${++dense}`;
        h = tf.fused.matMul({
          a: h as tf.Tensor2D,
          b: params[`${name}/kernel`] as tf.Tensor2D,
          bias: params[`${name}/bias`],
          activation: layer.activation ?? "linear",
        });
      }
    }
    return h as tf.Tensor2D;
  });
}
