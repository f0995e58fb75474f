import { Momentum, MomentumSchema, describeMomentum } from "../schedules";
import { registerMethod } from "../method";
import { FwParams, FwParamsSchema, describeFw, fwPrune } from "./fw";

/** The momentum parameter: dₜ = βₜ dₜ₋₁ + (1 − βₜ) gₜ, β = 0.9 by default (fw-momentum and structured-fw-momentum). */
export const MomentumField = { momentum: MomentumSchema.default({ kind: "constant", beta: 0.9 }) };

/** FW's parameters plus the momentum. */
export const FwMomentumParamsSchema = FwParamsSchema.extend(MomentumField);

export const describeFwMomentum = (p: FwParams) => ({ ...describeFw(p), momentum: describeMomentum(p.momentum as Momentum) });

/** Frank-Wolfe with momentum: the gradient replaced by a running average. */
export const fwMomentum = registerMethod<FwParams>({
  name: "fw-momentum",
  summary: "Frank-Wolfe with momentum (β = 0.9 by default, or Mokhtari's schedule, or your function), then retrained",
  params: FwMomentumParamsSchema,
  describe: describeFwMomentum,
  retrain: () => "masked",
  prune: fwPrune,
});
