import * as fs from "fs";
import * as path from "path";
import { z } from "zod";
import { DatasetSpec, FASHION_MNIST_DEBIAN_DIR, IDX_FILES, describeIdxFolderProblem } from "../data";
import { ModelSpec, PAPER_CNN, paramShapes } from "../model";

// zod: a well-kept schema library; every error below is reported as "<field path>: <what was expected> (got <value>)".

/** The methods a run can use. `dense-retrained` is PAPER.md's fairness baseline: the checkpoint trained E more epochs. */
export const METHOD_NAMES = ["dense", "dense-retrained", "magnitude", "fw", "fw-momentum"] as const;
export type MethodName = (typeof METHOD_NAMES)[number];
/** Methods that prune (and so run once per target sparsity); the others ignore `sparsity`. */
export const PRUNING_METHODS: readonly MethodName[] = ["magnitude", "fw", "fw-momentum"];
/** Methods that retrain after the checkpoint (and so depend on `retrain`). */
export const RETRAINING_METHODS: readonly MethodName[] = ["dense-retrained", "magnitude", "fw", "fw-momentum"];

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();
const positiveNumber = z.number().positive().finite();
const fraction = z.number().min(0).lt(1);
const limits = { limitTrain: positiveInt.optional(), limitTest: positiveInt.optional() };

const DatasetSchema = z.discriminatedUnion("name", [
  z.object({ name: z.literal("mnist-embedded"), trainSize: nonNegativeInt.optional(), testSize: nonNegativeInt.optional(), seed: z.number().int().optional(), ...limits }).strict(),
  z.object({ name: z.literal("mnist"), ...limits }).strict(),
  z.object({ name: z.literal("fashion-mnist"), dir: z.string().min(1).optional(), ...limits }).strict(),
  z.object({ name: z.literal("idx"), dir: z.string().min(1), ...limits }).strict(),
]);

const activation = z.enum(["relu", "linear"]);
const LayerSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("conv2d"), filters: positiveInt, kernelSize: positiveInt, stride: positiveInt.optional(), padding: z.enum(["valid", "same"]).optional(), activation: activation.optional() }).strict(),
  z.object({ type: z.literal("maxpool"), size: positiveInt }).strict(),
  z.object({ type: z.literal("flatten") }).strict(),
  z.object({ type: z.literal("dense"), units: positiveInt, activation: activation.optional() }).strict(),
]);
const ModelSchema = z.object({
  name: z.string().min(1),
  inputShape: z.tuple([positiveInt, positiveInt, positiveInt]),
  layers: z.array(LayerSchema).nonempty(),
}).strict();

const OptimizerFields = { lr: positiveNumber, momentum: fraction, batchSize: positiveInt };
const PretrainSchema = z.object({ epochs: positiveInt, ...OptimizerFields }).strict();
const RetrainSchema = z.object({ epochs: nonNegativeInt, ...OptimizerFields }).strict();

/** γ_t: constant, the open-loop rule 2/(t+2), or a minibatch line search. */
const StepSizeSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("constant"), gamma: z.number().gt(0).max(1) }).strict(),
  z.object({ kind: z.literal("open-loop") }).strict(),
  z.object({ kind: z.literal("line-search"), evaluations: z.number().int().min(2).optional() }).strict(),
]);
/** FW-momentum's averaging: d_t = β d_{t-1} + (1-β) g_t, or Mokhtari's ρ_t = 4/(t+8)^(2/3). */
const MomentumSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("constant"), beta: fraction }).strict(),
  z.object({ kind: z.literal("mokhtari") }).strict(),
]);
const FwSchema = z.object({
  iterations: positiveInt,
  stepSize: StepSizeSchema,
  momentum: MomentumSchema,
  tau: z.number().gt(0).max(1),
  batchSize: positiveInt,
  lmoSampleFraction: z.number().gt(0).max(1),
  loss: z.enum(["crossentropy", "mse"]),
}).strict();
/** regrow: retrain without the mask (Algorithm 2 as literally written); scope: rank all kernels together or each alone. */
const MagnitudeSchema = z.object({ regrow: z.boolean(), scope: z.enum(["global", "per-layer"]) }).strict();
const InferenceSchema = z.object({ repeats: positiveInt, batchSize: positiveInt }).strict();

/** One entry of `methods`: a method name, or a named variant with its own parameters over the global ones. */
const MethodEntrySchema = z.preprocess(
  (v) => (typeof v === "string" ? { name: v, method: v } : v),
  z.object({
    name: z.string().min(1),
    method: z.enum(METHOD_NAMES),
    sparsity: z.union([fraction, z.array(fraction).nonempty()]).optional(),
    retrain: RetrainSchema.partial().optional(),
    magnitude: MagnitudeSchema.partial().optional(),
    fw: FwSchema.partial().optional(),
    /** Run this method only at these of the config's budgets. */
    budgets: z.array(positiveInt).nonempty().optional(),
  }).strict(),
);

