// Writes that never publish half a file: short writes, a failing write, a real full disk.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { assertWritableFolder, publishFolder, removeOrphanedTemporaries, writeFileAtomic } from "../src/fsutil";
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

/**
 * Run `call` (a call to src/fsutil.ts's `writeFileAtomic` or `publishFolder`) in a process that stops for good right
 * after its `stopAfter`-th call to fs.`at`, then kill -9 it there: what a crash at that point leaves behind. With
 * `zombie`, its parent is a `sleep` that never reaps it, so that it stays a zombie until the returned `done()`.
 */
async function killedIn(call: string, at: "fsyncSync" | "renameSync", stopAfter: number, zombie = false): Promise<() => void> {
  const source = `
    const fs = require("fs");
    const real = fs.${at};
    let calls = 0;
    fs.${at} = (...args) => {
      const result = real(...args);
      if (++calls === ${stopAfter}) {
        process.stdout.write("stopped " + process.pid + "\\n");
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000);
      }
      return result;
    };
    const { writeFileAtomic, publishFolder } = require(${JSON.stringify(path.join(__dirname, "..", "src", "fsutil.ts"))});
    ${call};`;
  const node = [process.execPath, "--import", "tsx", "-e", source];
  const parent = zombie
    ? spawn("sh", ["-c", '"$@" & exec sleep 60', "sh", ...node], { stdio: ["ignore", "pipe", "inherit"] })
    : spawn(node[0], node.slice(1), { stdio: ["ignore", "pipe", "inherit"] });
  const writer = await new Promise<number>((resolve, reject) => {
    parent.stdout.on("data", (chunk: Buffer) => {
      const stopped = /stopped (\d+)/.exec(chunk.toString());
      if (stopped) resolve(Number(stopped[1]));
    });
    parent.on("exit", (code) => reject(new Error(`the writer exited (${code}) before it stopped`)));
  });
  process.kill(writer, "SIGKILL");
  if (!zombie) await new Promise((resolve) => parent.on("close", resolve));
  else while (!fs.readFileSync(`/proc/${writer}/stat`, "utf8").includes(") Z ")) await new Promise((resolve) => setTimeout(resolve, 10));
  return () => parent.kill("SIGKILL");
}

test("writers killed mid-write: their temporary files go, a folder moved aside comes back, live and other machines' writers are left alone", async () => {
  const dir = tmp("orphans");
  const record = path.join(dir, "run.json");
  const model = path.join(dir, "run.model");
  // kill -9 after publishFolder moved the earlier model aside, before the new one took its place
  publishFolder(model, { "weights.bin": "first" }, ["weights.bin"]);
  await killedIn(`publishFolder(${JSON.stringify(model)}, { "weights.bin": "second" }, ["weights.bin"])`, "renameSync", 2);
  // kill -9 after the record's temporary file is synced, before its rename (last: a publish cleans up its folder first);
  // a second record's writer is killed the same way, and left a zombie by a parent that never reaps it
  await killedIn(`writeFileAtomic(${JSON.stringify(record)}, "{}")`, "fsyncSync", 1);
  const reap = await killedIn(`writeFileAtomic(${JSON.stringify(path.join(dir, "zombie.json"))}, "{}")`, "fsyncSync", 1, true);
  const left = fs.readdirSync(dir);
  assert.ok(!left.some((name) => ["run.json", "run.model", "zombie.json"].includes(name)), `killed before any landed: ${left.join(", ")}`);
  assert.equal(left.length, 4, `two records' temporary files, the new model's folder and the earlier one moved aside: ${left.join(", ")}`);
  // A writer still running here (this process) and one on another machine sharing the folder.
  const host = encodeURIComponent(os.hostname());
  const live = `other.json.abc.${process.pid}@${host}.tmp`;
  const elsewhere = `other.json.abc.${process.pid}@another-${host}.tmp`;
  for (const name of [live, elsewhere, "notes.tmp"]) fs.writeFileSync(path.join(dir, name), "");

  try {
    assert.equal(removeOrphanedTemporaries(dir).length, 4);
  } finally {
    reap();
  }
  assert.deepEqual(fs.readdirSync(dir).sort(), [elsewhere, live, "notes.tmp", "run.model"].sort());
  assert.equal(fs.readFileSync(path.join(model, "weights.bin"), "utf8"), "first", "the earlier model is back, whole");
  assert.deepEqual(removeOrphanedTemporaries(dir), [], "nothing left to clean");
  fs.rmSync(dir, { recursive: true, force: true });
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
