import * as fs from "node:fs";

/**
 * How long a kernel thread polls before it sleeps: a worker for its next job, this thread for the other threads' last
 * units. Within a training step the next job usually comes within a few tenths of a millisecond, sooner than a sleeping
 * thread wakes (about 60 µs on the machines measured). Polling takes a core, though, so it stops while this thread
 * waits for a core more than CONTENDED of the time (another busy process), and never starts where that cannot be read.
 */
export const SPIN_MICROSECONDS = 300;
/** The share of wall time this thread spent waiting for a core above which the threads sleep at once. */
export const CONTENDED = 0.2;
/** How often (ms) that share is measured. */
export const SPIN_WINDOW_MS = 250;

/** Milliseconds this thread has waited for a core so far (Linux's schedstat); undefined where it cannot be read. */
export function runQueueWaitMs(): number | undefined {
  try {
    const waitNs = Number(fs.readFileSync("/proc/thread-self/schedstat", "utf8").split(" ")[1]);
    return Number.isFinite(waitNs) ? waitNs / 1e6 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The polling time in µs for the window starting at `now`: SPIN_MICROSECONDS where this thread waited for a core at
 * most CONTENDED of the last window, 0 otherwise, before a first window, or where the wait cannot be read.
 */
export class SpinPolicy {
  private last: { at: number; waitMs: number } | undefined;
  private current = 0;

  constructor(private readonly readWaitMs: () => number | undefined = runQueueWaitMs) {}

  spinMicroseconds(now = performance.now()): number {
    if (this.last && now - this.last.at < SPIN_WINDOW_MS) return this.current;
    const waitMs = this.readWaitMs();
    if (waitMs === undefined) {
      this.last = undefined;
      return (this.current = 0);
    }
    if (this.last) this.current = (waitMs - this.last.waitMs) / (now - this.last.at) > CONTENDED ? 0 : SPIN_MICROSECONDS;
    this.last = { at: now, waitMs };
    return this.current;
  }
}
