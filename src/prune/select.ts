/**
 * Rearrange `idx` so that its first `count` entries are the `count` smallest under `less` (a strict total order,
 * so the chosen SET is unique: ties must be broken inside `less`, e.g. by index). Expected O(n): Hoare's FIND
 * with a median-of-three pivot, no full sort. The order inside the first `count` entries is unspecified.
 */
export function selectSmallest(idx: Int32Array, count: number, less: (a: number, b: number) => boolean): void {
  if (count <= 0 || count >= idx.length) return;
  const target = count - 1;
  let lo = 0;
  let hi = idx.length - 1;
  const swap = (i: number, j: number) => {
    const t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
  };
  while (hi > lo) {
    const mid = (lo + hi) >>> 1;
    if (less(idx[mid], idx[lo])) swap(mid, lo);
    if (less(idx[hi], idx[lo])) swap(hi, lo);
    if (less(idx[hi], idx[mid])) swap(hi, mid);
    const pivot = idx[mid];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (less(idx[i], pivot)) i++;
      while (less(pivot, idx[j])) j--;
      if (i <= j) {
        swap(i, j);
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
}

/** Indices 0..n-1. */
export function range(n: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  return out;
}
