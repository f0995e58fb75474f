import * as fs from "fs";
import * as path from "path";
import * as lockfile from "proper-lockfile";

/**
 * Cross-process locks on keys of a data folder, as leases (proper-lockfile: an atomic mkdir whose mtime the holder
 * renews every `update` ms). A lock not renewed for `stale` ms (its owner died, on this host or another) is taken
 * over, whatever its PID or host. The holder keeps its event loop turning (training yields between batches), so a
 * live lock is renewed; were it ever taken over anyway, both processes compute the same run and write the same
 * record atomically: wasted work, no corruption.
 */
export function lockTimings(env: Record<string, string | undefined> = process.env): { stale: number; update: number } {
  const text = env.FWPRUNE_LOCK_STALE_SECONDS?.trim();
  const seconds = text ? Number(text) : 60;
  if (!(Number.isFinite(seconds) && seconds >= 2 && seconds <= 86_400)) {
    throw new Error(`FWPRUNE_LOCK_STALE_SECONDS: expected a number of seconds in [2, 86400], got ${JSON.stringify(text)}`);
  }
  const stale = Math.round(seconds * 1000);
  return { stale, update: Math.max(500, Math.floor(stale / 4)) };
}

export const lockPath = (dataDir: string, key: string) => path.join(dataDir, "locks", key);

/** Take the lock for `key` now, or return undefined when a live process holds it. */
export async function tryLock(dataDir: string, key: string): Promise<(() => Promise<void>) | undefined> {
  const file = lockPath(dataDir, key);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const held = `${file}.lock`;
  if (fs.existsSync(held) && !fs.statSync(held).isDirectory()) {
    throw new Error(
      `${held} is a plain file: a lock left by an older fwprune (today's locks are folders). No process of this version holds it; ` +
        `once no older fwprune runs on this data folder, remove it (rm ${held}) and start again`,
    );
  }
  try {
    const release = await lockfile.lock(file, {
      ...lockTimings(),
      realpath: false,
      retries: 0,
      onCompromised: (err) => console.error(`fwprune: the lock on ${key} was taken over (${err.message}); another process may compute the same run`),
    });
    return async () => {
      try {
        await release();
      } catch {
        // already released or taken over: nothing of ours to remove
      }
    };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ELOCKED") return undefined;
    throw err;
  }
}

/** Seconds since the holder of `key`'s lock last renewed it (undefined when no lock is held). */
export function lockAgeSeconds(dataDir: string, key: string): number | undefined {
  try {
    return (Date.now() - fs.statSync(`${lockPath(dataDir, key)}.lock`).mtimeMs) / 1000;
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Wait for the lock on `key` (polling), calling `stillNeeded` between tries and once more after taking it: when it
 * returns false (another process did the work meanwhile), give up (undefined). `onWait` hears how long it has waited.
 */
export async function waitForLock(
  dataDir: string,
  key: string,
  stillNeeded: () => boolean,
  opts: { pollMs?: number; onWait?: (waitedSeconds: number) => void } = {},
): Promise<(() => Promise<void>) | undefined> {
  const started = Date.now();
  for (;;) {
    if (!stillNeeded()) return undefined;
    const release = await tryLock(dataDir, key);
    if (release) {
      if (stillNeeded()) return release;
      await release();
      return undefined;
    }
    opts.onWait?.((Date.now() - started) / 1000);
    await sleep(opts.pollMs ?? 1000);
  }
}
