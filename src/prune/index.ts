// Pruning: masks, magnitude, Frank-Wolfe (plain and with momentum), schedules, and the methods (one file each).
export * from "./mask";
export * from "./select";
export * from "./magnitude";
export * from "./schedules";
export * from "./frank-wolfe";
export * from "./cnn-oracle";
export * from "./groups";
export * from "./surgery";
export * from "./group-oracle";
export * from "./method";
export * from "./methods";
export * from "./retrain";
