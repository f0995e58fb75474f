import * as fs from "fs";
import * as path from "path";

/**
 * Write a file atomically: every byte into a temporary file beside it (looping over short writes), fsync, then
 * rename over the target; on any failure the temporary file is removed and the error names the target.
 * Hand-written because write-file-atomic (5.x) ignores how many bytes fs.writeSync wrote: on a nearly full disk it
 * renames a truncated file into place.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
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
  const stamp = `${process.pid}-${Math.random().toString(36).slice(2)}`;
  const tmp = `${target}.tmp-${stamp}`;
  const old = `${target}.old-${stamp}`;
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
