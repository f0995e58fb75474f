import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { batchNormTraining, movingAverage } from "./kernels/batch-norm-train";
import { lossOf } from "./train";

/**
 * Reference architectures beyond the paper CNN, as plain tfjs functional models: a small residual network with
 * batch norm, and a depthwise-separable network. Convolutions before a batch norm have no bias; kernels get
 * Glorot-uniform initialisation seeded per layer (seed, seed + 1, ...), so a build is reproducible.
 */
export interface ZooOptions {
  /** [height, width, channels] of one input image; default [28, 28, 1]. */
  inputShape?: [number, number, number];
  /** Number of classes of the dense head (logits, no softmax); default 10. */
  classes?: number;
  /** Seed of the first layer's initialiser; default 0. */
  seed?: number;
}

export const ZOO_MODELS = ["residual-net", "separable-net"] as const;
export type ZooModelName = (typeof ZOO_MODELS)[number];

function checkOptions(builder: string, opts: ZooOptions): Required<ZooOptions> {
  const inputShape = opts.inputShape ?? [28, 28, 1];
  const classes = opts.classes ?? 10;
  const seed = opts.seed ?? 0;
  if (!Array.isArray(inputShape) || inputShape.length !== 3 || !inputShape.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new Error(`${builder}: inputShape ${JSON.stringify(inputShape)}; expected [height, width, channels] of positive integers`);
  }
  if (inputShape[0] < 4 || inputShape[1] < 4) {
    throw new Error(`${builder}: inputShape ${JSON.stringify(inputShape)}; expected height and width of at least 4 (two stride-2 stages)`);
  }
  if (!Number.isInteger(classes) || classes < 2) throw new Error(`${builder}: classes ${classes}; expected an integer ≥ 2`);
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`${builder}: seed ${seed}; expected a non-negative integer`);
  return { inputShape, classes, seed };
}

type Init = ReturnType<typeof tfl.initializers.glorotUniform>;

/** Hands out consecutive seeds to the layers of one model. */
function seeds(first: number): () => Init {
  let next = first;
  return () => tfl.initializers.glorotUniform({ seed: next++ });
}

type Node = tfl.SymbolicTensor;

/** tfjs-layers' BatchNormalization: the class its factory instantiates, looked up where it registers for loading. */
const LayersBatchNorm = tf.serialization.SerializationMap.getMap().classNameMap.BatchNormalization[0] as unknown as new (
  args?: Parameters<typeof tfl.layers.batchNormalization>[0],
) => tfl.layers.Layer;

interface BatchNormState {
  axis: number;
  momentum: number;
  epsilon: number;
  gamma?: tfl.LayerVariable;
  beta?: tfl.LayerVariable;
  movingMean: tfl.LayerVariable;
  movingVariance: tfl.LayerVariable;
}

/**
 * tfjs-layers' batch norm whose training step is src/kernels' fused one (batchNormTraining: the same bits, fewer
 * passes); it serialises as BatchNormalization. Only for a zoo convolution's output, which nothing else reads (the
 * fused gradient of x needs that); other cases and inference are tfjs-layers' own.
 */
class ZooBatchNorm extends LayersBatchNorm {
  static className = "BatchNormalization";

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[] {
    const bn = this as unknown as BatchNormState;
    const x = Array.isArray(inputs) && inputs.length === 1 ? inputs[0] : inputs;
    const lastAxis = x instanceof tf.Tensor && (bn.axis === -1 || bn.axis === x.rank - 1);
    if (!kwargs.training || !lastAxis || !bn.gamma || !bn.beta) return super.call(inputs, kwargs);
    const { gamma, beta, epsilon, momentum } = bn;
    return tf.tidy(() => {
      const { y, mean, variance } = batchNormTraining(x as tf.Tensor, gamma.read(), beta.read(), epsilon, true);
      for (const [variable, value] of [
        [bn.movingMean, mean],
        [bn.movingVariance, variance],
      ] as const) {
        tf.tidy(() => void variable.write(movingAverage(variable.read(), value, momentum)));
      }
      return y;
    });
  }
}

function convBn(h: Node, init: () => Init, filters: number, kernelSize: number, strides: number, relu: boolean): Node {
  const conv = tfl.layers.conv2d({ filters, kernelSize, strides, padding: "same", useBias: false, kernelInitializer: init() });
  const normed = new ZooBatchNorm().apply(conv.apply(h)) as Node;
  return relu ? (tfl.layers.reLU().apply(normed) as Node) : normed;
}

