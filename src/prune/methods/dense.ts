import { z } from "zod";
import { registerMethod } from "../method";

/** The checkpoint itself: no pruning, no retraining. */
export const dense = registerMethod({
  name: "dense",
  summary: "the pre-trained checkpoint as it is (no pruning, no retraining)",
  params: z.object({}).strict(),
  retrain: () => "none",
});
