import * as tf from "@tensorflow/tfjs-core";
import { makeBatchMatMulConfig } from "./batch-mat-mul";
import { makeSplitFusedConv2DConfig } from "./batch-split";
import { batchNormGradConfig, reluGradConfig, squareGradConfig } from "./batch-norm-grad";
import { batchNormTrainConfig, batchNormTrainGradConfig, batchNormTrainGradient } from "./batch-norm-train";
import { makeConv2DConfig } from "./conv2d";
import { conv2DBackpropFilterConfig } from "./conv2d-backprop-filter";
import { makeConv2DBackpropInputConfig } from "./conv2d-backprop-input";
import { makeFusedConv2DConfig } from "./fused-conv2d";
import { depthwiseBackpropFilterConfig, depthwiseBackpropInputConfig } from "./depthwise-backprop";
import { makeAddConfig, makeFusedBatchNormConfig, makeMultiplyConfig, makeRealDivConfig, makeSubConfig } from "./elementwise";
import { makeCastConfig, makeIdentityConfig } from "./identity";
import { useFastGradients } from "./gradients";
import { makeMaxPoolConfig } from "./max-pool";
import { makeTransposeConfig } from "./transpose";
import { maxPoolGradConfig } from "./max-pool-grad";
import { momentumStepConfig } from "./momentum";
import { makePadV2Config } from "./pad";
import { makeMeanConfig, makeSumConfig } from "./sum";
import { makeTileConfig } from "./tile";
import { overrideWasmKernel } from "./util";
import { shareWasmHeap } from "./shared-heap";
import { makeSliceConfig } from "./slice";
import { guardKernels } from "./deferred";

export { filledTensor, readFloatsInto, valuesOf } from "./deferred";

export { FusedMomentumOptimizer, MOMENTUM_STEP } from "./momentum";
export { enableRelaxedGemm, hasRelaxedGemm } from "./gemm";
export { enableConvProduct } from "./fused-conv2d";
export { batchNormTraining, enableFusedBatchNormTraining } from "./batch-norm-train";
export { MIN_SPLIT_MACS, splitConvolutions, splitWorkersReady, whenSplitWorkersReady } from "./batch-split";
export {
  THREADS_HELP,
  continuedWorkCount,
  coreCount,
  deferredJobCount,
  isDeferred,
  kernelThreads,
  parseThreads,
  setKernelThreads,
  shutdownKernelThreads,
  threadedProducts,
  threadsFlag,
} from "./threads";
export { enableDeferredFilterGrad } from "./threaded-conv";
export { importingSharedMemory, sharedHeapOf, withSharedMemory } from "./shared-heap";
export { useFastGradients } from "./gradients";
export { cpuClockMs, profileKernels } from "./profile";
export type { KernelProfiler, KernelTiming } from "./profile";

/**
 * Gradient kernels the wasm backend lacks (Conv2DBackpropFilter, the depthwise convolution's two) or runs slowly
 * (the others; batch norm's elementwise ops, Tile and Mean), Conv2D and BatchMatMul on relaxed SIMD where
 * available (gemm.ts), and wasm's own FusedConv2D split by images between the kernel threads (batch-split.ts),
 * registered once, before the backend starts (which then loads with a shared heap: shared-heap.ts). Kernels that
 * fall back to wasm's own keep its setup function. With them, the gradients (tfjs-core's and ours), except in a thread
 * that only infers (`training` false).
 */
let registered = false;
let gradientsRegistered = false;
export function registerWasmKernels(opts: { training?: boolean } = {}): void {
  if (opts.training !== false && !gradientsRegistered) {
    tf.registerGradient(batchNormTrainGradient);
    useFastGradients();
    gradientsRegistered = true;
  }
  if (registered) return;
  const wasmKernel = (name: string) => {
    const config = tf.getKernel(name, "wasm");
    if (!config) throw new Error(`wasm kernel ${name} is not registered; import "@tensorflow/tfjs-backend-wasm" first`);
    return config;
  };
  const configs = [
    makeConv2DConfig(wasmKernel(tf.Conv2D)),
    // conv.wat's product where it applies (no bias, no activation), else tfjs's own split by images between threads
    makeFusedConv2DConfig(makeSplitFusedConv2DConfig(wasmKernel(tf.FusedConv2D))),
    makePadV2Config(wasmKernel(tf.PadV2)),
    conv2DBackpropFilterConfig,
    makeConv2DBackpropInputConfig(wasmKernel(tf.Conv2DBackpropInput)),
    depthwiseBackpropFilterConfig,
    depthwiseBackpropInputConfig,
    makeMaxPoolConfig(wasmKernel(tf.MaxPool)),
    maxPoolGradConfig,
    makeSumConfig(wasmKernel(tf.Sum)),
    makeMeanConfig(wasmKernel(tf.Mean)),
    makeTileConfig(wasmKernel(tf.Tile)),
    makeMultiplyConfig(wasmKernel(tf.Multiply)),
    makeAddConfig(wasmKernel(tf.Add)),
    makeSubConfig(wasmKernel(tf.Sub)),
    makeRealDivConfig(wasmKernel(tf.RealDiv)),
    makeFusedBatchNormConfig(wasmKernel(tf.FusedBatchNorm)),
    makeBatchMatMulConfig(wasmKernel(tf.BatchMatMul)),
    makeTransposeConfig(wasmKernel(tf.Transpose)),
    makeIdentityConfig(wasmKernel(tf.Identity)),
    makeSliceConfig(wasmKernel(tf.Slice)),
    makeCastConfig(wasmKernel(tf.Cast)),
    momentumStepConfig,
    batchNormGradConfig,
    reluGradConfig,
    squareGradConfig,
    batchNormTrainConfig,
    batchNormTrainGradConfig,
  ];
  for (const config of configs) overrideWasmKernel(config);
  guardKernels(); // every kernel, tfjs's and these: none may read a deferred job's output before it is done
  shareWasmHeap(); // before the backend starts, so that the kernel threads work on its heap
  registered = true;
}
