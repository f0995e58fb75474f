import * as fs from "fs";
import * as path from "path";
import { z } from "zod";
import { datasetClasses, datasetProblems, datasetSchema, datasetShape } from "../datasets";
import { Method, RetrainMode, getMethod, methodNames } from "../prune/method";
import "../prune/methods";
import { PRESET_NAMES, PresetName, SAFE_NAME, SAFE_NAME_RULE, isPresetName } from "../paths";
import { ModelsSchema, modelProblems } from "./config-model";
import { PRESETS } from "./presets";

// zod: a well-kept schema library; every error below is reported as "<field path>: <what was expected> (got <value>)".

// Upper bounds keep a typo from exhausting memory or running for days; each is far above any sensible value.
const positiveInt = z.number().int().positive().max(1_000_000);
const nonNegativeInt = z.number().int().nonnegative();
const positiveNumber = z.number().positive().finite();
const fraction = z.number().min(0).lt(1);

const OptimizerFields = { lr: positiveNumber, momentum: fraction, batchSize: positiveInt.max(60_000) };
const PretrainSchema = z.object({ epochs: positiveInt.max(1000), ...OptimizerFields }).strict();
const RetrainSchema = z.object({ epochs: nonNegativeInt.max(1000), ...OptimizerFields }).strict();

/** Inference timing: R repeats over the first `samples` test images (all of them when absent), in batches. */
const InferenceSchema = z.object({ repeats: positiveInt.max(100), batchSize: positiveInt.max(10_000), samples: positiveInt.optional() }).strict();

/** Parameters given for a method (checked against the method's own schema when the config is resolved). */
const ParamsSchema = z.record(z.string(), z.unknown());

/** One entry of `methods`: a method name, or a named variant with parameters of its own. */
const MethodEntrySchema = z.preprocess(
  (v) => (typeof v === "string" ? { method: v } : v),
  z
    .object({
      /** The variant's name in tables and figures (default: the method's). */
      name: z
        .string()
        .regex(/^[^\p{Cc}]+$/u, "expected a name without control characters (newlines, tabs)")
        .optional(),
      method: z.string().min(1),
      params: ParamsSchema.optional(),
      sparsity: z.union([fraction, z.array(fraction).nonempty()]).optional(),
      retrain: RetrainSchema.partial().optional(),
      /** Run this method only at these of the config's budgets. */
      budgets: z.array(positiveInt).nonempty().optional(),
      /**
       * Matched comparisons, by another entry's name: `sparsity` prunes to exactly the sparsity that entry's run
       * reached (same seed, budget and target); `samples` retrains for exactly as many samples as that entry's run
       * consumed (pruning and retraining together) instead of `retrain.epochs`.
       */
      match: z
        .object({ sparsity: z.string().min(1).optional(), samples: z.string().min(1).optional() })
        .strict()
        .optional(),
    })
    .strict(),
);

