export * from "./config";
export { ConfigModel, modelLike, modelsOf } from "./config-model";
export { GraphModelSpec, residualNetSpec, separableNetSpec } from "./architectures";
export * from "./presets";
export * from "./plan";
export * from "./store";
export { SHIPPED_DIR } from "./shipped";
export * from "./lock";
export {
  cachedCheckpointProblem,
  checkpointIdentity,
  intactEpochs,
  loadCachedCheckpoint,
  pretrain,
  PretrainFailed,
  PretrainInfo,
  readPretrainInfo,
} from "./pretrain";
export { computeRecord, ensureBackend, ensureFinalModel, ensureRecord } from "./run";
export * from "./final-model";
export { fraction, positiveInteger, RunSelectionFlags, selectRun } from "./flags";
export * from "./sweep";
export * from "./run-one";
export { exportRun, ExportReport, formatExport } from "./export";
