import { Momentum, MomentumSchema, describeMomentum } from "../schedules";
import { registerMethod } from "../method";
import { describeFw } from "./fw";
import { StructuredFwParams, StructuredFwParamsSchema, structuredFwPrune } from "./structured-fw";

/** Structured FW's parameters plus the momentum (β = 0.9 by default, as fw-momentum). */
export const StructuredFwMomentumParamsSchema = StructuredFwParamsSchema.extend({
  momentum: MomentumSchema.default({ kind: "constant", beta: 0.9 }),
});

/** Structured Frank-Wolfe with momentum: the group gradient replaced by a running average. */
export const structuredFwMomentum = registerMethod<StructuredFwParams>({
  name: "structured-fw-momentum",
  summary: "structured Frank-Wolfe with momentum (β = 0.9 by default) on filters/neurons; the smaller model is retrained",
  params: StructuredFwMomentumParamsSchema,
  describe: (p) => ({ ...describeFw(p), momentum: describeMomentum(p.momentum as Momentum) }),
  retrain: () => "surgered",
  prune: structuredFwPrune,
});
