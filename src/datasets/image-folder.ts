import * as fs from "fs";
import * as path from "path";
import { z } from "zod";
import { Dataset, ImageShape, Split, formatShape, pixelsPerImage } from "../data";
import { combineDigests, sha256 } from "../digest";
import { deriveSeed, shuffledIndices } from "../random";
import { LoadProgress, limitFields, limitProblems, registerDataset } from "./dataset";
import { decodeImage, resizeBilinear, toChannels } from "./images";

/** At most this many image files in a folder, ... */
export const MAX_IMAGE_FILES = 100_000;
/** ... each at most this many bytes, ... */
export const MAX_IMAGE_FILE_BYTES = 64 * 1024 * 1024;
/** ... and all of them, converted to floats, at most this many numbers (1 GiB). */
export const MAX_FOLDER_VALUES = 2 ** 28;
const IMAGE_EXTENSIONS = [".png", ".jpg", ".jpeg"];

const side = z.number().int().positive().max(4096);
export const ImageFolderSchema = z
  .object({
    name: z.literal("image-folder"),
    dir: z.string().min(1),
    /** [H, W, C] the images are converted to (C: 1 grayscale, 3 RGB): the model's input shape. */
    shape: z.tuple([side, side, z.union([z.literal(1), z.literal(3)])]),
    /** "bilinear": images of another size are resized; "none": they are refused. */
    resize: z.enum(["bilinear", "none"]).optional(),
    /** The fraction of each class held out for testing (default 0.2). */
    testFraction: z.number().gt(0).lt(1).optional(),
    /** Seeds which images are held out, and the order of both splits (default 0). */
    seed: z.number().int().optional(),
    ...limitFields,
  })
  .strict();
export type ImageFolderSpec = z.infer<typeof ImageFolderSchema>;

const DEFAULTS = { resize: "bilinear" as const, testFraction: 0.2, seed: 0 };

/** One sub-folder per class of PNG or JPEG files (torchvision's ImageFolder, Keras's image_dataset_from_directory). */
export const imageFolder = registerDataset<ImageFolderSpec>({
  name: "image-folder",
  summary: "a folder with one sub-folder per class of PNG or JPEG images (classes: the sub-folder names, sorted); a seeded, per-class held-out test split",
  schema: ImageFolderSchema,
  defaults: DEFAULTS,
  testOnly: [],
  shape: (spec) => spec.shape as ImageShape,
  classes: (spec) => listImageFolder(spec.dir).classNames.length,
  // Which images are held out depends on the whole folder: both sides hash every file (its path names its class).
  files: (spec) => {
    const all = listImageFolder(spec.dir).files.map((f) => f.file);
    return { train: all, test: all, root: spec.dir };
  },
  problems: (spec) => {
    try {
      const split = splitImageFolder(listImageFolder(spec.dir), spec);
      checkFolderSize(split.train.length + split.test.length, spec.shape as ImageShape, spec.dir);
      return limitProblems(spec, split.train.length, split.test.length);
    } catch (err) {
      return [["dir", (err as Error).message]];
    }
  },
  load: (spec, progress) => loadImageFolder(spec, progress),
});

export interface ImageFile {
  file: string;
  label: number;
}

/** The classes (sub-folder names, sorted; hidden ones skipped) and every image file under each, sorted by path. */
export function listImageFolder(dir: string): { classNames: string[]; files: ImageFile[] } {
  const expected = "expected a folder with one sub-folder per class, each holding PNG or JPEG files (.png, .jpg, .jpeg)";
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory())
    throw new Error(`image folder ${JSON.stringify(dir)} does not exist or is not a folder; ${expected}`);
  const classNames = fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => !e.name.startsWith(".") && (e.isDirectory() || (e.isSymbolicLink() && fs.statSync(path.join(dir, e.name)).isDirectory())))
    .map((e) => e.name)
    .sort();
  if (classNames.length === 0) throw new Error(`image folder ${JSON.stringify(dir)} has no sub-folders; ${expected}`);
  const files: ImageFile[] = [];
  classNames.forEach((name, label) => {
    const found = imagesUnder(path.join(dir, name));
    if (found.length === 0) throw new Error(`image folder ${JSON.stringify(dir)}: class folder ${JSON.stringify(name)} holds no PNG or JPEG file; ${expected}`);
    for (const file of found) files.push({ file, label });
    if (files.length > MAX_IMAGE_FILES)
      throw new Error(`image folder ${JSON.stringify(dir)} holds more than ${MAX_IMAGE_FILES} image files; expected at most ${MAX_IMAGE_FILES}`);
  });
  return { classNames, files };
}

/** The image files under `dir`, at any depth, sorted by path; hidden files and other extensions skipped. */
function imagesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (entry.name.startsWith(".")) continue;
    const full = path.join(dir, entry.name);
    const stat = fs.statSync(full);
    if (stat.isDirectory()) out.push(...imagesUnder(full));
    else if (IMAGE_EXTENSIONS.includes(path.extname(entry.name).toLowerCase())) out.push(full);
  }
  return out;
}

