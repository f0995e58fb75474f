import { z } from "zod";
import { getWeights } from "../../model";
import { magnitudeMask } from "../magnitude";
import { registerMethod } from "../method";

export const MagnitudeParamsSchema = z
  .object({
    /** "global" ranks all prunable weights together; "per-layer" removes the same fraction from each kernel. */
    scope: z.enum(["global", "per-layer"]).default("global"),
    /** Retrain without the mask (the paper's Algorithm 2 as literally written): pruned weights may come back. */
    regrow: z.boolean().default(false),
  })
  .strict();
export type MagnitudeParams = z.infer<typeof MagnitudeParamsSchema>;

/** The paper's "simple pruning": remove exactly round(s·n) weights of smallest |w|, then retrain. */
export const magnitude = registerMethod<MagnitudeParams>({
  name: "magnitude",
  summary: "magnitude pruning: remove the round(s·n) weights of smallest |w| (global or per layer), then retrain",
  params: MagnitudeParamsSchema,
  retrain: (p) => (p.regrow ? "free" : "masked"),
  prune: async (checkpoint, p, ctx) => {
    const mask = magnitudeMask(checkpoint.graph, getWeights(checkpoint), ctx.target, p.scope);
    ctx.progress?.(1, 1);
    return { mask, samplesUsed: 0 };
  },
});
