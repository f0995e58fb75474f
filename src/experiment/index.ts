export * from "./config";
export * from "./plan";
export * from "./store";
export { checkpointIntact, computeRun, datasetFor, ensureBackend, executeRun, intactEpochs, pretrain, PretrainFailed } from "./run";
export * from "./sweep";
