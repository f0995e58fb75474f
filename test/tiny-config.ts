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
