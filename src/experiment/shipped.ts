import * as fs from "fs";
import * as path from "path";
import * as zlib from "zlib";
import { sha256 } from "../digest";
import { writeFileAtomic } from "../fsutil";
import { REPO_ROOT } from "../paths";

/**
 * Records shipped with the repository (data/shipped/<name>.jsonl.gz, one record per line): found like cached ones, so a
 * fresh clone prints and plots paper-scale results without computing anything. Each file has an index beside it
 * (<name>.keys.json: the SHA-256 of the gzipped bytes it indexes, and their keys), so that a lookup decompresses only
 * the files that hold its key: decompressing all of them took 0.15–0.2 s of every run that looked for its record.
 * An index whose hash does not match its file is passed over (that file is read whole); a missing one too.
 */
export const SHIPPED_DIR = path.join(REPO_ROOT, "data", "shipped");

/** A shipped line found under its key: checked (parsed, then as readRecord checks any record) only when asked for. */
export interface ShippedLine {
  where: string;
  text: string;
}

/** A shipped file: its keys (from a current index), and its lines by key once decompressed. */
interface ShippedFile {
  file: string;
  keys?: Set<string>;
  lines?: Map<string, ShippedLine[]>;
}

/** By folder (tests read their own). */
const folders = new Map<string, ShippedFile[]>();

/** A record's key as writeShipped writes it: the second field, after format (JSON.stringify of a RunRecord). */
const LEADING_KEY = /^\{"format":[^,]*,"key":"([^"\\]*)"/;

/** The index beside a shipped file. */
export const indexFile = (file: string) => file.replace(/\.jsonl\.gz$/, ".keys.json");

/**
 * The lines shipped under `key`, in file and line order, each handed out once (the caller checks them and keeps the
 * outcome). Only keys are read until then: from the start of a line where writeShipped writes it, else by parsing.
 */
export function takeShippedLines(key: string, dir = SHIPPED_DIR): ShippedLine[] {
  const out: ShippedLine[] = [];
  for (const shipped of shippedFiles(dir)) {
    if (shipped.keys && !shipped.keys.has(key)) continue;
    shipped.lines ??= linesByKey(shipped.file);
    out.push(...(shipped.lines.get(key) ?? []));
    shipped.lines.delete(key);
  }
  return out;
}

function shippedFiles(dir: string): ShippedFile[] {
  let files = folders.get(dir);
  if (files) return files;
  files = fs.existsSync(dir)
    ? fs
        .readdirSync(dir)
        .filter((f) => f.endsWith(".jsonl.gz"))
        .sort()
        .map((name) => {
          const file = path.join(dir, name);
          return { file, keys: indexedKeys(file) };
        })
    : [];
  folders.set(dir, files);
  return files;
}

/** The keys a current index lists for `file`; undefined where there is none, or it indexes other bytes. */
function indexedKeys(file: string): Set<string> | undefined {
  try {
    const index = JSON.parse(fs.readFileSync(indexFile(file), "utf8")) as { of?: unknown; keys?: unknown };
    const keys = index.keys;
    if (!Array.isArray(keys) || !keys.every((k) => typeof k === "string")) return undefined;
    return index.of === sha256(fs.readFileSync(file)) ? new Set(keys as string[]) : undefined;
  } catch {
    return undefined;
  }
}

/** A shipped file's lines by key (unreadable files and lines without a key reported, then passed over). */
function linesByKey(file: string): Map<string, ShippedLine[]> {
  const byKey = new Map<string, ShippedLine[]>();
  let lines: string[];
  try {
    lines = zlib.gunzipSync(fs.readFileSync(file)).toString("utf8").split("\n");
  } catch (err) {
    console.error(`fwprune: ignoring ${file}: not a gzipped file of records (${(err as Error).message})`);
    return byKey;
  }
  lines.forEach((text, i) => {
    if (text.trim() === "") return;
    const where = `line ${i + 1} of ${file}`;
    const key = LEADING_KEY.exec(text)?.[1] ?? keyOf(text);
    if (key === undefined) return console.error(`fwprune: ignoring ${where}: not JSON with a "key" field`);
    const found = byKey.get(key);
    if (found) found.push({ where, text });
    else byKey.set(key, [{ where, text }]);
  });
  return byKey;
}

/** The string "key" field of a JSON line, if it is one. */
function keyOf(text: string): string | undefined {
  try {
    const key = (JSON.parse(text) as { key?: unknown } | null)?.key;
    return typeof key === "string" ? key : undefined;
  } catch {
    return undefined;
  }
}

/** Write record lines as a shipped file (gzipped, byte-identical for the same lines) and its index. */
export function writeShippedLines(file: string, lines: string[]): void {
  writeFileAtomic(file, zlib.gzipSync(Buffer.from(lines.join("\n") + "\n"), { level: 9 }));
  writeShippedIndex(file);
  folders.clear();
}

/** Write the index of a shipped file: the SHA-256 of its bytes and the keys of its lines, sorted. */
export function writeShippedIndex(file: string): void {
  const keys = [...linesByKey(file).keys()].sort();
  writeFileAtomic(indexFile(file), JSON.stringify({ of: sha256(fs.readFileSync(file)), keys }, null, 1) + "\n");
}
