/** One binary mask per prunable kernel (1 = kept, 0 = pruned), keyed by kernel name, same length as the kernel. */
export type Mask = Record<string, Float32Array>;
