import { z } from "zod";
import { ModelGraph, asGraph, buildGraph, classCount, inputShape } from "../graph";
import { NodeSpecSchema } from "../graph/node-schema";
import { INIT_SCHEMES, InitScheme, ModelLike, ModelSpec } from "../model";
import type { GraphModelSpec } from "./architectures";

// A config's `model`: a sequential spec (the paper CNN's family, `layers`), or a model graph (`nodes`, any DAG the
// graph module supports); or a list of them, which makes the architecture a dimension of the sweep.

const positiveInt = z.number().int().positive().max(1_000_000);
const activation = z.enum(["relu", "linear"]);
const width = positiveInt.max(4096);
const LayerSchema = z.discriminatedUnion("type", [
  z
    .object({
      type: z.literal("conv2d"),
      filters: width,
      kernelSize: positiveInt.max(28),
      stride: positiveInt.max(28).optional(),
      padding: z.enum(["valid", "same"]).optional(),
      activation: activation.optional(),
    })
    .strict(),
  z.object({ type: z.literal("maxpool"), size: positiveInt.max(28) }).strict(),
  z.object({ type: z.literal("flatten") }).strict(),
  z.object({ type: z.literal("dense"), units: width, activation: activation.optional() }).strict(),
]);
const modelName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, "expected 1 to 64 letters, digits, _ . -, starting with a letter or digit");
/** Glorot-uniform kernels and zero biases (our protocol), or PyTorch's default: FW's sparsity depends on it. */
const init = z.enum(INIT_SCHEMES as [InitScheme, ...InitScheme[]]).default("glorot-uniform");
const ChainModelSchema = z
  .object({ name: modelName, inputShape: z.tuple([positiveInt, positiveInt, positiveInt]), layers: z.array(LayerSchema).nonempty(), init })
  .strict();
const GraphModelSchema = z.object({ name: modelName, nodes: z.array(NodeSpecSchema).min(2).max(10_000), init }).strict();
type OneModel = z.infer<typeof ChainModelSchema> | z.infer<typeof GraphModelSchema>;

/** The schema a value's form asks for, its issues reported where they are (a union would only say "Invalid input"). */
function byForm<T>(pick: (v: unknown) => z.ZodTypeAny) {
  return z.unknown().transform((v, ctx) => {
    const result = pick(v).safeParse(v);
    if (result.success) return result.data as T;
    for (const issue of result.error.issues) ctx.addIssue(issue as z.IssueData);
    return z.NEVER;
  });
}
const OneModelSchema = byForm<OneModel>((v) => (v !== null && typeof v === "object" && "nodes" in v ? GraphModelSchema : ChainModelSchema));

type OneModelInput = z.input<typeof ChainModelSchema> | z.input<typeof GraphModelSchema>;

/** One model (a sequential spec with `layers`, or a graph with `nodes`), or a list of models with distinct names. */
export const ModelsSchema = byForm<OneModel | [OneModel, ...OneModel[]]>((v) =>
  Array.isArray(v) ? z.array(OneModelSchema).nonempty().max(32) : OneModelSchema,
) as unknown as z.ZodType<OneModel | [OneModel, ...OneModel[]], z.ZodTypeDef, OneModelInput | OneModelInput[]>;

export type ConfigModel = ModelSpec | GraphModelSpec;

/** The config's models, as a list. */
export function modelsOf(config: { model: ConfigModel | ConfigModel[] }): ConfigModel[] {
  return Array.isArray(config.model) ? config.model : [config.model];
}

const graphs = new WeakMap<GraphModelSpec, ModelGraph>();

/** What createModel and the graph module take: the spec itself, or the graph built from the node list (once per object). */
export function modelLike(model: ConfigModel): ModelLike {
  if (!("nodes" in model)) return model;
  let graph = graphs.get(model);
  if (!graph) graphs.set(model, (graph = buildGraph(model.name, model.nodes)));
  return graph;
}

/** Problems of the config's models, as [path, message]: the graph does not build, names repeat, shapes miss the data's. */
export function modelProblems(config: { model: ConfigModel | ConfigModel[] }, data?: { shape: number[]; classes: number }): [(string | number)[], string][] {
  const problems: [(string | number)[], string][] = [];
  const names = new Set<string>();
  modelsOf(config).forEach((model, i) => {
    const at = Array.isArray(config.model) ? ["model", i] : ["model"];
    if (names.has(model.name)) problems.push([[...at, "name"], `duplicate model name "${model.name}"; expected each name once`]);
    names.add(model.name);
    let graph: ModelGraph;
    try {
      graph = asGraph(modelLike(model));
    } catch (err) {
      problems.push(["nodes" in model ? [...at, "nodes"] : at, (err as Error).message]);
      return;
    }
    if (!data) return;
    const shape = inputShape(graph);
    if (shape.length !== data.shape.length || shape.some((d, k) => d !== data.shape[k])) {
      const [where, what] = "nodes" in model ? ["nodes", ` (the model's input is ${shape.join("×")})`] : ["inputShape", ""];
      problems.push([[...at, where], `the dataset's images are ${data.shape.join("×")} (H×W×C); expected the model's input to be the same${what}`]);
    }
    if ("nodes" in model) {
      if (classCount(graph) !== data.classes)
        problems.push([[...at, "nodes"], `the model's logits have ${classCount(graph)} values; expected ${data.classes} (one per class of the dataset)`]);
    } else {
      const last = model.layers[model.layers.length - 1];
      if (last.type !== "dense" || last.units !== data.classes)
        problems.push([
          [...at, "layers", model.layers.length - 1],
          `the last layer must be dense with ${data.classes} units (one logit per class of the dataset)`,
        ]);
    }
  });
  return problems;
}
