import { Momentum, MomentumSchema, describeMomentum } from "../schedules";
import { registerMethod } from "../method";
import { FwParams, FwParamsSchema, describeFw, fwPrune } from "./fw";

/** FW's parameters plus the momentum: dₜ = βₜ dₜ₋₁ + (1 − βₜ) gₜ, β = 0.9 by default. */
export const FwMomentumParamsSchema = FwParamsSchema.extend({
  momentum: MomentumSchema.default({ kind: "constant", beta: 0.9 }),
});

/** Frank-Wolfe with momentum: the gradient replaced by a running average. */
export const fwMomentum = registerMethod<FwParams>({
  name: "fw-momentum",
  summary: "Frank-Wolfe with momentum (β = 0.9 by default, or Mokhtari's schedule, or your function), then retrained",
  params: FwMomentumParamsSchema,
  describe: (p) => ({ ...describeFw(p), momentum: describeMomentum(p.momentum as Momentum) }),
  retrain: () => "masked",
  prune: fwPrune,
});
