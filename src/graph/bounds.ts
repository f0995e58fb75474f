import { GraphLimits } from "./types";

/**
 * What a graph may hold, checked from its shapes alone before any tensor is allocated. The defaults keep a model
 * well inside a few GiB; raise them per call (options.limits) or for a process with the environment variables
 * FWPRUNE_MAX_LAYERS, FWPRUNE_MAX_PARAMS, FWPRUNE_MAX_ACTIVATIONS, FWPRUNE_MAX_INPUT.
 */
export const DEFAULT_LIMITS: GraphLimits = {
  maxLayers: 1000,
  maxParams: 200e6,
  maxActivationsPerExample: 100e6,
  maxInputSize: 16e6,
};

const ENV: Record<keyof GraphLimits, string> = {
  maxLayers: "FWPRUNE_MAX_LAYERS",
  maxParams: "FWPRUNE_MAX_PARAMS",
  maxActivationsPerExample: "FWPRUNE_MAX_ACTIVATIONS",
  maxInputSize: "FWPRUNE_MAX_INPUT",
};

/** The limits in force: the defaults, then the environment, then `overrides`. */
export function graphLimits(overrides: Partial<GraphLimits> = {}): GraphLimits {
  const out = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(ENV) as (keyof GraphLimits)[]) {
    const raw = process.env[ENV[key]];
    if (raw === undefined || raw === "") continue;
    const v = Number(raw);
    if (!(v > 0)) throw new Error(`${ENV[key]}: expected a positive number, got ${JSON.stringify(raw)}`);
    out[key] = v;
  }
  for (const [key, v] of Object.entries(overrides) as [keyof GraphLimits, number | undefined][]) {
    if (v === undefined) continue;
    if (!(v > 0)) throw new Error(`limits.${key}: expected a positive number, got ${v}`);
    out[key] = v;
  }
  return out;
}

/** Throws when `value` exceeds limit `key`, naming what, the number and how to raise the limit. */
export function checkLimit(limits: GraphLimits, key: keyof GraphLimits, value: number, what: string): void {
  if (value > limits[key]) {
    throw new Error(
      `${what} is ${value.toLocaleString("en-US")}, over the limit of ${limits[key].toLocaleString("en-US")} (${key}; raise it with the option limits.${key} or ${ENV[key]})`,
    );
  }
}
