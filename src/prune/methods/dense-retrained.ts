import { z } from "zod";
import { registerMethod } from "../method";

/** The fairness baseline: the checkpoint trained as many extra epochs as the pruning methods retrain, unpruned. */
export const denseRetrained = registerMethod({
  name: "dense-retrained",
  summary: "the checkpoint trained the same retraining epochs, unpruned (the same extra training as the pruned models)",
  params: z.object({}).strict(),
  retrain: () => "free",
});
