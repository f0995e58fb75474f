// The presets: the protocol's defaults and the configs of the quick, paper, tradeoff, fashion and structured sweeps
// (notebooks/PROTOCOL.md says why each value is what it is).
import { PAPER_CNN } from "../model";
import type { PresetName } from "../paths";
import { residualNetSpec, separableNetSpec } from "./architectures";
import type { ConfigInput, ParsedConfig } from "./config";

const DEFAULTS = {
  model: PAPER_CNN as ParsedConfig["model"],
  pretrain: { epochs: 10, lr: 0.01, momentum: 0.9, batchSize: 64 },
  methods: ["dense", "dense-retrained", "magnitude", "fw", "fw-momentum"],
  sparsity: 0.9,
  retrain: { epochs: 1, lr: 0.01, momentum: 0.9, batchSize: 64 },
  inference: { repeats: 5, batchSize: 1000 },
} satisfies Partial<ConfigInput>;

/**
 * The matched baselines: magnitude pruning to exactly the sparsity each FW run reached (same checkpoint, same
 * retraining), and the dense checkpoint trained as many extra samples as FW-momentum consumed (its FW minibatches
 * and its retraining together).
 */
export const MATCHED_BASELINES = [
  { name: "magnitude-matched-fw", method: "magnitude", match: { sparsity: "fw" } },
  { name: "magnitude-matched-fw-momentum", method: "magnitude", match: { sparsity: "fw-momentum" } },
  { name: "dense-compute-matched", method: "dense-retrained", match: { samples: "fw-momentum" } },
];

const QUICK_DATA = { name: "mnist-embedded", trainSize: 8000, testSize: 2000, seed: 0 } as const;

export const PRESETS: Record<PresetName, ConfigInput> = {
  // The paper's protocol at full scale: official MNIST, three seeds, T = 200, with the matched baselines.
  paper: {
    ...structuredClone(DEFAULTS),
    preset: "paper",
    name: "paper",
    dataset: { name: "mnist" },
    seeds: [0, 1, 2],
    methods: [...DEFAULTS.methods, ...structuredClone(MATCHED_BASELINES)],
    inference: { repeats: 5, batchSize: 1000, samples: 2000 },
  },
  quick: {
    ...structuredClone(DEFAULTS),
    preset: "quick",
    name: "quick",
    dataset: { ...QUICK_DATA },
    seeds: [0],
    params: { fw: { iterations: 100 }, "fw-momentum": { iterations: 100 } },
    inference: { repeats: 3, batchSize: 1000 },
    // Every method at every budget 1..10 (50 runs): 251 s from an empty cache with 2 workers on a quiet 2-core
    // machine (wasm; `fwprune sweep --preset quick`), within the 10-minute budget; about twice that under heavy load.
  },
  // Accuracy vs sparsity: six targets, the baselines the field expects, at budgets 2 and 10, three seeds.
  tradeoff: {
    ...structuredClone(DEFAULTS),
    preset: "tradeoff",
    name: "tradeoff",
    dataset: { ...QUICK_DATA },
    seeds: [0, 1, 2],
    budgets: [2, 10],
    methods: ["dense", "random", { name: "magnitude-per-layer", method: "magnitude", params: { scope: "per-layer" } }, "magnitude", "fw", "fw-momentum"],
    sparsity: [0.5, 0.8, 0.9, 0.95, 0.98, 0.99],
    inference: { repeats: 3, batchSize: 1000, samples: 2000 },
  },
  // Generalization: the paper's budget sweep on Fashion-MNIST (a subset the size of the quick preset's data).
  fashion: {
    ...structuredClone(DEFAULTS),
    preset: "fashion",
    name: "fashion",
    dataset: { name: "fashion-mnist", limitTrain: 8000, limitTest: 2000 },
    seeds: [0, 1, 2],
    methods: [...DEFAULTS.methods, ...structuredClone(MATCHED_BASELINES)],
    inference: { repeats: 3, batchSize: 1000, samples: 2000 },
  },
  // Structured pruning: whole filters and neurons removed, the smaller model retrained. Here the target (`sparsity`)
  // is the FLOP reduction: the surgered model keeps at most (1 − target) of the dense multiply-adds.
  structured: {
    ...structuredClone(DEFAULTS),
    preset: "structured",
    name: "structured",
    dataset: { ...QUICK_DATA },
    seeds: [0, 1, 2],
    budgets: [2, 10],
    // FW from the L1 mask can only drop groups (see structured-fw.ts); the "-uniform" variants start inside C instead.
    methods: [
      "dense",
      "dense-retrained",
      "structured-random",
      "structured-magnitude",
      "structured-fw",
      "structured-fw-momentum",
      { name: "structured-fw-uniform", method: "structured-fw", params: { start: "uniform" } },
      { name: "structured-fw-momentum-uniform", method: "structured-fw-momentum", params: { start: "uniform" } },
    ],
    params: { "structured-fw": { iterations: 100 }, "structured-fw-momentum": { iterations: 100 } },
    sparsity: [0.25, 0.5, 0.75],
    inference: { repeats: 5, batchSize: 1000, samples: 2000 },
  },
  // Beyond the paper CNN: the same questions on a residual network with batch norm and a depthwise-separable network
  // (src/experiment/architectures.ts), all three on one Fashion-MNIST subset, at budgets 2 and 10, three seeds. Sized
  // to about 2 hours on 2 cores (see notebooks/PROTOCOL.md): 8,000/2,000 images, T = 100, shorter timing.
  architectures: {
    ...structuredClone(DEFAULTS),
    preset: "architectures",
    name: "architectures",
    dataset: { name: "fashion-mnist", limitTrain: 8000, limitTest: 2000 },
    model: [structuredClone(PAPER_CNN), residualNetSpec(), separableNetSpec()] as unknown as ParsedConfig["model"],
    seeds: [0, 1, 2],
    budgets: [2, 10],
    methods: [
      "dense",
      "magnitude",
      "fw",
      "fw-momentum",
      ...structuredClone(MATCHED_BASELINES),
      "random",
      { name: "structured-magnitude", method: "structured-magnitude", sparsity: 0.5 },
      { name: "structured-fw-momentum", method: "structured-fw-momentum", sparsity: 0.5 },
    ],
    params: { fw: { iterations: 100 }, "fw-momentum": { iterations: 100 }, "structured-fw-momentum": { iterations: 100 } },
    inference: { repeats: 3, batchSize: 500, samples: 500 },
  },
};
