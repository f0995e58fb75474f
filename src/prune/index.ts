// Pruning: masks, magnitude, Frank-Wolfe (plain and with momentum), schedules, one registry of methods.
export * from "./mask";
export * from "./select";
export * from "./magnitude";
export * from "./schedules";
export * from "./frank-wolfe";
export * from "./cnn-oracle";
export * from "./registry";
export * from "./methods";
export * from "./retrain";
