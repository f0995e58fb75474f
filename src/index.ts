// The public API the notebooks import (from "../dist"). Re-exports only.
export * from "./backend";
export * from "./data";
export * from "./model";
export * from "./random";
export * from "./train";
export * from "./prune";
