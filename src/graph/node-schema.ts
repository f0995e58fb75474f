import { z } from "zod";
import { ACTIVATIONS, ActivationName, NodeSpec } from "./types";

// zod schemas of the node list as written in a JSON config: each kind's config field by field, so a typo is named
// before the graph is built (buildGraph then checks shapes, inputs and bounds).

const size = z.number().int().positive().max(4096);
const pair = z.tuple([size, size]);
const padding = z.enum(["valid", "same"]);
const activation = z.enum(ACTIVATIONS as [ActivationName, ...ActivationName[]]);
const conv = { kernelSize: pair, strides: pair, padding, useBias: z.boolean(), activation };
const pool = { poolSize: pair, strides: pair, padding };
const none = z.object({}).strict();

const CONFIGS = {
  input: z.object({ shape: z.array(size).min(1).max(3) }).strict(),
  conv2d: z.object({ filters: size, ...conv }).strict(),
  "depthwise-conv2d": z.object({ depthMultiplier: size, ...conv }).strict(),
  "separable-conv2d": z.object({ filters: size, depthMultiplier: size, ...conv }).strict(),
  "batch-norm": z
    .object({
      axis: z.number().int(),
      momentum: z.number().min(0).lt(1),
      epsilon: z.number().positive().finite(),
      center: z.boolean(),
      scale: z.boolean(),
    })
    .strict(),
  dense: z.object({ units: size, useBias: z.boolean(), activation }).strict(),
  activation: z.object({ activation }).strict(),
  "max-pool": z.object(pool).strict(),
  "avg-pool": z.object(pool).strict(),
  "global-avg-pool": none,
  "global-max-pool": none,
  flatten: none,
  reshape: z.object({ targetShape: z.array(z.number().int().min(-1).max(1_000_000)).min(1).max(3) }).strict(),
  dropout: z.object({ rate: z.number().min(0).lt(1) }).strict(),
  add: none,
  concatenate: none,
};

const nodeName = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[^/\p{Cc}]+$/u, 'expected a name without "/" or control characters');

/** One node as a config writes it: `{ name, kind, inputs, config }` with the kind's own config fields. */
export const NodeSpecSchema = z.discriminatedUnion(
  "kind",
  Object.entries(CONFIGS).map(([kind, config]) =>
    z.object({ name: nodeName, kind: z.literal(kind), inputs: z.array(nodeName).max(64), config, kerasClass: z.string().optional() }).strict(),
  ) as unknown as [z.ZodDiscriminatedUnionOption<"kind">, ...z.ZodDiscriminatedUnionOption<"kind">[]],
) as unknown as z.ZodType<NodeSpec>;
