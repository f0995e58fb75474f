// The built-in datasets, one file each, registered in this order by importing them.
import "./mnist-embedded";
import "./mnist";
import "./fashion-mnist";
import "./idx";
import "./image-folder";
import * as fs from "fs";
import * as path from "path";
import { z } from "zod";
import { Dataset, IDX_FILES, ImageShape, describeIdxFolderProblem, formatShape, limitDataset } from "../data";
import { filesDigest } from "../digest";
import { DatasetKind, LoadProgress, datasetNames, getDataset } from "./dataset";
import { FashionMnistSpec } from "./fashion-mnist";
import { IdxSpec } from "./idx";
import { ImageFolderSpec, listImageFolder } from "./image-folder";
import { MnistSpec } from "./mnist";
import { MnistEmbeddedSpec } from "./mnist-embedded";

export * from "./dataset";
export * from "./mnist-embedded";
export * from "./mnist";
export * from "./fashion-mnist";
export * from "./idx";
export * from "./image-folder";
export * from "./images";

export type DatasetSpec = MnistEmbeddedSpec | MnistSpec | FashionMnistSpec | IdxSpec | ImageFolderSpec;

/**
 * The config's `dataset` field: the spec of a registered dataset, checked by that dataset's own schema (looked up by
 * `name` when parsed, so a dataset registered after this module loaded is accepted too).
 */
export function datasetSchema(): z.ZodType<DatasetSpec, z.ZodTypeDef, DatasetSpec> {
  return z
    .object({ name: z.string() })
    .passthrough()
    .transform((value, ctx) => {
      if (!datasetNames().includes(value.name)) {
        ctx.addIssue({
          code: "custom",
          path: ["name"],
          message: `no dataset is called ${JSON.stringify(value.name)}; expected one of ${datasetNames().join(", ")}`,
          fatal: true,
        });
        return z.NEVER;
      }
      const parsed = getDataset(value.name).schema.safeParse(value);
      if (parsed.success) return parsed.data as DatasetSpec;
      for (const issue of parsed.error.issues) ctx.addIssue({ ...issue, fatal: true } as z.IssueData);
      return z.NEVER;
    }) as unknown as z.ZodType<DatasetSpec, z.ZodTypeDef, DatasetSpec>;
}

const kindOf = (spec: { name: string }): DatasetKind => getDataset(spec.name);

/** Both splits of a dataset, cut to its limits. Throws naming the field, file or folder at fault. */
export function loadDataset(spec: DatasetSpec, progress?: LoadProgress): Dataset {
  return limitDataset(kindOf(spec).load(spec, progress), spec);
}

const loaded = new Map<string, Dataset>();

/**
 * loadDataset, kept for the life of the process (a worker runs many runs on the same data): keyed by the spec. With
 * `expected` digests (those a sweep planned on), a kept dataset read from other content is read again; then
 * checkDatasetDigest says whether what was read is what was planned.
 */
export function datasetFor(spec: DatasetSpec, expected: { train?: string; test?: string } = {}, progress?: LoadProgress): Dataset {
  const id = JSON.stringify(Object.entries(spec).sort(([a], [b]) => a.localeCompare(b)));
  let ds = loaded.get(id);
  const stale =
    ds && ((expected.train !== undefined && ds.train.digest !== expected.train) || (expected.test !== undefined && ds.test.digest !== expected.test));
  if (!ds || stale) {
    ds = loadDataset(spec, progress);
    loaded.set(id, ds);
  }
  return ds;
}

/** [H, W, C] of a dataset's images (a header or a folder listing is read, never the data). */
export function datasetShape(spec: DatasetSpec): ImageShape {
  return kindOf(spec).shape(spec);
}

/** The number of classes of a dataset (labels 0..classes-1). */
export function datasetClasses(spec: DatasetSpec): number {
  return kindOf(spec).classes(spec);
}

