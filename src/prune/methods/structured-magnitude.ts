import { z } from "zod";
import { getWeights } from "../../model";
import { expandGroupMask, l1GroupMask, summarizeStructure } from "../groups";
import { registerMethod } from "../method";

/**
 * The structured methods' shared parameters. `budget`: what the target (the config's `sparsity`) is a fraction of:
 * "flops" (the multiply-adds the surgered model keeps are at most (1 − target) of the dense model's) or "groups"
 * (round(target · G) filters and neurons removed). `scope`: rank the groups together ("global", by L1 norm relative
 * to the layer's mean) or remove the same fraction from every layer ("per-layer", Li et al. 2017).
 */
export const StructuredFields = {
  budget: z.enum(["flops", "groups"]).default("flops"),
  scope: z.enum(["global", "per-layer"]).default("per-layer"),
};
export const StructuredParamsSchema = z.object(StructuredFields).strict();
export type StructuredParams = z.infer<typeof StructuredParamsSchema>;

/** L1-norm filter pruning (Li et al. 2017): remove the filters and neurons of smallest L1 norm, then retrain the smaller model. */
export const structuredMagnitude = registerMethod<StructuredParams>({
  name: "structured-magnitude",
  summary: "L1-norm filter/neuron pruning (Li et al. 2017) to a FLOP (or group) target, per layer or global; the smaller model is retrained",
  params: StructuredParamsSchema,
  retrain: () => "surgered",
  prune: async (checkpoint, p, ctx) => {
    const model = checkpoint.graph;
    const { groups } = l1GroupMask(model, getWeights(checkpoint), ctx.target, p.budget, p.scope);
    ctx.progress?.(1, 1);
    return { mask: expandGroupMask(model, groups), groups, details: { structure: summarizeStructure(model, groups, p.budget, ctx.target) }, samplesUsed: 0 };
  },
});
