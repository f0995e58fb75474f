import { z } from "zod";
import { Dataset, ImageShape, SplitLimits } from "../data";

/** Called as a slow load proceeds: `done` of `total` files read. */
export type LoadProgress = (done: number, total: number) => void;

/** The fields every dataset spec may carry: its registered name and the split limits. */
export interface SpecBase extends SplitLimits {
  name: string;
}

/** The split limits every dataset's schema includes (upper bound: a typo must not exhaust memory). */
export const limitFields = {
  limitTrain: z.number().int().positive().max(1_000_000).optional(),
  limitTest: z.number().int().positive().max(1_000_000).optional(),
};

/**
 * A kind of data: its spec's schema and defaults, the shape and class count of its images, where its files come
 * from, and its loader. A dataset is one file that calls `registerDataset`; the config, the run key and the
 * command line find it by name.
 */
export interface DatasetKind<S extends SpecBase = SpecBase> {
  name: string;
  /** One line for `--help` and the README. */
  summary: string;
  /** A strict zod object with `name: z.literal(name)` and `limitFields`; optional fields, so parsing adds nothing. */
  schema: z.AnyZodObject;
  /** What an absent field means: the run key hashes the spec with these filled in (`{}` and the defaults hash alike). */
  defaults: Partial<S>;
  /**
   * Fields that change only the test split: the checkpoints' key leaves them out (limitTest always is). Every
   * other field is on the training side, which every run's key includes through its checkpoint's.
   */
  testOnly: string[];
  /** [H, W, C] of the images it yields; may read a file header, never the data. */
  shape: (spec: S) => ImageShape;
  /** The number of classes (labels 0..classes-1); may list a folder, never read the data. */
  classes: (spec: S) => number;
  /**
   * The files its training side and its test side are read from, and the folder their names in the digest are
   * relative to (absent: base names). The run key hashes their contents.
   */
  files: (spec: S) => { train: string[]; test: string[]; root?: string };
  /** What is wrong before any work (a missing folder, more images asked than there are): [field, message]. */
  problems: (spec: S) => [string, string][];
  /** Both splits, whole (the registry applies limitTrain/limitTest); `progress` hears of slow loads (image files). */
  load: (spec: S, progress?: LoadProgress) => Dataset;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const kinds = new Map<string, DatasetKind<any>>();

export function registerDataset<S extends SpecBase>(kind: DatasetKind<S>): DatasetKind<S> {
  if (kinds.has(kind.name)) throw new Error(`dataset "${kind.name}" is already registered`);
  if (!/^[a-z0-9][a-z0-9-]*$/.test(kind.name)) throw new Error(`dataset name ${JSON.stringify(kind.name)}: expected lower-case letters, digits and dashes`);
  kinds.set(kind.name, kind);
  return kind;
}

export function datasetNames(): string[] {
  return [...kinds.keys()];
}

export function getDataset(name: string): DatasetKind {
  const kind = kinds.get(name);
  if (!kind) throw new Error(`dataset spec: unknown name ${JSON.stringify(name)}, expected one of ${datasetNames().join(", ")}`);
  return kind;
}

/** Limits above a split's known size, as `problems` reports them. */
export function limitProblems(spec: SplitLimits, trainCount: number, testCount: number): [string, string][] {
  const out: [string, string][] = [];
  if (spec.limitTrain !== undefined && spec.limitTrain > trainCount)
    out.push(["limitTrain", `the training split holds ${trainCount} images; expected at most ${trainCount}`]);
  if (spec.limitTest !== undefined && spec.limitTest > testCount)
    out.push(["limitTest", `the test split holds ${testCount} images; expected at most ${testCount}`]);
  return out;
}
