import { z } from "zod";
import { deriveSeed, shuffledIndices } from "../../random";
import { removedCount } from "../magnitude";
import { prunableLayout, unflatten } from "../mask";
import { registerMethod } from "../method";

/** The standard baseline of pruning comparisons: a seeded, uniformly random global mask at the target sparsity. */
export const random = registerMethod({
  name: "random",
  summary: "random pruning: remove round(s·n) weights drawn uniformly at random (seeded), then retrain",
  params: z.object({}).strict(),
  retrain: () => "masked",
  prune: async (checkpoint, _p, ctx) => {
    const layout = prunableLayout(checkpoint.graph);
    const n = layout.reduce((a, e) => a + e.length, 0);
    const flat = new Float32Array(n).fill(1);
    const order = shuffledIndices(n, deriveSeed(ctx.seed, "random-mask"));
    for (let i = 0, removed = removedCount(n, ctx.target); i < removed; i++) flat[order[i]] = 0;
    ctx.progress?.(1, 1);
    return { mask: unflatten(flat, layout), samplesUsed: 0 };
  },
});
