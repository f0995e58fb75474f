import * as fs from "fs";
import * as path from "path";
import * as zlib from "zlib";
import * as tf from "@tensorflow/tfjs-core";
import { combineDigests, sha256 } from "./digest";

/** An image's height, width and channels (1: grayscale, 3: RGB), as a model's input shape is written. */
export type ImageShape = [number, number, number];

/** N images of shape [H, W, C], row-major (channels last), scaled to [0,1], and their integer class labels. */
export interface Split {
  images: Float32Array;
  labels: Int32Array;
  count: number;
  shape: ImageShape;
  /** The content identity of the files this split was read from, computed from the bytes read (see filesDigest). */
  digest?: string;
}

export interface Dataset {
  name: string;
  train: Split;
  test: Split;
  /** The number of classes: labels are 0..classes-1. */
  classes: number;
  /** The classes' names, where the data has them (an image folder: its sub-folders, sorted). */
  classNames?: string[];
}

/** Keep only the first N examples of each split (after the split itself): for tiny test configs. */
export interface SplitLimits {
  limitTrain?: number;
  limitTest?: number;
}

/** The numbers in one image: H·W·C. */
export function pixelsPerImage(shape: ImageShape): number {
  return shape[0] * shape[1] * shape[2];
}

export const formatShape = (shape: readonly number[]) => shape.join("×");

/** The four files an IDX dataset folder must hold (each may also be present with a `.gz` suffix). */
export const IDX_FILES = {
  trainImages: "train-images-idx3-ubyte",
  trainLabels: "train-labels-idx1-ubyte",
  testImages: "t10k-images-idx3-ubyte",
  testLabels: "t10k-labels-idx1-ubyte",
} as const;

/** The dataset with both splits cut to the spec's limits (the first N examples of each). */
export function limitDataset<D extends Dataset>(dataset: D, spec: SplitLimits): D {
  return { ...dataset, train: limitSplit(dataset.train, spec.limitTrain, "limitTrain"), test: limitSplit(dataset.test, spec.limitTest, "limitTest") };
}

function limitSplit(split: Split, limit: number | undefined, field: string): Split {
  if (limit === undefined) return split;
  if (!Number.isInteger(limit) || limit < 1) {
    throw new Error(`dataset spec: ${field} must be a positive integer, got ${JSON.stringify(limit)}`);
  }
  if (limit >= split.count) return split;
  const size = pixelsPerImage(split.shape);
  return { images: split.images.slice(0, limit * size), labels: split.labels.slice(0, limit), count: limit, shape: split.shape, digest: split.digest };
}

/**
 * gather(split, order) in place, for `order` a permutation of all its examples: example j becomes the former example
 * order[j], each cycle of the permutation moved through one spare image. No second copy of the images.
 */
export function permuteInPlace(split: Split, order: Int32Array): void {
  const { images, labels, count } = split;
  const size = pixelsPerImage(split.shape);
  const placed = new Uint8Array(count);
  if (order.length !== count || order.some((i) => !(i >= 0 && i < count) || placed[i]++ > 0)) {
    throw new Error(`permuteInPlace: order must hold each of 0..${count - 1} once; got ${order.length} indices`);
  }
  placed.fill(0);
  const spare = new Float32Array(size);
  for (let start = 0; start < count; start++) {
    if (placed[start]) continue;
    spare.set(images.subarray(start * size, (start + 1) * size));
    const spareLabel = labels[start];
    let j = start;
    for (let from = order[j]; from !== start; j = from, from = order[j]) {
      images.copyWithin(j * size, from * size, (from + 1) * size);
      labels[j] = labels[from];
      placed[j] = 1;
    }
    images.set(spare, j * size);
    labels[j] = spareLabel;
    placed[j] = 1;
  }
}

/** The examples `indices` of a split, in that order. */
export function gather(split: Split, indices: ArrayLike<number>): Split {
  const size = pixelsPerImage(split.shape);
  const images = new Float32Array(indices.length * size);
  const labels = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const src = indices[i];
    images.set(split.images.subarray(src * size, (src + 1) * size), i * size);
    labels[i] = split.labels[src];
  }
  return { images, labels, count: indices.length, shape: split.shape, digest: split.digest };
}

// ---------------------------------------------------------------- IDX files

const BYTE_TO_UNIT = Float32Array.from({ length: 256 }, (_, b) => b / 255);
const IDX_UBYTE = 0x08;
export const IDX_LABELS_MAGIC = 0x00000801;
export const IDX_IMAGES_MAGIC = 0x00000803;

export interface IdxArray {
  file: string;
  dims: number[];
  data: Uint8Array;
  /** SHA-256 of the file's bytes as read (before any gunzip). */
  sha256: string;
}

const hex = (n: number) => "0x" + (n >>> 0).toString(16).padStart(8, "0");

/**
 * Read an unsigned-byte IDX file (gunzipped first when its name ends in .gz). With `expectedMagic`
 * (IDX_LABELS_MAGIC or IDX_IMAGES_MAGIC) the magic number must match it exactly.
 */
