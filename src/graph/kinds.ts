import { KindDef } from "./kind";
import { activation, add, avgPool, concatenate, dropout, flatten, globalAvgPool, globalMaxPool, input, maxPool, reshape } from "./kinds-plain";
import { batchNorm, conv2d, dense, depthwiseConv2d, separableConv2d } from "./kinds-weighted";
import { NodeKind } from "./types";

/** The table of node kinds: shapes, parameters, forward, Keras import/export. Nothing outside src/graph switches on kinds. */
export const KINDS: { [K in NodeKind]: KindDef<K> } = {
  input,
  conv2d,
  "depthwise-conv2d": depthwiseConv2d,
  "separable-conv2d": separableConv2d,
  "batch-norm": batchNorm,
  dense,
  activation,
  "max-pool": maxPool,
  "avg-pool": avgPool,
  "global-avg-pool": globalAvgPool,
  "global-max-pool": globalMaxPool,
  flatten,
  reshape,
  dropout,
  add,
  concatenate,
};

export function kindOf<K extends NodeKind>(kind: K): KindDef<K> {
  const def = KINDS[kind];
  if (!def) throw new Error(`node kind ${JSON.stringify(kind)} is not supported; expected one of ${Object.keys(KINDS).join(", ")}`);
  return def;
}

/** Which node kind reads each Keras class. */
export const KERAS_CLASSES: Record<string, NodeKind> = Object.fromEntries(
  (Object.keys(KINDS) as NodeKind[]).flatMap((kind) => KINDS[kind].kerasClasses.map((cls) => [cls, kind])),
);
