import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import * as jpeg from "jpeg-js";
import { PNG } from "pngjs";
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, Split } from "../src/data";
import { datasetDigest, datasetNames, decodeImage, getDataset, loadDataset, resizeBilinear, resolveDataArgument, toChannels } from "../src/datasets";
import { createHash } from "crypto";
import { loadConfig, resolveConfig } from "../src/experiment/config";
import { planPretraining, planRuns } from "../src/experiment/plan";
import { PIXELS, digitBytes, digits, writeDigitFolder, writePng } from "./png-digits";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-datasets-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

const PER_CLASS = 5;

/** Asserts fn throws an Error whose message contains every one of `parts`. */
function assertThrowsWith(fn: () => unknown, parts: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof Error, "expected an Error");
    for (const part of parts) assert.ok(err.message.includes(part), `message ${JSON.stringify(err.message)} should include ${JSON.stringify(part)}`);
    return true;
  });
}

const imageKey = (split: Split, i: number) => Buffer.from(split.images.buffer, split.images.byteOffset + i * PIXELS * 4, PIXELS * 4).toString("base64");

const digitDir = path.join(tmp, "digits");
const chosen = writeDigitFolder(digitDir, PER_CLASS);
const MNIST_MODEL = { inputShape: [28, 28, 1], classes: 10 };

test("the registry lists its datasets and names an unknown one with the known ones", () => {
  assert.deepEqual(datasetNames(), ["mnist-embedded", "mnist", "fashion-mnist", "idx", "image-folder"]);
  assertThrowsWith(() => getDataset("cifar"), ['"cifar"', "mnist-embedded", "image-folder"]);
  assertThrowsWith(() => loadDataset({ name: "cifar" } as never), ['"cifar"', "mnist-embedded", "idx", "image-folder"]);
  assert.throws(
    () => resolveConfig({ preset: "quick", dataset: { name: "cifar" } }),
    /dataset\.name: no dataset is called "cifar"; expected one of mnist-embedded, mnist, fashion-mnist, idx, image-folder \(got "cifar"\)/,
  );
  assert.throws(
    () => resolveConfig({ preset: "quick", dataset: { name: "image-folder", dir: digitDir, shape: [28, 28, 2], colour: true } }),
    (err: Error) => {
      assert.match(err.message, /dataset: unknown key "colour"/);
      assert.match(err.message, /dataset\.shape\.2: /);
      return true;
    },
  );
  assertThrowsWith(() => resolveDataArgument("cifar", MNIST_MODEL), ['--data "cifar"', "mnist-embedded, mnist, fashion-mnist", "or a folder"]);
});

