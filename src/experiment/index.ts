export * from "./config";
export * from "./plan";
export * from "./store";
export * from "./lock";
export { intactEpochs, pretrain, PretrainFailed, PretrainInfo, readPretrainInfo } from "./pretrain";
export { computeRecord, ensureBackend, ensureRecord } from "./run";
export * from "./sweep";
export { exportRun, ExportReport, formatExport } from "./export";
