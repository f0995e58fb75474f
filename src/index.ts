// The public API the notebooks import (from "../dist"). Re-exports only.
export * from "./backend";
export * from "./paths";
export * from "./data";
export * from "./model";
export * from "./random";
export * from "./train";
export * from "./prune";
export * from "./experiment";
export * from "./analysis/stats";
export * from "./analysis/claims";
export * from "./report/frame";
export * from "./report/figures";
export * from "./report/display";
export { figureToPng, renderPng, closeBrowser, checkReport } from "./report/png";
export * from "./notebook";
