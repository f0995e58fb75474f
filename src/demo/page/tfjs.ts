// The tfjs a page needs to run a layers model on the wasm backend, and nothing more: the demo's side-by-side baseline.
export * from "@tensorflow/tfjs-core";
export { loadLayersModel } from "@tensorflow/tfjs-layers";
export { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
