// Writes that never publish half a file: short writes, a failing write, a real full disk.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { assertWritableFolder, publishFolder, writeFileAtomic } from "../src/fsutil";
import { resolveConfig, sweep } from "../src/experiment";

// The module object itself (not the import namespace), so that a mock is seen by src/fsutil.ts's own import.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const nodeFs = require("fs") as typeof fs;
const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `fwprune-fs-${name}-`));

test("short writes: every byte lands, in as many writes as it takes", (t) => {
  const dir = tmp("short");
  const file = path.join(dir, "out.bin");
  const data = Buffer.from(Array.from({ length: 10_000 }, (_, i) => i % 251));
  const real = nodeFs.writeSync;
  let calls = 0;
  // At most 7 bytes per call, as a nearly full or interrupted disk may do.
  t.mock.method(nodeFs, "writeSync", (fd: number, buf: Uint8Array, offset: number, length: number) => {
    calls++;
    return real(fd, buf, offset, Math.min(7, length));
  });
  writeFileAtomic(file, data);
  t.mock.restoreAll();
  assert.ok(calls >= 10_000 / 7, `${calls} writes`);
  assert.deepEqual(fs.readFileSync(file), data);
  assert.deepEqual(fs.readdirSync(dir), ["out.bin"], "no temporary file left");
});

test("a write that fails or writes nothing: the error names the file, no partial file appears, the old one stays", (t) => {
  const dir = tmp("fail");
  const file = path.join(dir, "record.json");
  fs.writeFileSync(file, "the previous version");
  t.mock.method(nodeFs, "writeSync", () => 0);
  assert.throws(() => writeFileAtomic(file, "new content"), new RegExp(`could not write ${file}: wrote 0 of the remaining 11 bytes`));
  t.mock.restoreAll();
  const enospc = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
  t.mock.method(nodeFs, "writeSync", () => {
    throw enospc;
  });
  assert.throws(() => writeFileAtomic(file, "new content"), new RegExp(`could not write ${file}: ENOSPC`));
  t.mock.restoreAll();
  assert.equal(fs.readFileSync(file, "utf8"), "the previous version");
  assert.deepEqual(fs.readdirSync(dir), ["record.json"], "temporary files removed");
  assert.throws(() => writeFileAtomic(path.join(file, "below-a-file.json"), "x"), /could not write .*record\.json\/below-a-file\.json: (ENOTDIR|EEXIST)/);
});

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

test(
  "a real full disk (a 600 KB tmpfs): the sweep fails naming the checkpoint, and no partial file appears",
  { skip: !isRoot && "needs root to mount a tmpfs" },
  async (t) => {
    const dir = tmp("full");
    const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=600k", "tmpfs", dir], { encoding: "utf8" });
    if (mounted.status !== 0) return t.skip(`mount -t tmpfs failed: ${mounted.stderr.trim()}`);
    t.after(() => spawnSync("umount", [dir]));
    const config = resolveConfig({
      preset: "quick",
      dataset: { name: "mnist-embedded", limitTrain: 200, limitTest: 100 },
      pretrain: { epochs: 1 },
      methods: ["dense"],
      inference: { repeats: 1 },
    });
    // A paper-CNN checkpoint is about 900 KB: it cannot fit.
    await assert.rejects(sweep(config, { dataDir: dir, workers: 0 }), /could not write .*epoch-001\.ckpt: ENOSPC/);
    const files = (d: string): string[] =>
      fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(d, e.name)) : [path.join(d, e.name)]));
    const left = files(dir);
    assert.ok(!left.some((f) => f.endsWith(".ckpt") || f.endsWith(".tmp")), `no checkpoint or temporary file: ${left.join(", ")}`);
    assert.ok(!left.some((f) => f.includes(`${path.sep}runs${path.sep}`)), "no run record");
  },
);

test("publishFolder: a folder appears whole, replaces an earlier one, and a failing write leaves the earlier one as it was", (t) => {
  const parent = tmp("folder");
  const out = path.join(parent, "out");
  const NAMES = ["a.txt", "b.bin", "b.txt"];
  publishFolder(out, { "a.txt": "one", "b.bin": new Uint8Array([1, 2, 3]) }, NAMES);
  assert.deepEqual(fs.readdirSync(out).sort(), ["a.txt", "b.bin"]);
  publishFolder(out, { "a.txt": "two" }, NAMES);
  assert.deepEqual(fs.readdirSync(out), ["a.txt"]);
  assert.equal(fs.readFileSync(path.join(out, "a.txt"), "utf8"), "two");
  assert.deepEqual(fs.readdirSync(parent), ["out"], "no temporary or old folder left");

  const real = nodeFs.writeSync;
  let calls = 0;
  t.mock.method(nodeFs, "writeSync", (...args: Parameters<typeof fs.writeSync>) => {
    if (++calls === 2) throw Object.assign(new Error("no space left on device"), { code: "ENOSPC" });
    return (real as (...a: unknown[]) => number)(...args);
  });
  assert.throws(() => publishFolder(out, { "a.txt": "three", "b.txt": "four" }, NAMES), /could not write .*out.*ENOSPC/);
  t.mock.restoreAll();
  assert.deepEqual(fs.readdirSync(out), ["a.txt"]);
  assert.equal(fs.readFileSync(path.join(out, "a.txt"), "utf8"), "two");
  assert.deepEqual(fs.readdirSync(parent), ["out"], "the new folder was removed");
  fs.rmSync(parent, { recursive: true, force: true });
});

test("a data folder that cannot be written is refused before any work, even as root (where access() says yes to /proc)", () => {
  assert.throws(
    () => assertWritableFolder("/proc/fwprune-data"),
    /data folder \/proc\/fwprune-data: \/proc is not writable \(\w+\); expected a folder this user can write/,
  );
  const dir = tmp("writable");
  assertWritableFolder(path.join(dir, "new", "data"));
  assert.deepEqual(fs.readdirSync(dir), [], "the check leaves nothing behind");
});