/**
 * The held-out split: of each class's n files, round(n·testFraction) (at most n − 1) drawn by a seeded shuffle go to
 * test, the rest to train; each split then in a seeded order (so limitTrain/limitTest keep every class).
 */
export function splitImageFolder(listing: { files: ImageFile[] }, spec: { testFraction?: number; seed?: number }): { train: ImageFile[]; test: ImageFile[] } {
  const { testFraction, seed } = { ...DEFAULTS, ...spec };
  const byClass = new Map<number, ImageFile[]>();
  for (const f of listing.files) {
    const files = byClass.get(f.label);
    if (files) files.push(f);
    else byClass.set(f.label, [f]);
  }
  const train: ImageFile[] = [];
  const test: ImageFile[] = [];
  for (const [label, files] of byClass) {
    const order = shuffledIndices(files.length, deriveSeed(seed, `image-folder/class/${label}`));
    const nTest = Math.min(Math.round(files.length * testFraction), files.length - 1);
    order.forEach((i, k) => (k < nTest ? test : train).push(files[i]));
  }
  const shuffle = (files: ImageFile[], label: string) => Array.from(shuffledIndices(files.length, deriveSeed(seed, label)), (i) => files[i]);
  return { train: shuffle(train, "image-folder/train-order"), test: shuffle(test, "image-folder/test-order") };
}

function checkFolderSize(count: number, shape: ImageShape, dir: string): void {
  if (count * pixelsPerImage(shape) > MAX_FOLDER_VALUES) {
    throw new Error(
      `image folder ${JSON.stringify(dir)}: ${count} images of ${formatShape(shape)} are ${count * pixelsPerImage(shape)} numbers; expected at most ${MAX_FOLDER_VALUES} (1 GiB): use fewer or smaller images`,
    );
  }
}

export function loadImageFolder(spec: ImageFolderSpec, progress?: LoadProgress): Dataset {
  const parsed = ImageFolderSchema.safeParse(spec);
  if (!parsed.success) {
    throw new Error(
      `dataset spec "image-folder": ${parsed.error.issues.map((i) => `${i.path.join(".") || "(spec)"}: ${i.message}`).join("; ")} (shape is [H, W, C] with C 1 or 3: the model's input)`,
    );
  }
  const shape = spec.shape as ImageShape;
  const listing = listImageFolder(spec.dir);
  const split = splitImageFolder(listing, spec);
  checkFolderSize(listing.files.length, shape, spec.dir);
  const resize = spec.resize ?? DEFAULTS.resize;
  // Both sides' digest covers every file of the folder (as `files` says), from the very bytes decoded.
  const read = new Map<string, string>();
  const train = readImages(split.train, shape, resize, (done) => progress?.(done, listing.files.length), read);
  const test = readImages(split.test, shape, resize, (done) => progress?.(split.train.length + done, listing.files.length), read);
  const digest = combineDigests(
    listing.files.map((f): [string, string] => [f.file, read.get(f.file) ?? sha256(fs.readFileSync(f.file))]),
    spec.dir,
  );
  return {
    name: `image-folder:${spec.dir}`,
    train: { ...train, digest },
    test: { ...test, digest },
    classes: listing.classNames.length,
    classNames: listing.classNames,
  };
}

/** The files decoded, converted to `shape`'s channels, resized to its H×W (or refused), in [0,1]. */
export function readImages(
  files: ImageFile[],
  shape: ImageShape,
  resize: "bilinear" | "none",
  progress?: (done: number) => void,
  read?: Map<string, string>,
): Split {
  const [height, width, channels] = shape;
  const size = pixelsPerImage(shape);
  const images = new Float32Array(files.length * size);
  const labels = new Int32Array(files.length);
  files.forEach(({ file, label }, i) => {
    const bytes = fs.statSync(file).size;
    if (bytes > MAX_IMAGE_FILE_BYTES) throw new Error(`${file}: ${bytes} bytes; expected an image file of at most ${MAX_IMAGE_FILE_BYTES} bytes`);
    const content = fs.readFileSync(file);
    read?.set(file, sha256(content));
    const decoded = decodeImage(content, file);
    if (resize === "none" && (decoded.height !== height || decoded.width !== width)) {
      throw new Error(
        `${file}: the image is ${decoded.height}×${decoded.width} (H×W), expected ${height}×${width} (the model's input); resizing is off (resize: "none"): resize the images, or set resize: "bilinear"`,
      );
    }
    const image = resizeBilinear(toChannels(decoded, channels as 1 | 3), height, width);
    images.set(image.data, i * size);
    labels[i] = label;
    progress?.(i + 1);
  });
  return { images, labels, count: files.length, shape };
}
