import { deriveSeed, shuffledIndices } from "../../random";
import { expandGroupMask, groupCount, groupLayout, selectGroups, summarizeStructure } from "../groups";
import { registerMethod } from "../method";
import { StructuredParams, StructuredParamsSchema } from "./structured-magnitude";

/** The structured sanity baseline: filters and neurons removed in a seeded random order, to the same target. */
export const structuredRandom = registerMethod<StructuredParams>({
  name: "structured-random",
  summary: "random filter/neuron pruning (seeded) to a FLOP (or group) target; the smaller model is retrained",
  params: StructuredParamsSchema,
  retrain: () => "surgered",
  prune: async (checkpoint, p, ctx) => {
    const model = checkpoint.graph;
    const layout = groupLayout(model);
    const n = groupCount(layout);
    const score = new Float32Array(n);
    shuffledIndices(n, deriveSeed(ctx.seed, "structured-random")).forEach((g, rank) => (score[g] = rank));
    const groups = selectGroups(model, layout, score, ctx.target, p.budget, p.scope);
    ctx.progress?.(1, 1);
    return { mask: expandGroupMask(model, groups), groups, details: { structure: summarizeStructure(model, groups, p.budget, ctx.target) }, samplesUsed: 0 };
  },
});