export const ConfigSchema = z.object({
  /** A preset this config was merged over (informational once resolved). */
  preset: z.enum(["quick", "paper"]).optional(),
  name: z.string().min(1),
  dataset: DatasetSchema,
  model: ModelSchema,
  pretrain: PretrainSchema,
  /** Pre-training budgets (checkpoint epochs) to evaluate; default 1..pretrain.epochs. */
  budgets: z.array(positiveInt).nonempty().optional(),
  seeds: z.array(z.number().int().nonnegative()).nonempty(),
  methods: z.array(MethodEntrySchema).nonempty(),
  sparsity: z.union([fraction, z.array(fraction).nonempty()]),
  retrain: RetrainSchema,
  magnitude: MagnitudeSchema,
  fw: FwSchema,
  inference: InferenceSchema,
}).strict().superRefine((c, ctx) => {
  const budgetsOk = (budgets: number[] | undefined, path: (string | number)[]) =>
    budgets?.forEach((b, i) => {
      if (b > c.pretrain.epochs) ctx.addIssue({ code: "custom", path: [...path, i], message: `budget ${b} exceeds pretrain.epochs = ${c.pretrain.epochs}; expected 1..${c.pretrain.epochs}` });
    });
  budgetsOk(c.budgets, ["budgets"]);
  const names = new Set<string>();
  c.methods.forEach((m, i) => {
    if (names.has(m.name)) ctx.addIssue({ code: "custom", path: ["methods", i, "name"], message: `duplicate method name "${m.name}"; expected each name once` });
    names.add(m.name);
    if (m.budgets && budgetsOf(c, m).length === 0) {
      ctx.addIssue({ code: "custom", path: ["methods", i, "budgets"], message: `none of these budgets is among the config's budgets (${budgetsOf(c).join(", ")})` });
    }
  });
  try {
    paramShapes(c.model as ModelSpec);
  } catch (err) {
    ctx.addIssue({ code: "custom", path: ["model"], message: (err as Error).message });
  }
  const folderProblem = datasetFolderProblem(c.dataset as DatasetSpec);
  if (folderProblem) ctx.addIssue({ code: "custom", path: ["dataset", "dir"], message: folderProblem });
});

export type ExperimentConfig = z.infer<typeof ConfigSchema>;
export type MethodEntry = ExperimentConfig["methods"][number];
export type FwConfig = z.infer<typeof FwSchema>;
export type RetrainParams = z.infer<typeof RetrainSchema>;
export type StepSizeSpec = z.infer<typeof StepSizeSchema>;
export type MomentumSpec = z.infer<typeof MomentumSchema>;

function datasetFolderProblem(spec: DatasetSpec): string | undefined {
  if (spec.name !== "idx" && spec.name !== "fashion-mnist") return undefined;
  const dir = spec.dir ?? FASHION_MNIST_DEBIAN_DIR;
  if (!fs.existsSync(dir)) return `folder ${JSON.stringify(dir)} does not exist; expected a folder holding ${Object.values(IDX_FILES).join(", ")} (each may end in .gz)`;
  return describeIdxFolderProblem(dir);
}

// ---------------------------------------------------------------- presets (PAPER.md "Our protocol", "Presets")

const DEFAULTS: Omit<ExperimentConfig, "name" | "dataset" | "seeds"> = {
  model: PAPER_CNN as ExperimentConfig["model"],
  pretrain: { epochs: 10, lr: 0.01, momentum: 0.9, batchSize: 64 },
  methods: [
    { name: "dense", method: "dense" },
    { name: "dense-retrained", method: "dense-retrained" },
    { name: "magnitude", method: "magnitude" },
    { name: "fw", method: "fw" },
    { name: "fw-momentum", method: "fw-momentum" },
  ],
  sparsity: 0.9,
  retrain: { epochs: 1, lr: 0.01, momentum: 0.9, batchSize: 64 },
  magnitude: { regrow: false, scope: "global" },
  fw: {
    iterations: 200,
    stepSize: { kind: "constant", gamma: 0.02 },
    momentum: { kind: "constant", beta: 0.9 },
    tau: 0.5,
    batchSize: 128,
    lmoSampleFraction: 1,
    loss: "crossentropy",
  },
  inference: { repeats: 5, batchSize: 1000 },
};