export function readIdx(file: string, expectedMagic?: number): IdxArray {
  if (!fs.existsSync(file)) throw new Error(`${file}: IDX file not found`);
  let bytes: Buffer = fs.readFileSync(file);
  const digest = sha256(bytes);
  const isGzip = bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
  if (file.endsWith(".gz")) {
    if (!isGzip)
      throw new Error(`${file}: named .gz but is not gzip-compressed (first bytes ${bytes.subarray(0, 2).toString("hex") || "none"}, expected 1f8b)`);
    try {
      bytes = zlib.gunzipSync(bytes);
    } catch (err) {
      throw new Error(`${file}: gzip decompression failed (${(err as Error).message}); the file is corrupt or truncated`);
    }
  } else if (isGzip) {
    throw new Error(
      `${file}: the file is gzip-compressed (starts with bytes 1f 8b) but its name does not end in .gz; rename it to ${path.basename(file)}.gz or decompress it (gunzip)`,
    );
  }
  if (bytes.length < 4) throw new Error(`${file}: truncated: ${bytes.length} bytes, expected at least a 4-byte IDX header`);
  const magic = bytes.readUInt32BE(0);
  if (expectedMagic !== undefined && magic !== expectedMagic) {
    throw new Error(
      `${file}: wrong magic number ${hex(magic)}, expected ${hex(expectedMagic)} (${expectedMagic === IDX_IMAGES_MAGIC ? "ubyte images, 3 dimensions" : expectedMagic === IDX_LABELS_MAGIC ? "ubyte labels, 1 dimension" : "IDX"})`,
    );
  }
  const dimCount = bytes[3];
  if (bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== IDX_UBYTE || dimCount < 1) {
    throw new Error(`${file}: wrong magic number ${hex(magic)}, expected 0x000008NN (unsigned-byte IDX with NN ≥ 1 dimensions)`);
  }
  const headerBytes = 4 + 4 * dimCount;
  if (bytes.length < headerBytes) {
    throw new Error(`${file}: truncated: ${bytes.length} bytes, expected at least ${headerBytes} for a header with ${dimCount} dimensions`);
  }
  const dims: number[] = [];
  for (let d = 0; d < dimCount; d++) dims.push(bytes.readUInt32BE(4 + 4 * d));
  const dataBytes = dims.reduce((a, b) => a * b, 1);
  const expectedLength = headerBytes + dataBytes;
  if (bytes.length !== expectedLength) {
    throw new Error(
      `${file}: ${bytes.length < expectedLength ? "truncated" : "too long"}: ${bytes.length} bytes, expected ${expectedLength} ` +
        `(${headerBytes}-byte header + ${dims.join("×")} = ${dataBytes} data bytes)`,
    );
  }
  return { file, dims, data: new Uint8Array(bytes.buffer, bytes.byteOffset + headerBytes, dataBytes), sha256: digest };
}

/** What a split must hold: images of this shape, labels below this class count. */
export interface SplitExpectation {
  shape?: ImageShape;
  classes?: number;
}

/** One split from an images IDX file (N×H×W, one channel) and a labels IDX file (N). */
export function readIdxSplit(imagesFile: string, labelsFile: string, expected: SplitExpectation = {}): Split {
  const images = readIdx(imagesFile, IDX_IMAGES_MAGIC);
  const labels = readIdx(labelsFile, IDX_LABELS_MAGIC);
  const [count, rows, cols] = images.dims;
  const shape: ImageShape = [rows, cols, 1];
  if (expected.shape && (rows !== expected.shape[0] || cols !== expected.shape[1] || expected.shape[2] !== 1)) {
    throw new Error(
      `${imagesFile}: images are ${rows}×${cols} (one channel), expected ${expected.shape[0]}×${expected.shape[1]}${expected.shape[2] === 1 ? "" : `×${expected.shape[2]}`}`,
    );
  }
  if (labels.dims[0] !== count) {
    throw new Error(`${labelsFile}: holds ${labels.dims[0]} labels, but ${imagesFile} holds ${count} images; expected equal counts`);
  }
  const classes = expected.classes;
  const bad = classes === undefined ? -1 : labels.data.findIndex((l) => l >= classes);
  if (bad >= 0) throw new Error(`${labelsFile}: label ${labels.data[bad]} at index ${bad}; expected class labels 0..${(classes as number) - 1}`);
  const pixels = new Float32Array(images.data.length);
  for (let i = 0; i < pixels.length; i++) pixels[i] = BYTE_TO_UNIT[images.data[i]];
  return {
    images: pixels,
    labels: Int32Array.from(labels.data),
    count,
    shape,
    digest: combineDigests([
      [imagesFile, images.sha256],
      [labelsFile, labels.sha256],
    ]),
  };
}

