import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { publishFolder } from "../src/fsutil";
import { SMALL_CNN_CONFIG } from "./tiny-config";

// Exports are all or nothing: written into a temporary folder beside --out and renamed into place. On a real full
// disk (a 600 KiB tmpfs, mounted as root) a failed export leaves the previous one whole, or nothing at all.
const CLI = path.join(__dirname, "..", "dist", "cli.js");
const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `fwprune-export-atomic-${name}-`));
const snapshot = (dir: string) =>
  Object.fromEntries(
    fs
      .readdirSync(dir)
      .sort()
      .map((f) => [f, fs.readFileSync(path.join(dir, f)).toString("base64")]),
  );

test("publishFolder replaces a previous folder whole and refuses a folder with other files", () => {
  const dir = tmp("publish");
  const out = path.join(dir, "out");
  publishFolder(out, { "a.txt": Buffer.from("1"), "b.txt": Buffer.from("2") }, ["a.txt", "b.txt"]);
  publishFolder(out, { "a.txt": Buffer.from("3") }, ["a.txt", "b.txt"]);
  assert.deepEqual(fs.readdirSync(out), ["a.txt"], "the previous folder's other file is gone with it");
  assert.deepEqual(fs.readdirSync(dir), ["out"], "no temporary folder left");
  fs.writeFileSync(path.join(out, "mine.txt"), "user data");
  assert.throws(
    () => publishFolder(out, { "a.txt": Buffer.from("4") }, ["a.txt"], "--out"),
    /--out .*out holds mine\.txt; expected a missing or empty folder, or one this command wrote before/,
  );
  assert.equal(fs.readFileSync(path.join(out, "a.txt"), "utf8"), "3");
});

const root = typeof process.getuid === "function" && process.getuid() === 0;
const skip = !fs.existsSync(CLI) ? "dist/cli.js not built" : !root ? "needs root to mount a small tmpfs (a real full disk)" : false;

test("fwprune export onto a full disk: the previous export stays whole, or nothing is there; no temporary folder is left", { skip, timeout: 240_000 }, (t) => {
  const dir = tmp("disk");
  const dataDir = path.join(dir, "data");
  const configFile = path.join(dir, "config.json");
  fs.writeFileSync(configFile, JSON.stringify(SMALL_CNN_CONFIG));
  const mnt = path.join(dir, "mnt");
  fs.mkdirSync(mnt);
  const mount = spawnSync("mount", ["-t", "tmpfs", "-o", "size=600k", "tmpfs", mnt], { encoding: "utf8" });
  if (mount.status !== 0) {
    t.skip(`mount failed: ${mount.stderr.trim()}`);
    return;
  }
  try {
    const out = path.join(mnt, "out");
    const exportRun = (method: string) =>
      spawnSync(process.execPath, [CLI, "export", "--preset", configFile, "--method", method, "--budget", "1", "--out", out, "--data-dir", dataDir], {
        encoding: "utf8",
        env: { ...process.env, FWPRUNE_QUIET: "1" },
      });
    const first = exportRun("dense");
    assert.equal(first.status, 0, first.stderr);
    const before = snapshot(out);
    assert.deepEqual(Object.keys(before), ["model.fwsparse", "model.json", "sizes.json", "weights.bin"]);
    // Fill the disk, then free one page: model.json alone would fit, the whole export cannot.
    const filler = path.join(mnt, "filler");
    const fillAllButOnePage = () => {
      const fd = fs.openSync(filler, "a");
      try {
        for (;;) fs.writeSync(fd, Buffer.alloc(4096, 1));
      } catch (err) {
        assert.equal((err as NodeJS.ErrnoException).code, "ENOSPC");
      } finally {
        fs.closeSync(fd);
      }
      fs.truncateSync(filler, fs.statSync(filler).size - 4096);
    };
    fillAllButOnePage();
    const failed = exportRun("magnitude");
    assert.equal(failed.status, 1);
    assert.match(failed.stderr, /^fwprune: could not write .*ENOSPC/m);
    assert.doesNotMatch(failed.stderr, /\n\s+at /, "no stack trace");
    assert.deepEqual(snapshot(out), before, "the previous export, whole");
    assert.deepEqual(fs.readdirSync(mnt).sort(), ["filler", "out"], "no temporary folder left");
    fs.rmSync(out, { recursive: true });
    fillAllButOnePage();
    const nothing = exportRun("magnitude");
    assert.equal(nothing.status, 1);
    assert.deepEqual(fs.readdirSync(mnt), ["filler"], "nothing at --out, nothing half-written");
  } finally {
    spawnSync("umount", [mnt]);
  }
});