export const ConfigSchema = z
  .object({
    /** A preset this config was merged over (informational once resolved). */
    preset: z.enum(PRESET_NAMES).optional(),
    name: z.string().regex(SAFE_NAME, `expected ${SAFE_NAME_RULE}`),
    /** One of the registered datasets (src/datasets), by name. */
    dataset: datasetSchema(),
    /** One model, or a list (the architecture becomes a dimension of the sweep): see ./config-model.ts. */
    model: ModelsSchema,
    pretrain: PretrainSchema,
    /** Pre-training budgets (checkpoint epochs) to evaluate; default 1..pretrain.epochs. */
    budgets: z.array(positiveInt).nonempty().optional(),
    seeds: z
      .array(
        z
          .number()
          .int()
          .nonnegative()
          .max(2 ** 31),
      )
      .nonempty()
      .max(100),
    methods: z.array(MethodEntrySchema).nonempty(),
    /** Parameters for every entry of a method, by method name (an entry's own `params` override them). */
    params: z.record(z.string(), ParamsSchema).optional(),
    sparsity: z.union([fraction, z.array(fraction).nonempty()]),
    retrain: RetrainSchema,
    inference: InferenceSchema,
  })
  .strict()
  .superRefine((c, ctx) => {
    const budgetsOk = (budgets: number[] | undefined, path: (string | number)[]) =>
      budgets?.forEach((b, i) => {
        if (b > c.pretrain.epochs)
          ctx.addIssue({
            code: "custom",
            path: [...path, i],
            message: `budget ${b} exceeds pretrain.epochs = ${c.pretrain.epochs}; expected 1..${c.pretrain.epochs}`,
          });
      });
    budgetsOk(c.budgets, ["budgets"]);
    const known = `expected one of ${methodNames().join(", ")}`;
    for (const name of Object.keys(c.params ?? {})) {
      if (!methodNames().includes(name)) ctx.addIssue({ code: "custom", path: ["params", name], message: `no method is called "${name}"; ${known}` });
    }
    const names = new Set<string>();
    c.methods.forEach((m, i) => {
      const name = m.name ?? m.method;
      if (names.has(name)) ctx.addIssue({ code: "custom", path: ["methods", i, "name"], message: `duplicate method name "${name}"; expected each name once` });
      names.add(name);
      if (!methodNames().includes(m.method)) {
        ctx.addIssue({ code: "custom", path: ["methods", i, "method"], message: `no method is called "${m.method}"; ${known}` });
        return;
      }
      const method = getMethod(m.method);
      if (m.sparsity !== undefined && !method.prune) {
        ctx.addIssue({ code: "custom", path: ["methods", i, "sparsity"], message: `method "${m.method}" does not prune; expected no sparsity` });
      }
      // The config-wide parameters of the method, then the entry's own, each checked where the user wrote it.
      const shared = c.params?.[m.method];
      if (shared !== undefined) paramIssues(method, shared, ["params", m.method]).forEach((issue) => ctx.addIssue(issue));
      if (m.params !== undefined)
        paramIssues(method, { ...shared, ...m.params }, ["methods", i, "params"], Object.keys(m.params)).forEach((issue) => ctx.addIssue(issue));
      if (m.budgets && budgetsOf(c, m).length === 0) {
        ctx.addIssue({
          code: "custom",
          path: ["methods", i, "budgets"],
          message: `none of these budgets is among the config's budgets (${budgetsOf(c).join(", ")})`,
        });
      }
      for (const [what, target] of Object.entries(m.match ?? {})) {
        const where = ["methods", i, "match", what];
        const other = c.methods.find((o) => (o.name ?? o.method) === target);
        const otherMethod = other && methodNames().includes(other.method) ? getMethod(other.method) : undefined;
        if (!other || !otherMethod) {
          ctx.addIssue({
            code: "custom",
            path: where,
            message: `no entry of methods is called "${target}"; expected one of ${c.methods.map((o) => o.name ?? o.method).join(", ")}`,
          });
        } else if (other.match) {
          ctx.addIssue({ code: "custom", path: where, message: `entry "${target}" is itself matched to another; expected an entry without match` });
        } else if (other.budgets && !budgetsOf(c, m).every((b) => budgetsOf(c, other).includes(b))) {
          ctx.addIssue({
            code: "custom",
            path: where,
            message: `entry "${target}" does not run at every budget this one does (${budgetsOf(c, m).join(", ")})`,
          });
        } else if (
          what === "sparsity" &&
          (!method.prune ||
            !otherMethod.prune ||
            m.sparsity !== undefined ||
            retrainMode(method, { ...shared, ...m.params }) === "surgered" ||
            retrainMode(otherMethod, { ...c.params?.[other.method], ...other.params }) === "surgered")
        ) {
          ctx.addIssue({
            code: "custom",
            path: where,
            message: `matching sparsity needs two methods that prune weights (got "${m.method}" and "${other.method}"; structured methods have no weight sparsity to match) and no sparsity of its own`,
          });
        } else if (
          what === "samples" &&
          (method.prune || retrainMode(method, { ...shared, ...m.params }) !== "free" || [other.sparsity ?? c.sparsity].flat().length !== 1)
        ) {
          ctx.addIssue({
            code: "custom",
            path: where,
            message: `matching samples needs a method that retrains freely without pruning (e.g. dense-retrained; got "${m.method}") and an entry with one target sparsity`,
          });
        }
      }
    });
    const dataProblems = datasetProblems(c.dataset);
    for (const [field, problem] of dataProblems) ctx.addIssue({ code: "custom", path: ["dataset", field], message: problem });
    const data = dataProblems.length > 0 ? undefined : { shape: datasetShape(c.dataset), classes: datasetClasses(c.dataset) };
    for (const [path, message] of modelProblems(c, data)) ctx.addIssue({ code: "custom", path, message });
  });

