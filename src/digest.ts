import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import type { Dataset } from "./data";
import { readInto } from "./fsutil";

/**
 * The content identity of a dataset's files: computed when a sweep is planned (part of every cache key) and again by
 * the loaders from the very bytes they read, so that a run never files results of other data under the planned key.
 */
const digests = new Map<string, string>();
export const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/**
 * The content identity of files from each one's SHA-256 (in order), each named by its base name, or by its path under
 * `root` when given (an image folder's sub-folder is the class): what filesDigest and the loaders both compute.
 */
export function combineDigests(files: [file: string, sha256: string][], root?: string): string {
  const all = createHash("sha256");
  for (const [file, digest] of files) {
    const name = root === undefined ? path.basename(file) : path.relative(root, file).split(path.sep).join("/");
    all.update(`${name}:${digest}\n`);
  }
  return all.digest("hex").slice(0, 32);
}

/** SHA-256 of the files' contents (in order), remembered per file by path, inode, size and times: free on re-runs. */
export function filesDigest(files: string[], root?: string): string {
  // One buffer for every file's bytes: a fresh one per file (the embedded MNIST's ten of about 2 MB each), handed out
  // by the system page by page, took about 50 ms of planning a run.
  let buffer = Buffer.alloc(0);
  return combineDigests(
    files.map((file) => {
      const st = fs.statSync(file);
      const id = `${file}\0${st.ino}\0${st.size}\0${st.mtimeMs}\0${st.ctimeMs}`;
      let digest = digests.get(id);
      if (!digest) {
        const [grown, bytes] = readInto(file, buffer);
        buffer = grown;
        digest = sha256(bytes);
        digests.set(id, digest);
      }
      return [file, digest];
    }),
    root,
  );
}

/** The data read is not the data planned on: a file changed between planning a sweep and loading it. */
export class DatasetChangedError extends Error {}

/** Throw DatasetChangedError unless the digests of what `dataset` was read from are the `expected` (planned) ones. */
export function checkDatasetDigest(dataset: Dataset, expected: { train?: string; test?: string }): void {
  for (const side of ["train", "test"] as const) {
    const want = expected[side];
    if (want !== undefined && dataset[side].digest !== want) {
      throw new DatasetChangedError(
        `the ${side} files of ${dataset.name} changed after the sweep was planned (read now: content ${dataset[side].digest}, planned on: ${want}); ` +
          "nothing was recorded under the old content's key: run the sweep again to plan on the files as they are",
      );
    }
  }
}
