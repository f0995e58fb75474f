import { jStat } from "jstat";

/** t_{0.975, df}, the two-sided 95% quantile of Student's t (jStat, a well-kept statistics library). */
export function tQuantile975(df: number): number {
  if (!(Number.isInteger(df) && df >= 1)) throw new Error(`tQuantile975: df must be a positive integer, got ${df}`);
  return jStat.studentt.inv(0.975, df);
}

export interface Stats {
  mean: number;
  /** Sample standard deviation (n − 1); NaN for n < 2. */
  std: number;
  /** Half-width of the 95% confidence interval of the mean (t-distribution); NaN for n < 2. */
  ci95: number;
  count: number;
}

/** Stats of the finite values among `values`. */
export function summarize(values: number[]): Stats {
  const xs = values.filter((v) => Number.isFinite(v));
  const n = xs.length;
  if (n === 0) return { mean: NaN, std: NaN, ci95: NaN, count: 0 };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, std: NaN, ci95: NaN, count: n };
  const std = Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1));
  return { mean, std, ci95: ciHalfWidth(std, n), count: n };
}

/** Half-width of the 95% t-interval of a mean from the sample standard deviation of n values. */
export function ciHalfWidth(std: number, n: number): number {
  return n < 2 || !Number.isFinite(std) ? NaN : (tQuantile975(n - 1) * std) / Math.sqrt(n);
}

/** Centered moving average (window w, shrinking at the ends): minibatch losses are noisy. */
export function movingAverage(values: number[], w: number): number[] {
  const half = Math.floor(w / 2);
  return values.map((_, i) => {
    const lo = Math.max(0, i - half);
    const hi = Math.min(values.length, i + half + 1);
    let s = 0;
    for (let j = lo; j < hi; j++) s += values[j];
    return s / (hi - lo);
  });
}