/** Issues of `params` against the method's schema, at `path` (only those under `own` keys when given). */
function paramIssues(method: Method, params: unknown, path: (string | number)[], own?: string[]): z.IssueData[] {
  const result = method.params.safeParse(params);
  if (result.success) return [];
  return result.error.issues
    .filter((issue) => !own || issue.code === "unrecognized_keys" || own.includes(String(issue.path[0])))
    .map((issue) => {
      const message =
        issue.code === "unrecognized_keys"
          ? `unknown parameter${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => JSON.stringify(k)).join(", ")} of method "${method.name}"; expected ${knownParams(method)}`
          : issue.message;
      return { code: "custom" as const, path: [...path, ...issue.path], message };
    });
}

/** How a method retrains with these (partial) parameters; undefined while they do not parse (reported elsewhere). */
function retrainMode(method: Method, params: unknown): RetrainMode | undefined {
  const parsed = method.params.safeParse(params);
  return parsed.success ? method.retrain(parsed.data) : undefined;
}

function knownParams(method: Method): string {
  const shape = (method.params as unknown as { shape?: Record<string, unknown> }).shape;
  const keys = shape ? Object.keys(shape) : [];
  return keys.length ? `only ${keys.join(", ")}` : "no parameters";
}

export type ParsedConfig = z.infer<typeof ConfigSchema>;

/** A `methods` entry resolved: its name, and the method's full parameters (defaults, then config-wide, then its own). */
export interface MethodEntry {
  name: string;
  method: string;
  params: Record<string, unknown>;
  sparsity?: number | number[];
  retrain?: Partial<RetrainParams>;
  budgets?: number[];
  match?: { sparsity?: string; samples?: string };
}

/** A validated config: every method entry resolved. */
export type ExperimentConfig = Omit<ParsedConfig, "methods"> & { methods: MethodEntry[] };
export type RetrainParams = z.infer<typeof RetrainSchema>;

function resolveEntries(c: ParsedConfig): ExperimentConfig {
  const methods = c.methods.map((m): MethodEntry => {
    const method = getMethod(m.method);
    const params = method.params.parse({ ...c.params?.[m.method], ...m.params });
    const entry: MethodEntry = { name: m.name ?? m.method, method: m.method, params };
    if (m.sparsity !== undefined) entry.sparsity = m.sparsity;
    if (m.retrain !== undefined) entry.retrain = m.retrain;
    if (m.budgets !== undefined) entry.budgets = m.budgets;
    if (m.match !== undefined) entry.match = m.match;
    return entry;
  });
  return { ...c, methods };
}

// ---------------------------------------------------------------- presets (the protocol's defaults)

/** A config as written (methods by name, parameters partial): what presets and JSON files hold. */
export type ConfigInput = z.input<typeof ConfigSchema>;

export class ConfigError extends Error {}

/** Configs validateConfig returned: passed again (runOne, sweep, export), they are not parsed again. */
const validated = new WeakSet<object>();
const rememberValidated = (config: ExperimentConfig) => (validated.add(config), config);

/**
 * Validate a config and resolve its method entries; throws ConfigError listing every problem as
 * "field.path: what was expected (got the value there)". An unknown key is named, not shown with its object.
 */
export function validateConfig(input: unknown, source = "config"): ExperimentConfig {
  if (typeof input === "object" && input !== null && validated.has(input)) return input as ExperimentConfig;
  const result = ConfigSchema.safeParse(input);
  if (result.success) return rememberValidated(resolveEntries(result.data));
  const lines = result.error.issues.map((issue) => {
    const where = issue.path.length ? issue.path.join(".") : "(top level)";
    if (issue.code === "unrecognized_keys") {
      return `  ${where}: unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}`;
    }
    const got = valueAt(input, issue.path);
    return `  ${where}: ${issue.message}${got === undefined ? "" : ` (got ${shortJson(got)})`}`;
  });
  throw new ConfigError(`${source} is invalid:\n${lines.join("\n")}`);
}