/** What is wrong with a spec before any work: [field, message] pairs (a missing folder, sizes beyond the data). */
export function datasetProblems(spec: DatasetSpec): [string, string][] {
  const kind = kindOf(spec);
  const problems = kind.problems(spec);
  if (problems.length > 0) return problems;
  try {
    kind.shape(spec);
    kind.classes(spec);
  } catch (err) {
    return [["dir" in spec ? "dir" : "name", (err as Error).message]];
  }
  return [];
}

/** The files a dataset is read from: its training side and its test side. */
export function datasetFiles(spec: DatasetSpec): { train: string[]; test: string[]; root?: string } {
  return kindOf(spec).files(spec);
}

/** The content identity of a dataset's training and test sides (part of every cache key: new files, new keys). */
export function datasetDigest(spec: DatasetSpec): { train: string; test: string } {
  const files = datasetFiles(spec);
  return { train: filesDigest(files.train, files.root), test: filesDigest(files.test, files.root) };
}

/** What a model takes and gives: its input shape [H, W, C] and its number of classes (output logits). */
export interface ModelIO {
  inputShape: readonly number[];
  classes: number;
}

/** Throws a clear error when the data's image shape or class count is not the model's. */
export function checkDataFitsModel(spec: DatasetSpec, model: ModelIO, what = `dataset "${spec.name}"`): void {
  const shape = datasetShape(spec);
  if (shape.length !== model.inputShape.length || shape.some((d, i) => d !== model.inputShape[i])) {
    throw new Error(`${what}: its images are ${formatShape(shape)} (H×W×C), but the model's input is ${formatShape(model.inputShape)}; expected equal shapes`);
  }
  const classes = datasetClasses(spec);
  if (classes !== model.classes) {
    throw new Error(`${what}: it has ${classes} classes, but the model has ${model.classes} outputs; expected one output per class`);
  }
}

const BUILT_IN_NAMES = ["mnist-embedded", "mnist", "fashion-mnist"] as const;

/**
 * The dataset a command-line `--data` value names: mnist-embedded, mnist or fashion-mnist, or a folder (read as IDX
 * when it holds the four IDX files, else as an image folder converted to the model's input shape). Checked against
 * the model's input shape and class count before any data is read. A name wins over a folder of that name (write
 * ./mnist for the folder). An IDX folder's labels are checked against the model's class count when loaded.
 */
export function resolveDataArgument(value: string, model: ModelIO): DatasetSpec {
  let spec: DatasetSpec;
  const what = `--data ${JSON.stringify(value)}`;
  if ((BUILT_IN_NAMES as readonly string[]).includes(value)) {
    spec = { name: value as (typeof BUILT_IN_NAMES)[number] };
  } else if (fs.existsSync(value) && fs.statSync(value).isDirectory()) {
    const dir = path.resolve(value);
    if (describeIdxFolderProblem(dir) === undefined) {
      spec = { name: "idx", dir, classes: model.classes };
    } else {
      try {
        listImageFolder(dir);
      } catch (err) {
        throw new Error(
          `${what}: the folder holds neither the four IDX files (${Object.values(IDX_FILES).join(", ")}, each may end in .gz) nor an image folder (${(err as Error).message})`,
        );
      }
      const [h, w, c] = model.inputShape;
      if (model.inputShape.length !== 3 || (c !== 1 && c !== 3)) {
        throw new Error(
          `${what}: an image folder feeds a model whose input is H×W×1 (grayscale) or H×W×3 (RGB); the model's input is ${formatShape(model.inputShape)}`,
        );
      }
      spec = { name: "image-folder", dir, shape: [h, w, c] };
    }
  } else {
    throw new Error(
      `${what}: no dataset of that name and no such folder; expected one of ${datasetNames()
        .filter((n) => (BUILT_IN_NAMES as readonly string[]).includes(n))
        .join(", ")}, or a folder (the four IDX files, or one sub-folder per class of PNG/JPEG images)`,
    );
  }
  checkDataFitsModel(spec, model, what);
  return spec;
}
