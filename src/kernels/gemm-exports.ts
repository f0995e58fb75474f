/**
 * gemm.wat's matrix product (relaxed SIMD fused multiply-add, 6×8 register tiles), bound to one tfjs wasm backend's
 * memory. relaxed_madd rounds once (FMA) or twice depending on the machine, so results can differ across machines at
 * rounding level; on one machine they are deterministic.
 */
export interface GemmExports {
  gemm(
    a: number,
    table: number,
    lda: number,
    b: number,
    bp: number,
    c: number,
    m: number,
    k: number,
    n: number,
    kcMax: number,
    runLen: number,
    runStride: number,
  ): void;
  packB(b: number, bp: number, k: number, n: number): void;
  /** packB for B's columns p..p + n − 1 of rows ldn floats long: b at B's column p, bp at packed B's panel p/8. */
  packPanels(b: number, bp: number, k: number, n: number, ldn: number): void;
  /** packPanels from Bᵀ [n, k] (rows ldk floats long): bT at Bᵀ's row p, bp at packed B's panel p/8. */
  packPanelsTransposed(bT: number, bp: number, k: number, n: number, ldk: number): void;
  setTwoRows(on: number): void;
  gemmPacked(
    a: number,
    table: number,
    lda: number,
    bp: number,
    c: number,
    m: number,
    k: number,
    n: number,
    kcMax: number,
    runLen: number,
    runStride: number,
    accumulate: number,
  ): void;
  /** gemmPacked for C's columns p..p + n − 1 of rows ldn floats long: bp at packed B's panel p/8, c at C's column p. */
  gemmPanels(
    a: number,
    table: number,
    lda: number,
    bp: number,
    c: number,
    m: number,
    k: number,
    n: number,
    ldn: number,
    kcMax: number,
    runLen: number,
    runStride: number,
    accumulate: number,
  ): void;
  gemmCol2im(
    dy: number,
    bp: number,
    dx: number,
    scratch: number,
    pixels: number,
    co: number,
    c: number,
    h: number,
    w: number,
    oh: number,
    ow: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    top: number,
    left: number,
  ): void;
}