test("an image folder of PNG digits reads back pixel for pixel as the same digits read from the package, and as IDX", () => {
  const spec = resolveDataArgument(digitDir, MNIST_MODEL);
  assert.deepEqual(spec, { name: "image-folder", dir: path.resolve(digitDir), shape: [28, 28, 1] });
  const heard: number[] = [];
  const ds = loadDataset(spec, (done, total) => {
    assert.equal(total, chosen.length);
    heard.push(done);
  });
  assert.deepEqual(
    heard,
    Array.from({ length: chosen.length }, (_, i) => i + 1),
    "progress: every file, in order",
  );
  assert.equal(ds.classes, 10);
  assert.deepEqual(ds.classNames, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
  assert.deepEqual([ds.train.count, ds.test.count], [40, 10], "round(5 · 0.2) = 1 image of each class held out");
  assert.deepEqual(ds.train.shape, [28, 28, 1]);
  const expected = new Map(chosen.map((i) => [imageKey(digits, i), digits.labels[i]]));
  const seen = new Set<string>();
  for (const split of [ds.train, ds.test]) {
    for (let i = 0; i < split.count; i++) {
      const key = imageKey(split, i);
      assert.equal(expected.get(key), split.labels[i], `image ${i} equals a chosen digit exactly, with its label`);
      seen.add(key);
    }
  }
  assert.equal(seen.size, chosen.length, "every digit once");
  assert.deepEqual(Array.from(ds.test.labels).sort(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "the held-out split is per class");

  // The same digits as an IDX folder (train = test = all of them): resolved as IDX, equal pixels.
  const idxDir = path.join(tmp, "idx-digits");
  fs.mkdirSync(idxDir);
  const idx = (magic: number, dims: number[], body: Uint8Array) => {
    const header = Buffer.alloc(4 + 4 * dims.length);
    header.writeUInt32BE(magic, 0);
    dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
    return Buffer.concat([header, body]);
  };
  const bytes = new Uint8Array(chosen.length * PIXELS);
  chosen.forEach((d, k) => bytes.set(digitBytes(d), k * PIXELS));
  for (const side of ["train", "t10k"]) {
    fs.writeFileSync(path.join(idxDir, `${side}-images-idx3-ubyte`), idx(IDX_IMAGES_MAGIC, [chosen.length, 28, 28], bytes));
    fs.writeFileSync(
      path.join(idxDir, `${side}-labels-idx1-ubyte`),
      idx(
        IDX_LABELS_MAGIC,
        [chosen.length],
        Uint8Array.from(chosen, (d) => digits.labels[d]),
      ),
    );
  }
  const idxSpec = resolveDataArgument(idxDir, MNIST_MODEL);
  assert.equal(idxSpec.name, "idx");
  const fromIdx = loadDataset(idxSpec).train;
  const idxImages = new Map(Array.from({ length: fromIdx.count }, (_, i) => [imageKey(fromIdx, i), fromIdx.labels[i]]));
  for (const key of seen) assert.ok(idxImages.has(key), "each PNG digit equals its IDX twin");
});

test("the held-out split is seeded: same seed same split, another seed another", () => {
  const testSet = (seed: number) => {
    const t = loadDataset({ name: "image-folder", dir: digitDir, shape: [28, 28, 1], seed }).test;
    return Array.from({ length: t.count }, (_, i) => imageKey(t, i)).sort();
  };
  assert.deepEqual(testSet(0), testSet(0));
  assert.notDeepEqual(testSet(0), testSet(1));
  const a = loadDataset({ name: "image-folder", dir: digitDir, shape: [28, 28, 1], testFraction: 0.4, limitTrain: 7 });
  assert.deepEqual([a.train.count, a.test.count], [7, 20], "testFraction 0.4: 2 of 5 per class; limitTrain cuts the (shuffled) training split");
  assert.ok(new Set(a.train.labels).size > 2, "the training order is shuffled, not class by class");
});

test("JPEG images decode close to their source (lossy)", () => {
  const dir = path.join(tmp, "jpeg");
  const i = chosen[3];
  const rgba = new Uint8Array(PIXELS * 4);
  digitBytes(i).forEach((v, p) => rgba.set([v, v, v, 255], 4 * p));
  for (const cls of ["a", "b"]) {
    fs.mkdirSync(path.join(dir, cls), { recursive: true });
    fs.writeFileSync(path.join(dir, cls, "x.JPG"), jpeg.encode({ width: 28, height: 28, data: rgba }, 95).data);
    fs.writeFileSync(path.join(dir, cls, "y.jpeg"), jpeg.encode({ width: 28, height: 28, data: rgba }, 95).data);
  }
  const ds = loadDataset({ name: "image-folder", dir, shape: [28, 28, 1], testFraction: 0.5 });
  assert.deepEqual([ds.train.count, ds.test.count, ds.classes], [2, 2, 2]);
  let maxErr = 0;
  let sumErr = 0;
  for (let p = 0; p < PIXELS; p++) {
    const err = Math.abs(ds.train.images[p] - digits.images[i * PIXELS + p]);
    maxErr = Math.max(maxErr, err);
    sumErr += err;
  }
  assert.ok(maxErr > 0, "JPEG is lossy: not bit-exact");
  assert.ok(maxErr < 0.25 && sumErr / PIXELS < 0.02, `max error ${maxErr}, mean error ${sumErr / PIXELS}`);
});

test("RGB → grayscale is the BT.601 luma; grayscale → RGB repeats the value; checked by hand on 2×1 images", () => {
  const dir = path.join(tmp, "colour");
  writePng(path.join(dir, "rgb", "a.png"), 2, 1, [255, 0, 0, 10, 20, 30], 3);
  writePng(path.join(dir, "gray", "b.png"), 2, 1, [51, 204], 1);
  const gray = loadDataset({ name: "image-folder", dir, shape: [1, 2, 1], testFraction: 0.1 });
  const rgb = loadDataset({ name: "image-folder", dir, shape: [1, 2, 3], testFraction: 0.1 });
  const byLabel = (s: Split, label: number) =>
    Array.from(s.images.subarray(s.labels.indexOf(label) * 2 * s.shape[2], (s.labels.indexOf(label) + 1) * 2 * s.shape[2]));
  // Classes sorted: "gray" = 0, "rgb" = 1. 0.299·255 = 76.245; 0.299·10 + 0.587·20 + 0.114·30 = 18.15.
  assert.deepEqual(byLabel(gray.train, 1), [76.245 / 255, 18.15 / 255].map(Math.fround));
  assert.deepEqual(byLabel(gray.train, 0), [51 / 255, 204 / 255].map(Math.fround));
  assert.deepEqual(byLabel(rgb.train, 1), [1, 0, 0, 10 / 255, 20 / 255, 30 / 255].map(Math.fround));
  assert.deepEqual(
    byLabel(rgb.train, 0),
    [51, 51, 51, 204, 204, 204].map((v) => Math.fround(v / 255)),
  );
});

test("bilinear resizing: a 2×2 image to 4×4 and to 1×1 by hand, and random sizes against tf.image.resizeBilinear (half-pixel centres)", () => {
  const image = { width: 2, height: 2, channels: 1, data: Float32Array.from([0, 1, 2, 3]) };
  // Output i samples (i + 0.5)·(2/4) − 0.5 ∈ {−0.25→0, 0.25, 0.75, 1.25→1}; the image is x + 2y, so bilinear is exact.
  const s = [0, 0.25, 0.75, 1];
  assert.deepEqual(
    Array.from(resizeBilinear(image, 4, 4).data),
    s.flatMap((y) => s.map((x) => x + 2 * y)),
  );
  assert.deepEqual(Array.from(resizeBilinear(image, 1, 1).data), [1.5], "the centre: the mean of the four");
  for (const [h, w, c, oh, ow] of [
    [5, 7, 3, 3, 4],
    [5, 7, 1, 9, 11],
    [6, 4, 3, 6, 9],
  ]) {
    const data = Float32Array.from({ length: h * w * c }, (_, i) => Math.sin(i * 1.7) * 0.5 + 0.5);
    const ours = resizeBilinear({ width: w, height: h, channels: c, data }, oh, ow).data;
    const ref = tf.tidy(() => tf.image.resizeBilinear(tf.tensor4d(data, [1, h, w, c]), [oh, ow], false, true).dataSync());
    const diff = Math.max(...Array.from(ours, (v, i) => Math.abs(v - ref[i])));
    assert.ok(diff < 1e-6, `${h}×${w}×${c} → ${oh}×${ow}: max |ours − tf| = ${diff}`);
  }
  // Through a folder: a 2×2 PNG read as 4×4, and refused when resizing is off.
  const dir = path.join(tmp, "resize");
  writePng(path.join(dir, "only", "a.png"), 2, 2, [0, 85, 170, 255], 1);
  writePng(path.join(dir, "only", "b.png"), 2, 2, [0, 85, 170, 255], 1);
  const ds = loadDataset({ name: "image-folder", dir, shape: [4, 4, 1] });
  const unit = s.flatMap((y) => s.map((x) => (x * 85 + y * 170) / 255));
  assert.deepEqual([ds.train.count, ds.test.count], [2, 0], "round(2 · 0.2) = 0 held out");
  Array.from(ds.train.images).forEach((v, i) => assert.ok(Math.abs(v - unit[i % 16]) < 1e-6, `value ${i}: ${v} vs ${unit[i % 16]}`));
  assertThrowsWith(
    () => loadDataset({ name: "image-folder", dir, shape: [4, 4, 1], resize: "none" }),
    [path.join(dir, "only"), "2×2", "expected 4×4", 'resize: "none"'],
  );
});

test("an undecodable image is named in the error; empty classes, no classes and oversized folders are refused before decoding", () => {
  const dir = path.join(tmp, "broken");
  writePng(path.join(dir, "good", "a.png"), 2, 2, [0, 1, 2, 3], 1);
  fs.mkdirSync(path.join(dir, "bad"));
  fs.writeFileSync(path.join(dir, "bad", "notes.txt"), "ignored: not an image extension");
  const garbage = path.join(dir, "bad", "x.png");
  fs.writeFileSync(garbage, "this is not a PNG");
  assertThrowsWith(() => loadDataset({ name: "image-folder", dir, shape: [2, 2, 1] }), [garbage, "cannot decode", "expected a PNG"]);
  const png = PNG.sync.write(Object.assign(new PNG({ width: 8, height: 8 }), {}));
  fs.writeFileSync(garbage, png.subarray(0, png.length - 30));
  assertThrowsWith(() => loadDataset({ name: "image-folder", dir, shape: [2, 2, 1] }), [garbage, "cannot decode the image (PNG"]);
  assertThrowsWith(() => decodeImage(new Uint8Array([0xff, 0xd8, 0xff, 0, 1, 2]), "y.jpg"), ["y.jpg", "cannot decode the image (JPEG"]);

  fs.rmSync(garbage);
  assertThrowsWith(() => loadDataset({ name: "image-folder", dir, shape: [2, 2, 1] }), ['class folder "bad" holds no PNG or JPEG file']);
  assertThrowsWith(() => loadDataset({ name: "image-folder", dir: path.join(dir, "good"), shape: [2, 2, 1] }), ["has no sub-folders"]);
  assertThrowsWith(
    () => loadDataset({ name: "image-folder", dir: digitDir, shape: [4096, 4096, 3] }),
    ["50 images of 4096×4096×3", "expected at most", "1 GiB"],
  );
  assertThrowsWith(() => loadDataset({ name: "image-folder", dir: digitDir } as never), ['dataset spec "image-folder": shape: Required']);
});

test("toChannels drops alpha; decodeImage scales 16-bit PNGs to 8 bits", () => {
  const png = new PNG({ width: 1, height: 1 });
  png.data.set([200, 100, 50, 0]);
  const decoded = decodeImage(PNG.sync.write(png, { colorType: 6 }), "t.png");
  assert.deepEqual(Array.from(toChannels(decoded, 3).data), [200 / 255, 100 / 255, 50 / 255].map(Math.fround), "a transparent pixel keeps its colour");
  // A 16-bit RGB PNG (pngjs packs 16-bit input as 16-bit values): scaled to 8 bits, v·257 → v.
  const png16 = new PNG({ width: 1, height: 1 });
  (png16 as unknown as { data: Uint16Array }).data = Uint16Array.from([200 * 257, 100 * 257, 50 * 257, 65535]);
  const deep = decodeImage(PNG.sync.write(png16, { colorType: 2, bitDepth: 16, inputHasAlpha: true }), "t16.png");
  assert.deepEqual(Array.from(deep.data.subarray(0, 3)), [200, 100, 50]);
});

test("a shape or class mismatch between model and data is a clear error before any data is read", () => {
  assertThrowsWith(() => resolveDataArgument("mnist", { inputShape: [32, 32, 3], classes: 10 }), ['--data "mnist"', "28×28×1", "model's input is 32×32×3"]);
  assertThrowsWith(() => resolveDataArgument("fashion-mnist", { inputShape: [28, 28, 1], classes: 5 }), ['--data "fashion-mnist"', "10 classes", "5 outputs"]);
  assertThrowsWith(() => resolveDataArgument(digitDir, { inputShape: [28, 28, 1], classes: 3 }), [digitDir, "10 classes", "3 outputs"]);
  assertThrowsWith(() => resolveDataArgument(digitDir, { inputShape: [28, 28, 2], classes: 10 }), ["H×W×1 (grayscale) or H×W×3 (RGB)", "28×28×2"]);
  assert.deepEqual(resolveDataArgument(digitDir, { inputShape: [14, 14, 3], classes: 10 }).name, "image-folder", "resized and coloured to the model's input");
  assert.throws(
    () => resolveConfig({ preset: "quick", dataset: { name: "image-folder", dir: digitDir, shape: [32, 32, 1] } }),
    /model\.inputShape: the dataset's images are 32×32×1 \(H×W×C\); expected the model's input to be the same/,
  );
  const ok = resolveConfig({ preset: "quick", dataset: { name: "image-folder", dir: digitDir, shape: [28, 28, 1] } });
  assert.equal(ok.dataset.name, "image-folder");
});

test("the run key's data digest covers every image file's bytes and its class", () => {
  const dir = path.join(tmp, "digest");
  fs.cpSync(digitDir, dir, { recursive: true });
  const spec = { name: "image-folder" as const, dir, shape: [28, 28, 1] as [number, number, 1] };
  const before = datasetDigest(spec);
  assert.equal(before.train, before.test, "both sides depend on the whole folder");
  const file = path.join(dir, "3", fs.readdirSync(path.join(dir, "3"))[0]);
  const bytes = fs.readFileSync(file);
  fs.renameSync(file, path.join(dir, "5", path.basename(file)));
  const moved = datasetDigest(spec);
  assert.notEqual(moved.train, before.train, "same bytes, another class: another digest");
  fs.renameSync(path.join(dir, "5", path.basename(file)), file);
  assert.equal(datasetDigest(spec).train, before.train, "moved back: the same digest");
  const changed = Buffer.from(bytes);
  changed[changed.length - 1] ^= 1;
  fs.writeFileSync(file, changed);
  assert.notEqual(datasetDigest(spec).train, before.train, "one byte changed: another digest");
});

test("run keys of existing configs are the ones computed before the registry (the shipped records stay valid)", () => {
  // Printed by planRuns/planPretraining at the commit before src/datasets existed.
  const pinned = {
    quick: { runs: 50, digest: "5ccec187452f4881", pretrain: ["552de231e5cb0ece6c82169673859a5e"] },
    paper: {
      runs: 240,
      digest: "8b508364fcbcd433",
      pretrain: ["f294bc7d4caa938c304daa6379fc6692", "55f0a3b7280a0906e75935aacdb8e8db", "abf50ab5645d80e63d9c1e6cb98a1419"],
    },
  };
  for (const [preset, expected] of Object.entries(pinned)) {
    const config = loadConfig(preset);
    const runs = planRuns(config);
    const keys = runs.map((r) => r.key);
    assert.equal(keys.length, expected.runs, preset);
    assert.equal(createHash("sha256").update(keys.join(",")).digest("hex").slice(0, 16), expected.digest, `${preset}: the run keys`);
    assert.deepEqual(
      planPretraining(config, runs).map((p) => p.key),
      expected.pretrain,
      `${preset}: the checkpoint keys`,
    );
  }
});

test("fwprune datasets lists every registered dataset with its fields and defaults", () => {
  const out = spawnSync(process.execPath, ["--import", "tsx", path.join(__dirname, "..", "src", "cli.ts"), "datasets"], { encoding: "utf8" });
  assert.equal(out.status, 0, out.stderr);
  for (const name of datasetNames()) assert.match(out.stdout, new RegExp(`^${name}: `, "m"));
  assert.match(
    out.stdout,
    /^image-folder: [^\n]*\n {4}dir \(required\)\n {4}shape \(required\)\n {4}resize: "bilinear"\n {4}testFraction: 0\.2\n {4}seed: 0\n/m,
  );
});