export const PRESETS: Record<"quick" | "paper", ExperimentConfig> = {
  paper: { ...structuredClone(DEFAULTS), preset: "paper", name: "paper", dataset: { name: "mnist" }, seeds: [0, 1, 2] },
  quick: {
    ...structuredClone(DEFAULTS),
    preset: "quick",
    name: "quick",
    dataset: { name: "mnist-embedded", trainSize: 8000, testSize: 2000, seed: 0 },
    seeds: [0],
    fw: { ...DEFAULTS.fw, iterations: 100 },
    inference: { repeats: 3, batchSize: 1000 },
    // Every method at every budget 1..10 (50 runs): 251 s from an empty cache with 2 workers on a quiet 2-core
    // machine (wasm; `fwprune sweep --preset quick`), within the 10-minute budget; about twice that under heavy load.
  },
};

export class ConfigError extends Error {}

/** Validate a config; throws ConfigError listing every problem as "field.path: expected … (got …)". */
export function validateConfig(input: unknown, source = "config"): ExperimentConfig {
  const result = ConfigSchema.safeParse(input);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const where = issue.path.length ? issue.path.join(".") : "(top level)";
    const got = valueAt(input, issue.path);
    return `  ${where}: ${issue.message}${got === undefined ? "" : ` (got ${JSON.stringify(got)})`}`;
  });
  throw new ConfigError(`${source} is invalid:\n${lines.join("\n")}`);
}

function valueAt(root: unknown, pathParts: (string | number)[]): unknown {
  let v = root;
  for (const p of pathParts) {
    if (typeof v === "string" && typeof p === "string" && p !== "name") return v; // a method given as a bare string
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string | number, unknown>)[p];
  }
  return v;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/**
 * Objects merge key by key, recursively; anything else (arrays included) in `over` replaces `base`. An object whose
 * `kind` differs from base's (a schedule of another kind) replaces it whole, so no field of the old kind lingers.
 */
export function deepMerge<T>(base: T, over: unknown): T {
  if (!isPlainObject(base) || !isPlainObject(over)) return (over === undefined ? base : over) as T;
  if ("kind" in over && over.kind !== base.kind) return over as T;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in out ? deepMerge(out[k], v) : v;
  return out as T;
}

/**
 * A full config from a partial one: deep-merged over the preset it names (`preset: "quick" | "paper"`), or over
 * the paper defaults (full MNIST, 3 seeds), then validated.
 */
export function resolveConfig(partial: unknown, source = "config"): ExperimentConfig {
  if (!isPlainObject(partial)) throw new ConfigError(`${source}: expected a JSON object, got ${JSON.stringify(partial)}`);
  const presetName = partial.preset;
  if (presetName !== undefined && presetName !== "quick" && presetName !== "paper") {
    throw new ConfigError(`${source} is invalid:\n  preset: expected "quick" or "paper" (got ${JSON.stringify(presetName)})`);
  }
  const base = presetName ? PRESETS[presetName] : { ...PRESETS.paper, preset: undefined, name: "custom" };
  const merged = deepMerge(structuredClone(base), partial) as Record<string, unknown>;
  // Another dataset replaces the base one whole (its fields belong to its name).
  if (isPlainObject(partial.dataset) && partial.dataset.name !== undefined && partial.dataset.name !== base.dataset.name) merged.dataset = partial.dataset;
  return validateConfig(merged, source);
}

/** `quick`, `paper`, or the path of a JSON file (deep-merged over the preset it names, or over defaults). */
export function loadConfig(presetOrFile: string): ExperimentConfig {
  if (presetOrFile === "quick" || presetOrFile === "paper") return validateConfig(structuredClone(PRESETS[presetOrFile]), `preset ${presetOrFile}`);
  if (!fs.existsSync(presetOrFile)) {
    throw new ConfigError(`--preset ${JSON.stringify(presetOrFile)}: expected "quick", "paper" or the path of a JSON config file; no such file`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(presetOrFile, "utf8"));
  } catch (err) {
    throw new ConfigError(`${presetOrFile}: not valid JSON (${(err as Error).message})`);
  }
  if (isPlainObject(parsed) && parsed.name === undefined) parsed.name = path.basename(presetOrFile).replace(/\.json$/i, "");
  return resolveConfig(parsed, presetOrFile);
}

/**
 * The budgets a method runs at: the config's (`budgets`, default 1..pretrain.epochs), restricted to the method's own
 * `budgets` list when it has one (so a preset's per-method list still fits a config with fewer pre-training epochs).
 */
export function budgetsOf(config: ExperimentConfig, entry?: MethodEntry): number[] {
  const all = config.budgets ?? Array.from({ length: config.pretrain.epochs }, (_, i) => i + 1);
  const list = entry?.budgets ? all.filter((b) => entry.budgets?.includes(b)) : all;
  return [...new Set(list)].sort((a, b) => a - b);
}

export function sparsitiesOf(config: ExperimentConfig, entry: MethodEntry): number[] {
  const s = entry.sparsity ?? config.sparsity;
  return [...new Set(Array.isArray(s) ? s : [s])].sort((a, b) => a - b);
}
