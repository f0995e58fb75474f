/** A config small enough to execute every notebook in seconds: 600 training and 300 test digits, one budget, T = 10. */
export const TINY = {
  preset: "quick",
  name: "tiny-notebook-test",
  dataset: { name: "mnist-embedded", trainSize: 8000, testSize: 2000, seed: 0, limitTrain: 600, limitTest: 300 },
  pretrain: { epochs: 1 },
  budgets: [1],
  methods: ["dense", "magnitude", "fw", "fw-momentum"],
  params: { fw: { iterations: 10 }, "fw-momentum": { iterations: 10 } },
  inference: { repeats: 1, batchSize: 1000 },
};

/** The trade-off notebook's config, tiny: two targets, three methods. */
export const TINY_TRADEOFF = { ...TINY, name: "tiny-tradeoff-test", methods: ["random", "magnitude", "fw"], sparsity: [0.8, 0.9] };

/** The generalization notebook's config, tiny: Fashion-MNIST (Debian's dataset-fashion-mnist, installed by the set-up). */
export const TINY_FASHION = { ...TINY, name: "tiny-fashion-test", dataset: { name: "fashion-mnist", limitTrain: 600, limitTest: 300 } };

/** The structured notebook's config, tiny: the four structured methods and the dense baselines at one FLOP target. */
export const TINY_STRUCTURED = {
  ...TINY,
  name: "tiny-structured-test",
  methods: ["dense", "dense-retrained", "structured-random", "structured-magnitude", "structured-fw", "structured-fw-momentum"],
  params: { "structured-fw": { iterations: 10 }, "structured-fw-momentum": { iterations: 10 } },
  sparsity: [0.5],
};

/** A small CNN (a few hundred weights) on 200 training and 100 test digits: runs in about a second. */
export const SMALL_CNN_CONFIG = {
  preset: "quick",
  name: "small-cnn-test",
  dataset: { name: "mnist-embedded", limitTrain: 200, limitTest: 100 },
  model: {
    name: "small",
    inputShape: [28, 28, 1],
    layers: [
      { type: "conv2d", filters: 2, kernelSize: 3, activation: "relu" },
      { type: "maxpool", size: 4 },
      { type: "flatten" },
      { type: "dense", units: 10 },
    ],
  },
  pretrain: { epochs: 1 },
  budgets: [1],
  methods: ["dense", "magnitude"],
  inference: { repeats: 1 },
};

const conv = (name: string, from: string, filters: number, kind = "conv2d") => ({
  name,
  kind,
  inputs: [from],
  config: {
    ...(kind === "conv2d" ? { filters } : { depthMultiplier: 1 }),
    kernelSize: [3, 3],
    strides: [2, 2],
    padding: "same",
    useBias: false,
    activation: "linear",
  },
});
const bn = (name: string, from: string) => ({
  name,
  kind: "batch-norm",
  inputs: [from],
  config: { axis: -1, momentum: 0.9, epsilon: 0.001, center: true, scale: true },
});
const relu = (name: string, from: string) => ({ name, kind: "activation", inputs: [from], config: { activation: "relu" } });
const head = (from: string) => [
  { name: "pool", kind: "global-avg-pool", inputs: [from], config: {} },
  { name: "logits", kind: "dense", inputs: ["pool"], config: { units: 10, useBias: true, activation: "linear" } },
];
const input = { name: "input", kind: "input", inputs: [], config: { shape: [28, 28, 1] } };

/** The architectures notebook's config, tiny: the paper CNN and a residual and a depthwise block of a few channels. */
export const TINY_ARCHITECTURES = {
  preset: "architectures",
  name: "tiny-architectures-test",
  dataset: { name: "fashion-mnist", limitTrain: 300, limitTest: 100 },
  model: [
    {
      name: "small-cnn",
      inputShape: [28, 28, 1],
      layers: [
        { type: "conv2d", filters: 4, kernelSize: 3, activation: "relu" },
        { type: "maxpool", size: 4 },
        { type: "flatten" },
        { type: "dense", units: 10 },
      ],
    },
    {
      name: "tiny-residual",
      nodes: [
        input,
        conv("c1", "input", 4),
        bn("b1", "c1"),
        relu("r1", "b1"),
        { ...conv("c2", "r1", 4), config: { ...conv("c2", "r1", 4).config, strides: [1, 1] } },
        bn("b2", "c2"),
        { name: "add", kind: "add", inputs: ["b2", "r1"], config: {} },
        relu("r2", "add"),
        ...head("r2"),
      ],
    },
    {
      name: "tiny-separable",
      nodes: [
        input,
        conv("c1", "input", 4),
        bn("b1", "c1"),
        relu("r1", "b1"),
        conv("dw", "r1", 0, "depthwise-conv2d"),
        bn("b2", "dw"),
        relu("r2", "b2"),
        ...head("r2"),
      ],
    },
  ],
  pretrain: { epochs: 1 },
  budgets: [1],
  seeds: [0],
  methods: ["dense", "magnitude", "fw-momentum", { name: "structured-magnitude", method: "structured-magnitude", sparsity: 0.5 }],
  params: { "fw-momentum": { iterations: 5 } },
  inference: { repeats: 1, batchSize: 100, samples: 100 },
};
