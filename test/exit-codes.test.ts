import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { SMALL_CNN_CONFIG } from "./tiny-config";

// Exit codes that tell: a sweep with failed runs exits non-zero and says how many; results --fail-if-missing counts
// failed runs as missing; user errors are one line without a stack trace (the stack with FWPRUNE_DEBUG=1).
const CLI = path.join(__dirname, "..", "dist", "cli.js");
const skip = !fs.existsSync(CLI) && "dist/cli.js not built";
const env = { ...process.env, FWPRUNE_QUIET: "1" };
const cli = (args: string[], extraEnv: Record<string, string> = {}) =>
  spawnSync(process.execPath, [CLI, ...args], { env: { ...env, ...extraEnv }, encoding: "utf8", timeout: 120_000 });

test("a sweep in which every run fails exits non-zero and says how many; results --fail-if-missing counts them", { skip, timeout: 240_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-exit-"));
  const configFile = path.join(dir, "config.json");
  fs.writeFileSync(configFile, JSON.stringify({ ...SMALL_CNN_CONFIG, name: "exit-codes-test", pretrain: { epochs: 1, lr: 1e12 } }));
  const swept = cli(["sweep", "--preset", configFile, "--data-dir", dir, "--workers", "0", "--no-progress"]);
  assert.equal(swept.status, 1, swept.stderr);
  assert.match(swept.stderr, /fwprune: 2 of 2 runs failed \(listed above\)/);
  const results = cli(["results", "--preset", configFile, "--data-dir", dir, "--fail-if-missing"]);
  assert.equal(results.status, 1, results.stdout);
  assert.match(results.stdout, /2 of 2 runs of exit-codes-test found .* \(2 of them failed\)/);
  assert.match(results.stdout, /failed: dense budget 1 seed 0: pretraining \(seed 0\) failed: training loss became/);
  assert.equal(cli(["results", "--preset", configFile, "--data-dir", dir]).status, 0, "without --fail-if-missing a table is a table");
  // Cached failures still count: the sweep again, with nothing to compute, exits 1 too.
  assert.equal(cli(["sweep", "--preset", configFile, "--data-dir", dir, "--workers", "0", "--no-progress"]).status, 1);
});

test("a bad IDX file is one line naming the file, no stack trace; FWPRUNE_DEBUG=1 shows the stack", { skip, timeout: 120_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-badidx-"));
  const idx = path.join(dir, "idx");
  fs.mkdirSync(idx);
  // The image files' headers are right (the config's check reads them for the shape), the labels are garbage: the
  // sweep finds out only when it loads them.
  const images = Buffer.alloc(16 + 2 * 28 * 28);
  [0x803, 2, 28, 28].forEach((v, i) => images.writeUInt32BE(v, 4 * i));
  for (const f of ["train-images-idx3-ubyte", "t10k-images-idx3-ubyte"]) fs.writeFileSync(path.join(idx, f), images);
  for (const f of ["train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"]) fs.writeFileSync(path.join(idx, f), "garbage");
  const configFile = path.join(dir, "config.json");
  fs.writeFileSync(configFile, JSON.stringify({ ...SMALL_CNN_CONFIG, name: "exit-codes-test", dataset: { name: "idx", dir: idx } }));
  for (const workers of ["0", "1"]) {
    const r = cli(["sweep", "--preset", configFile, "--data-dir", dir, "--workers", workers, "--no-progress"]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^fwprune: pretraining seed 0 to epoch 1 failed: .*train-labels-idx1-ubyte: wrong magic number 0x67617262, expected 0x00000801/);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
  const debug = cli(["sweep", "--preset", configFile, "--data-dir", dir, "--workers", "0", "--no-progress"], { FWPRUNE_DEBUG: "1" });
  assert.match(debug.stderr, /\n\s+at readIdx /);
});
