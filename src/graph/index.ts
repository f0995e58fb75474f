/** One model graph: every model fwprune trains, prunes, compiles or exports is one of these. */
export * from "./types";
export { DEFAULT_LIMITS, graphLimits } from "./bounds";
export { KINDS, KERAS_CLASSES } from "./kinds";
export { ROLE_SUFFIX, paramName } from "./kind";
export {
  BuildOptions,
  KernelFlops,
  buildGraph,
  classCount,
  deserializeGraph,
  serializeGraph,
  inputShape,
  kernelFlops,
  nodeNamed,
  paramCount,
  prunableParams,
  totalFlops,
  trainableParams,
} from "./graph";
export { asGraph, graphFromSpec } from "./from-spec";
export { ForwardOptions, Params, forward } from "./forward";
export {
  LayersModelManifest,
  WeightEntry,
  WeightLayout,
  graphFromLayersTopology,
  locateWeights,
  supportedKerasClasses,
  weightsFromManifest,
} from "./keras-import";
export { LayersModelJson, layersModelArtifacts, layersTopology } from "./keras-export";
export { ChannelFamily, ChannelGroups, ParamAxisGroups, ParamGroups, channelGroups, narrowedGraph } from "./channels";
