import * as path from "path";

/**
 * Where things are, for the CLI, the notebooks and reproduce alike:
 * - the repository root: one level above this file (src/ under tsx, dist/ when built);
 * - the data folder: a `--data-dir` flag is taken from the current directory, as any command-line path;
 *   FWPRUNE_DATA_DIR from the repository root (a notebook's kernel runs in notebooks/); default <root>/data;
 * - a preset: a name ("quick", "paper", "tradeoff", "fashion"), or the path of a JSON config file, taken from the same
 *   base as the data folder.
 */
export const REPO_ROOT = path.resolve(__dirname, "..");

export function defaultDataDir(env: Record<string, string | undefined> = process.env): string {
  const given = env.FWPRUNE_DATA_DIR?.trim();
  return path.resolve(REPO_ROOT, given || "data");
}

/** A data folder from a command-line flag (relative to the current directory), or the default. */
export function dataDirFromFlag(flag: string | undefined): string {
  return flag === undefined ? defaultDataDir() : path.resolve(flag);
}

export const PRESET_NAMES = ["quick", "paper", "tradeoff", "fashion", "structured", "architectures"] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export function isPresetName(name: unknown): name is PresetName {
  return (PRESET_NAMES as readonly unknown[]).includes(name);
}

/** A preset's name as it is; a config file's path made absolute against `base`. */
export function resolvePreset(nameOrFile: string, base = process.cwd()): string {
  const named = nameOrFile.trim();
  return isPresetName(named) ? named : path.resolve(base, named);
}

/** The preset a notebook runs: FWPRUNE_PRESET (default quick), a relative file taken from the repository root. */
export function presetFromEnv(env: Record<string, string | undefined> = process.env): string {
  return resolvePreset(env.FWPRUNE_PRESET?.trim() || "quick", REPO_ROOT);
}

/** A path as a user would type it from the repository root, when it lies inside it. */
export function displayPath(file: string): string {
  const rel = path.relative(REPO_ROOT, file);
  return rel === "" ? "." : rel.startsWith("..") || path.isAbsolute(rel) ? file : rel;
}

/**
 * A config's name becomes part of file names (data/shipped/<name>.jsonl.gz), Slurm job names and script comments:
 * names are data, so only these characters, starting with a letter or digit (no slash, no "..", no space, no quote).
 */
export const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const SAFE_NAME_RULE = "1 to 64 letters, digits, _ . -, starting with a letter or digit";

/** The file `name` + `suffix` inside `dir`, or an error when the name could lead anywhere else. */
export function fileInside(dir: string, name: string, suffix: string): string {
  const file = path.resolve(dir, name + suffix);
  if (!SAFE_NAME.test(name) || path.dirname(file) !== path.resolve(dir)) throw new Error(`name ${JSON.stringify(name)}: expected ${SAFE_NAME_RULE}`);
  return file;
}