/** The image shape [H, W, 1] an images IDX file declares in its header (only the header is read). */
export function idxImageShape(file: string): ImageShape {
  const fd = fs.openSync(file, "r");
  let head: Buffer;
  try {
    head = Buffer.alloc(64 * 1024);
    head = head.subarray(0, fs.readSync(fd, head, 0, head.length, 0));
  } finally {
    fs.closeSync(fd);
  }
  if (file.endsWith(".gz")) {
    try {
      head = zlib.gunzipSync(head, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    } catch (err) {
      throw new Error(`${file}: gzip decompression failed (${(err as Error).message}); the file is corrupt or truncated`);
    }
  }
  if (head.length < 16 || head.readUInt32BE(0) !== IDX_IMAGES_MAGIC) {
    throw new Error(`${file}: expected an images IDX header (magic ${hex(IDX_IMAGES_MAGIC)}, then N, H, W)`);
  }
  return [head.readUInt32BE(8), head.readUInt32BE(12), 1];
}

/** The path of an IDX file in `dir`, plain or with `.gz`; undefined if neither exists; an error if both do. */
function findIdxFile(dir: string, baseName: string): string | undefined {
  const found = [baseName, baseName + ".gz"].map((name) => path.join(dir, name)).filter((file) => fs.existsSync(file));
  if (found.length > 1) throw new Error(`folder ${dir} holds both ${baseName} and ${baseName}.gz; expected one of them (remove the other)`);
  return found[0];
}

function missingIdxFiles(dir: string): string[] {
  return Object.values(IDX_FILES).filter((base) => findIdxFile(dir, base) === undefined);
}

/** What keeps a folder from being an IDX dataset (missing folder or files), or undefined when it has all four files. */
export function describeIdxFolderProblem(dir: string): string | undefined {
  const expected = `expected the four files ${Object.values(IDX_FILES).join(", ")} (each may also end in .gz)`;
  if (!fs.existsSync(dir)) return `folder ${JSON.stringify(dir)} does not exist; ${expected}`;
  let missing: string[];
  try {
    missing = missingIdxFiles(dir);
  } catch (err) {
    return (err as Error).message;
  }
  if (missing.length === 0) return undefined;
  return `folder ${dir} lacks ${missing.join(", ")}; ${expected}`;
}

export function loadIdxFolder(dir: string, name: string, expected: SplitExpectation & { classes: number }): Dataset {
  const problem = describeIdxFolderProblem(dir);
  if (problem) throw new Error(`IDX dataset "${name}": ${problem}`);
  const files = idxFolderFiles(dir);
  const train = readIdxSplit(files.train[0], files.train[1], expected);
  const test = readIdxSplit(files.test[0], files.test[1], { ...expected, shape: expected.shape ?? train.shape });
  return { name, train, test, classes: expected.classes };
}

/** An IDX folder's files: [images, labels] of its training side and of its test side (plain or .gz, as present). */
export function idxFolderFiles(dir: string): { train: string[]; test: string[] } {
  const file = (base: string) => findIdxFile(dir, base) ?? path.join(dir, base);
  return { train: [file(IDX_FILES.trainImages), file(IDX_FILES.trainLabels)], test: [file(IDX_FILES.testImages), file(IDX_FILES.testLabels)] };
}

// ---------------------------------------------------------------- tensors and summaries

export function toTensors(split: Split): { x: tf.Tensor4D; y: tf.Tensor1D } {
  const size = pixelsPerImage(split.shape);
  if (split.images.length !== split.count * size || split.labels.length !== split.count) {
    throw new Error(
      `toTensors: split has count ${split.count} but ${split.images.length} pixels (expected ${split.count * size} for images of ${formatShape(split.shape)}) and ${split.labels.length} labels`,
    );
  }
  return {
    x: tf.tensor4d(split.images, [split.count, ...split.shape], "float32"),
    y: tf.tensor1d(split.labels, "int32"),
  };
}

export interface SplitSummary {
  count: number;
  /** classCounts[c] = number of examples labelled c. */
  classCounts: number[];
  pixelMin: number;
  pixelMax: number;
  pixelMean: number;
}

export interface DatasetSummary {
  name: string;
  train: SplitSummary;
  test: SplitSummary;
}

export function describeSplit(split: Split): SplitSummary {
  const classCounts: number[] = [];
  for (const label of split.labels) {
    while (classCounts.length <= label) classCounts.push(0);
    classCounts[label]++;
  }
  let pixelMin = Infinity;
  let pixelMax = -Infinity;
  let sum = 0;
  for (const v of split.images) {
    if (v < pixelMin) pixelMin = v;
    if (v > pixelMax) pixelMax = v;
    sum += v;
  }
  const pixelMean = split.images.length > 0 ? sum / split.images.length : NaN;
  return { count: split.count, classCounts, pixelMin, pixelMax, pixelMean };
}

export function describeDataset(dataset: Dataset): DatasetSummary {
  return { name: dataset.name, train: describeSplit(dataset.train), test: describeSplit(dataset.test) };
}
