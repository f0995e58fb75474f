import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { lockPath, planPretraining, planRuns, resolveConfig, sweep, tryLock } from "../src/experiment";
import { SMALL_CNN_CONFIG } from "./tiny-config";

// The weak spots of locks: a sweep waiting on another process's pre-training says so at once; an old lock left as a
// plain file (fwprune before leased locks) is an error with the hint to remove it, not an ENOTDIR.
const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `fwprune-lockmsg-${name}-`));

test("an old lock left as a plain file: a clear error naming it and what to do", async () => {
  const dataDir = tmp("plain");
  fs.mkdirSync(path.join(dataDir, "locks"), { recursive: true });
  const file = `${lockPath(dataDir, "somekey")}.lock`;
  fs.writeFileSync(file, JSON.stringify({ pid: 1, host: "old" }));
  await assert.rejects(() => tryLock(dataDir, "somekey"), new RegExp(`${file} is a plain file: a lock left by an older fwprune .*remove it \\(rm ${file}\\)`));
  // In a sweep: the pre-training lock left as a plain file (and long since stale) stops it with that message.
  const config = resolveConfig(SMALL_CNN_CONFIG);
  const [plan] = planPretraining(config, planRuns(config));
  const pretrainLockFile = `${lockPath(dataDir, `pretrain-${plan.key}`)}.lock`;
  fs.writeFileSync(pretrainLockFile, "old");
  const past = new Date(Date.now() - 3600_000);
  fs.utimesSync(pretrainLockFile, past, past);
  await assert.rejects(() => sweep(config, { dataDir, workers: 0 }), /is a plain file: a lock left by an older fwprune/);
});

test("a sweep waiting on another process's pre-training says so at once, then computes when the lock is gone", { timeout: 120_000 }, async () => {
  const dataDir = tmp("wait");
  const config = resolveConfig(SMALL_CNN_CONFIG);
  const [plan] = planPretraining(config, planRuns(config));
  const release = await tryLock(dataDir, `pretrain-${plan.key}`); // "another process" holding the pre-training
  assert.ok(release);
  const started = Date.now();
  let firstWaitAfter: number | undefined;
  let released = false;
  const result = await sweep(config, {
    dataDir,
    workers: 0,
    onProgress: (p) => {
      if (firstWaitAfter === undefined && p.event && /waiting for another process's pre-training of seed 0 \(its lock .* was renewed/.test(p.event)) {
        firstWaitAfter = Date.now() - started;
        if (!released) {
          released = true;
          void release(); // the other process gives up: this sweep takes the pre-training over
        }
      }
    },
  });
  assert.ok(firstWaitAfter !== undefined && firstWaitAfter < 5000, `said at once (after ${firstWaitAfter} ms)`);
  assert.equal(result.failed, 0);
  assert.equal(result.computed, 2);
});
