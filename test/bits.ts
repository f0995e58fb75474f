// Helpers of the frozen-numerics kernel tests: inputs with signed zeros, and comparing float32 results bit for bit.
import { mulberry32 } from "../src/random";

/** Values in [−1, 1), a quarter of them ±0 (so that padded and zero taps give −0 products too). */
export function randomValues(shape: number[], seed: number): Float32Array {
  const rand = mulberry32(seed);
  return new Float32Array(shape.reduce((a, b) => a * b, 1)).map(() => {
    const r = rand();
    return r < 0.125 ? 0 : r < 0.25 ? -0 : 2 * rand() - 1;
  });
}

/** The first index where a and b differ in bits (or the shorter length, where only their lengths differ), else −1. */
export function firstBitDifference(a: Float32Array, b: Float32Array): number {
  const [ua, ub] = [new Uint32Array(a.buffer, a.byteOffset, a.length), new Uint32Array(b.buffer, b.byteOffset, b.length)];
  for (let i = 0; i < Math.min(ua.length, ub.length); i++) if (ua[i] !== ub[i]) return i;
  return ua.length === ub.length ? -1 : Math.min(ua.length, ub.length);
}