function head(h: Node, init: () => Init, classes: number): Node {
  const pooled = tfl.layers.globalAveragePooling2d({}).apply(h);
  return tfl.layers.dense({ units: classes, kernelInitializer: init() }).apply(pooled) as Node;
}

/**
 * A residual CNN: conv3×3(16)–BN–ReLU stem, then three residual blocks of two conv3×3–BN with 16, 32 and 64
 * channels (stride 1, 2, 2; the strided ones with a 1×1 conv–BN projection shortcut, the first with the identity),
 * each joined by an Add and a ReLU, then global average pooling and a dense head. 77,754 trainable parameters at
 * the defaults.
 */
export function residualNet(opts: ZooOptions = {}): tfl.LayersModel {
  const { inputShape, classes, seed } = checkOptions("residualNet", opts);
  const init = seeds(seed);
  const input = tfl.input({ shape: inputShape });
  let h = convBn(input, init, 16, 3, 1, true);
  for (const [filters, strides] of [
    [16, 1],
    [32, 2],
    [64, 2],
  ]) {
    const inner = convBn(convBn(h, init, filters, 3, strides, true), init, filters, 3, 1, false);
    const shortcut = strides === 1 && h.shape[3] === filters ? h : convBn(h, init, filters, 1, strides, false);
    h = tfl.layers.reLU().apply(tfl.layers.add().apply([inner, shortcut])) as Node;
  }
  return tfl.model({ inputs: input, outputs: head(h, init, classes), name: "residual_net" });
}

/**
 * A depthwise-separable CNN: conv3×3(32)–BN–ReLU stem, then four blocks of depthwise conv3×3–BN–ReLU and
 * pointwise conv1×1–BN–ReLU with 64, 128, 128 and 256 output channels (stride 1, 2, 1, 2 on the depthwise conv),
 * then global average pooling and a dense head. 67,338 trainable parameters at the defaults.
 */
export function separableNet(opts: ZooOptions = {}): tfl.LayersModel {
  const { inputShape, classes, seed } = checkOptions("separableNet", opts);
  const init = seeds(seed);
  const input = tfl.input({ shape: inputShape });
  let h = convBn(input, init, 32, 3, 1, true);
  for (const [filters, strides] of [
    [64, 1],
    [128, 2],
    [128, 1],
    [256, 2],
  ]) {
    const depthwise = tfl.layers.depthwiseConv2d({ kernelSize: 3, strides, padding: "same", useBias: false, depthwiseInitializer: init() });
    const normed = new ZooBatchNorm().apply(depthwise.apply(h)) as Node;
    h = convBn(tfl.layers.reLU().apply(normed) as Node, init, filters, 1, 1, true);
  }
  return tfl.model({ inputs: input, outputs: head(h, init, classes), name: "separable_net" });
}

export function zooModel(name: ZooModelName, opts: ZooOptions = {}): tfl.LayersModel {
  if (name === "residual-net") return residualNet(opts);
  if (name === "separable-net") return separableNet(opts);
  throw new Error(`zoo model "${String(name)}": unknown; expected one of ${ZOO_MODELS.join(", ")}`);
}

/** Trainable parameters, and all parameters including batch norm's moving statistics. */
export function zooParamCounts(model: tfl.LayersModel): { trainable: number; total: number } {
  const size = (ws: tfl.LayerVariable[]) => ws.reduce((n, w) => n + tf.util.sizeFromShape(w.shape as number[]), 0);
  return { trainable: size(model.trainableWeights), total: size(model.weights) };
}

/**
 * One minibatch step of a layers model in training mode (batch norm on batch statistics, updating its moving
 * ones): softmax cross-entropy of the logits, minimised by `optimizer` over the trainable weights. Returns the loss.
 */
export function layersTrainStep(model: tfl.LayersModel, optimizer: tf.Optimizer, x: tf.Tensor4D, y: tf.Tensor1D): number {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const loss = optimizer.minimize(() => lossOf(model.apply(x, { training: true }) as tf.Tensor2D, y), true, vars) as tf.Scalar;
  const value = loss.dataSync()[0];
  loss.dispose();
  return value;
}
