import { registerMethod } from "../method";
import { MomentumField, describeFwMomentum } from "./fw-momentum";
import { StructuredFwParams, StructuredFwParamsSchema, structuredFwPrune } from "./structured-fw";

/** Structured FW's parameters plus the momentum (β = 0.9 by default, as fw-momentum). */
export const StructuredFwMomentumParamsSchema = StructuredFwParamsSchema.extend(MomentumField);

/** Structured Frank-Wolfe with momentum: the group gradient replaced by a running average. */
export const structuredFwMomentum = registerMethod<StructuredFwParams>({
  name: "structured-fw-momentum",
  summary: "structured Frank-Wolfe with momentum (β = 0.9 by default) on filters/neurons; the smaller model is retrained",
  params: StructuredFwMomentumParamsSchema,
  describe: describeFwMomentum,
  retrain: () => "surgered",
  prune: structuredFwPrune,
});