function shortJson(v: unknown): string {
  const text = typeof v === "function" ? "a function" : (JSON.stringify(v) ?? String(v));
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
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
 * A full config from a partial one: deep-merged over the preset it names (`preset: "quick"`, …), or over
 * the paper defaults (full MNIST, 3 seeds), then validated.
 */
export function resolveConfig(partial: unknown, source = "config"): ExperimentConfig {
  if (!isPlainObject(partial)) throw new ConfigError(`${source}: expected a JSON object, got ${JSON.stringify(partial)}`);
  const presetName = partial.preset;
  if (presetName !== undefined && !isPresetName(presetName)) {
    throw new ConfigError(`${source} is invalid:\n  preset: expected one of ${PRESET_NAMES.join(", ")} (got ${JSON.stringify(presetName)})`);
  }
  const base: ConfigInput = presetName ? PRESETS[presetName as PresetName] : { ...PRESETS.paper, preset: undefined, name: "custom" };
  const merged = deepMerge(structuredClone(base), partial) as Record<string, unknown>;
  // Another dataset replaces the base one whole (its fields belong to its name).
  if (isPlainObject(partial.dataset) && partial.dataset.name !== undefined && partial.dataset.name !== (base.dataset as { name: string }).name)
    merged.dataset = partial.dataset;
  // So does a model of another form (a node list over layers, a list of models), keeping `{"model": {"init": ...}}` a merge.
  const form = (m: unknown) => (Array.isArray(m) ? "list" : isPlainObject(m) && "nodes" in m ? "graph" : "layers");
  if (partial.model !== undefined && form(partial.model) !== form(base.model)) merged.model = partial.model;
  return validateConfig(merged, source);
}

/** A preset's name, or the path of a JSON file (deep-merged over the preset it names, or over defaults). */
export function loadConfig(presetOrFile: string): ExperimentConfig {
  if (isPresetName(presetOrFile)) return validateConfig(structuredClone(PRESETS[presetOrFile]), `preset ${presetOrFile}`);
  if (!fs.existsSync(presetOrFile)) {
    throw new ConfigError(`--preset ${JSON.stringify(presetOrFile)}: expected ${PRESET_NAMES.join(", ")} or the path of a JSON config file; no such file`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(presetOrFile, "utf8"));
  } catch (err) {
    throw new ConfigError(`${presetOrFile}: not valid JSON (${(err as Error).message})`);
  }
  if (isPlainObject(parsed) && parsed.name === undefined)
    parsed.name = path
      .basename(presetOrFile)
      .replace(/\.json$/i, "")
      .replace(/[^A-Za-z0-9_.-]+/g, "-");
  return resolveConfig(parsed, presetOrFile);
}

/**
 * The budgets a method runs at: the config's (`budgets`, default 1..pretrain.epochs), restricted to the method's own
 * `budgets` list when it has one (so a preset's per-method list still fits a config with fewer pre-training epochs).
 */
export function budgetsOf(config: { budgets?: number[]; pretrain: { epochs: number } }, entry?: { budgets?: number[] }): number[] {
  const all = config.budgets ?? Array.from({ length: config.pretrain.epochs }, (_, i) => i + 1);
  const list = entry?.budgets ? all.filter((b) => entry.budgets?.includes(b)) : all;
  return [...new Set(list)].sort((a, b) => a - b);
}

/** The target sparsities a method entry runs at (its own, else the config's); [null] for methods that do not prune. */
export function sparsitiesOf(config: ExperimentConfig, entry: MethodEntry): (number | null)[] {
  if (!getMethod(entry.method).prune) return [null];
  const matched = entry.match?.sparsity && config.methods.find((m) => m.name === entry.match?.sparsity);
  if (matched) return sparsitiesOf(config, matched);
  const s = entry.sparsity ?? config.sparsity;
  return [...new Set(Array.isArray(s) ? s : [s])].sort((a, b) => a - b);
}
