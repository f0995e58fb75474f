import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import { CONTENDED, SPIN_MICROSECONDS, SPIN_WINDOW_MS, SpinPolicy, runQueueWaitMs } from "../src/kernels/spin";
import { claimSize, CONV_ROWS, GEMM_ROWS, IM2COL_IMAGES } from "../src/kernels/thread-jobs";
import { unitsPerClaim } from "../src/kernels/threads";

/** The claims a job's units are taken in, one after another, as the threads take them. */
function claims(kind: number, units: number, chunk: number, threads: number): number[] {
  const out: number[] = [];
  for (let first = 0; first < units;) {
    const size = claimSize(kind, first, units, chunk, threads);
    out.push(Math.min(size, units - first));
    first += size;
  }
  return out;
}

test("a job's claims: its chunk while much is left, then smaller ones, in the row tiles of gemm.wat and conv.wat", () => {
  // 128 images on 2 threads: chunk 8 until 32 are left, then ceil(left / 4) (worked out by hand).
  assert.equal(unitsPerClaim(128, 2), 8);
  assert.deepEqual(claims(IM2COL_IMAGES, 128, 8, 2), [...Array(13).fill(8), 6, 5, 4, 3, 2, 1, 1, 1, 1]);
  // 128 rows of C on 2 threads, chunk 12: the shares rounded up to 6 rows, the last claim the 2 rows left.
  assert.deepEqual(claims(GEMM_ROWS, 128, 12, 2), [...Array(9).fill(12), 6, 6, 6, 2]);
  assert.deepEqual(claims(CONV_ROWS, 23, 10, 3), [5, 5, 5, 5, 3]);
  for (const [kind, grain] of [
    [GEMM_ROWS, 6],
    [CONV_ROWS, 5],
    [IM2COL_IMAGES, 1],
  ]) {
    for (const threads of [2, 3, 8]) {
      for (const units of [1, 5, 6, 7, 64, 125, 1000, 3137]) {
        const chunk = Math.max(grain, Math.ceil(units / (threads * 8) / grain) * grain);
        const sizes = claims(kind, units, chunk, threads);
        assert.equal(
          sizes.reduce((a, b) => a + b, 0),
          units,
          "every unit claimed once",
        );
        sizes.forEach((size, i) => {
          assert.ok(size >= 1 && size <= chunk, `claim ${i} of ${size} (chunk ${chunk})`);
          if (i < sizes.length - 1) assert.equal(size % grain, 0, `claim ${i} of ${size}: not in ${grain}s`);
          if (i > 0) assert.ok(size <= sizes[i - 1], `claim ${i} larger than the one before`);
        });
        assert.ok(sizes[sizes.length - 1] <= grain, `the last claim of ${units} units on ${threads} threads is ${sizes[sizes.length - 1]}`);
      }
    }
  }
});

test("the kernel threads poll before sleeping only after a window in which this thread waited for a core at most CONTENDED of the time", () => {
  const waits: (number | undefined)[] = [];
  const policy = new SpinPolicy(() => waits.shift());
  const w = SPIN_WINDOW_MS;
  waits.push(1000);
  assert.equal(policy.spinMicroseconds(0), 0, "no window measured yet");
  assert.equal(policy.spinMicroseconds(w - 1), 0, "the same window: not read again");
  assert.equal(waits.length, 0);
  waits.push(1000 + 0.05 * w);
  assert.equal(policy.spinMicroseconds(w), SPIN_MICROSECONDS, "5% of the window waiting for a core");
  assert.equal(policy.spinMicroseconds(w + 10), SPIN_MICROSECONDS, "kept within the window");
  waits.push(1000 + 0.05 * w + (CONTENDED + 0.01) * 2 * w);
  assert.equal(policy.spinMicroseconds(3 * w), 0, "just over CONTENDED across a longer window");
  waits.push(1000 + 0.05 * w + (CONTENDED + 0.01) * 2 * w + CONTENDED * w);
  assert.equal(policy.spinMicroseconds(4 * w), SPIN_MICROSECONDS, "exactly CONTENDED");
  waits.push(undefined);
  assert.equal(policy.spinMicroseconds(5 * w), 0, "unreadable: no polling");
  waits.push(5000);
  assert.equal(policy.spinMicroseconds(6 * w), 0, "a new first window after an unreadable one");
});

test(
  "this thread's wait for a core is read from Linux's schedstat, and grows only",
  { skip: !fs.existsSync("/proc/thread-self/schedstat") && "no /proc/thread-self/schedstat here" },
  () => {
    const first = runQueueWaitMs();
    assert.ok(first !== undefined && first >= 0, `read ${first}`);
    let x = 0;
    for (let i = 0; i < 1e6; i++) x += Math.sqrt(i);
    assert.ok(x > 0);
    const second = runQueueWaitMs();
    assert.ok(second !== undefined && second >= first, `${second} after ${first}`);
  },
);
