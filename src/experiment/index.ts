export * from "./config";
export { ConfigModel, modelLike, modelsOf } from "./config-model";
export { GraphModelSpec, residualNetSpec, separableNetSpec } from "./architectures";
export * from "./presets";
export * from "./plan";
export * from "./store";
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
export { computeRecord, ensureBackend, ensureRecord } from "./run";
export * from "./sweep";
export { exportRun, ExportReport, formatExport } from "./export";
