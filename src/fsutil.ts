import * as fs from "fs";
import * as os from "os";
import * as path from "path";

/** This machine, as it appears in the names of temporary files and folders (see removeOrphanedTemporaries). */
const HOST = encodeURIComponent(os.hostname());

/**
 * A temporary name beside `target`: `<target>.<random>.<pid>@<host>.<kind>`, so that a later process on this machine
 * can tell the leftovers of a writer that was killed.
 */
function temporaryName(target: string, kind: "tmp" | "old"): string {
  return `${target}.${Math.random().toString(36).slice(2)}.${process.pid}@${HOST}.${kind}`;
}

/**
 * Write a file atomically: every byte into a temporary file beside it (looping over short writes), fsync, then
 * rename over the target; on any failure the temporary file is removed and the error names the target.
 * Hand-written because write-file-atomic (5.x) ignores how many bytes fs.writeSync wrote: on a nearly full disk it
 * renames a truncated file into place.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  const tmp = temporaryName(file, "tmp");
  let fd: number | undefined;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fd = fs.openSync(tmp, "w");
    for (let written = 0; written < bytes.length;) {
      const n = fs.writeSync(fd, bytes, written, bytes.length - written);
      if (n <= 0) throw new Error(`wrote 0 of the remaining ${bytes.length - written} bytes`);
      written += n;
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (err) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        // already failing; the write error is the one to report
      }
    }
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // no temporary file could have been made there
    }
    const e = err as NodeJS.ErrnoException;
    throw new Error(`could not write ${file}: ${e.code ? `${e.code} (${e.message})` : e.message}`, { cause: err });
  }
}

/** Throw (naming the folder and the cause) unless `dir`, or the nearest existing folder above it, can be written. */
export function assertWritableFolder(dir: string, what = "data folder"): void {
  let probe = path.resolve(dir);
  while (!fs.existsSync(probe) && path.dirname(probe) !== probe) probe = path.dirname(probe);
  if (!fs.statSync(probe).isDirectory()) throw new Error(`${what} ${dir}: ${probe} is a file; expected a folder`);
  try {
    fs.accessSync(probe, fs.constants.W_OK);
    // access() answers yes to root everywhere, /proc included, where mkdir then fails (and Node's recursive mkdir
    // retries forever): make a folder there and remove it.
    fs.rmdirSync(fs.mkdtempSync(path.join(probe, ".fwprune-write-check-")));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`${what} ${dir}: ${probe} is not writable (${code === "EROFS" ? "read-only file system" : code}); expected a folder this user can write`);
  }
}

/** Throw (naming the folder) unless `dir` is missing, or a folder holding only names in `replaceable`. */
export function assertReplaceableFolder(dir: string, replaceable: string[], what = "folder"): void {
  if (!fs.existsSync(dir)) return;
  if (!fs.statSync(dir).isDirectory()) throw new Error(`${what} ${dir} exists and is not a folder`);
  const others = fs.readdirSync(dir).filter((name) => !replaceable.includes(name));
  if (others.length) {
    throw new Error(
      `${what} ${dir} holds ${others.slice(0, 3).join(", ")}${others.length > 3 ? ", …" : ""}; expected a missing or empty folder, or one this command wrote before (${replaceable.join(", ")})`,
    );
  }
}

/**
 * Publish `files` as the folder `dir`, all or nothing: every file is written (and synced) into a temporary folder
 * beside `dir`, which is then renamed into place; a previous folder is moved aside first and removed only once the new
 * one is in place. On any failure the temporary folder is removed and the previous folder (if any) is back, whole.
 * A `dir` holding anything but names in `replaceable` is refused: this never deletes a user's other files.
 */
export function publishFolder(dir: string, files: Record<string, string | Uint8Array>, replaceable: string[], what = "folder"): void {
  const target = path.resolve(dir);
  assertReplaceableFolder(target, replaceable, what);
  removeOrphanedTemporaries(path.dirname(target)); // a publish killed earlier may have left its folder moved aside
  const tmp = temporaryName(target, "tmp");
  const old = temporaryName(target, "old");
  try {
    fs.mkdirSync(tmp, { recursive: true });
    for (const [name, bytes] of Object.entries(files)) writeFileAtomic(path.join(tmp, name), bytes);
    const hadOld = fs.existsSync(target);
    if (hadOld) fs.renameSync(target, old);
    try {
      fs.renameSync(tmp, target);
    } catch (err) {
      if (hadOld) fs.renameSync(old, target);
      throw err;
    }
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err instanceof Error && err.message.startsWith("could not write")
      ? err
      : new Error(`could not write ${what} ${target}: ${(err as Error).message}`, { cause: err });
  }
  fs.rmSync(old, { recursive: true, force: true });
}

const TEMPORARY = /\.[a-z0-9]*\.(\d+)@([^@/]+)\.(tmp|old)$/;

/**
 * Clean up after writers on this machine that were killed in the middle of writeFileAtomic or publishFolder (kill -9, a
 * crash, a pulled plug): their temporary files and folders in `dir` are removed, and a folder that publishFolder had
 * moved aside is put back where its new one never arrived. Only names whose process is gone are touched, so writers
 * still running here, and every writer on other machines sharing the folder, are left alone. Returns the names handled.
 */
export function removeOrphanedTemporaries(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return []; // no such folder yet: nothing was written there
  }
  const orphaned = names.flatMap((name) => {
    const match = TEMPORARY.exec(name);
    if (!match || match[2] !== HOST || processAlive(Number(match[1]))) return [];
    return [{ file: path.join(dir, name), kind: match[3], original: path.join(dir, name.slice(0, match.index)), name }];
  });
  // The folders moved aside first: each goes back where publishFolder was killed before its new one took the place.
  for (const { file, original } of orphaned.filter((o) => o.kind === "old")) {
    if (fs.existsSync(original)) fs.rmSync(file, { recursive: true, force: true });
    else fs.renameSync(file, original);
  }
  for (const { file } of orphaned.filter((o) => o.kind === "tmp")) fs.rmSync(file, { recursive: true, force: true });
  return orphaned.map(({ name }) => name);
}

/**
 * Whether process `pid` runs on this machine: signal 0 checks without sending anything (EPERM: it runs, as another
 * user); a zombie (killed, not yet reaped by a parent that was killed too) has stopped writing.
 */
function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8"); // "pid (name) state ...": the name may hold ") "
    return stat[stat.lastIndexOf(")") + 2] !== "Z";
  } catch {
    return true; // no /proc (macOS): signal 0's answer stands
  }
}

/** The bytes of `file`, read into `buffer` where they fit (else into a new one): [the buffer, a view of the bytes]. */
export function readInto(file: string, buffer: Buffer): [Buffer, Buffer] {
  const fd = fs.openSync(file, "r");
  try {
    const size = fs.fstatSync(fd).size;
    if (buffer.length < size) buffer = Buffer.allocUnsafe(size);
    let read = 0;
    while (read < size) {
      const n = fs.readSync(fd, buffer, read, size - read, read);
      if (n === 0) throw new Error(`${file}: ${read} bytes read of ${size} (the file shrank while it was read)`);
      read += n;
    }
    return [buffer, buffer.subarray(0, size)];
  } finally {
    fs.closeSync(fd);
  }
}
