/**
 * Compressed sparse rows over a kernel's outputs: the kernel [inputs, outputs] (row-major, tfjs's layout of dense
 * kernels and of conv kernels [kh, kw, c, co] read as [kh·kw·c, co]) as, for each output o, its non-zero weights
 * vals[rowPtr[o]..rowPtr[o + 1]) and where each one's input lies, idx (ascending within a row).
 */
export interface Csr {
  rows: number;
  rowPtr: Int32Array;
  idx: Int32Array;
  vals: Float32Array;
}

/**
 * The CSR of kernel [inputs, outputs]; `idxOf` maps an input number to the element number the sparse kernel reads
 * (the identity for a dense layer, a position in an input tile for a convolution). Exact zeros are left out.
 */
export function csrFromDense(kernel: Float32Array, inputs: number, outputs: number, idxOf: (input: number) => number): Csr {
  if (kernel.length !== inputs * outputs) throw new Error(`csrFromDense: kernel has ${kernel.length} values; expected ${inputs}×${outputs}`);
  const order = Array.from({ length: inputs }, (_, i) => i).sort((a, b) => idxOf(a) - idxOf(b));
  const rowPtr = new Int32Array(outputs + 1);
  let nonzeros = 0;
  for (let i = 0; i < kernel.length; i++) if (kernel[i] !== 0) nonzeros++;
  const idx = new Int32Array(nonzeros);
  const vals = new Float32Array(nonzeros);
  let j = 0;
  for (let o = 0; o < outputs; o++) {
    for (const i of order) {
      const v = kernel[i * outputs + o];
      if (v !== 0) {
        idx[j] = idxOf(i);
        vals[j++] = v;
      }
    }
    rowPtr[o + 1] = j;
  }
  return { rows: outputs, rowPtr, idx, vals };
}
