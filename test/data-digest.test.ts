import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { IDX_FILES } from "../src/data";
import { datasetDigest, loadDataset } from "../src/datasets";
import { readEmbeddedMnist } from "../src/datasets/mnist-embedded";
import { planRuns, resolveConfig, sweep } from "../src/experiment";

// Hash what you read: a run's dataset digest comes from the bytes the loader read; a file edited between planning a
// sweep and loading its data fails the runs, and nothing is recorded under the key of the old content.

const SMALL_MODEL = {
  name: "small",
  inputShape: [28, 28, 1],
  layers: [{ type: "conv2d", filters: 2, kernelSize: 3, activation: "relu" }, { type: "maxpool", size: 4 }, { type: "flatten" }, { type: "dense", units: 10 }],
};

/** An IDX folder of the first `train` and the next `test` embedded digits. */
function writeIdxFolder(dir: string, train = 200, test = 100): void {
  const all = readEmbeddedMnist();
  const order = Array.from({ length: train + test }, (_, i) => (i * 37) % all.count); // mixed digits
  const write = (file: string, magic: number, dims: number[], data: Uint8Array) => {
    const header = Buffer.alloc(4 + 4 * dims.length);
    header.writeUInt32BE(magic, 0);
    dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
    fs.writeFileSync(path.join(dir, file), Buffer.concat([header, data]));
  };
  const side = (idx: number[], images: string, labels: string) => {
    const pixels = new Uint8Array(idx.length * 784);
    idx.forEach((src, i) => {
      for (let p = 0; p < 784; p++) pixels[i * 784 + p] = Math.round(all.images[src * 784 + p] * 255);
    });
    write(images, 0x803, [idx.length, 28, 28], pixels);
    write(labels, 0x801, [idx.length], Uint8Array.from(idx.map((src) => all.labels[src])));
  };
  fs.mkdirSync(dir, { recursive: true });
  side(order.slice(0, train), IDX_FILES.trainImages, IDX_FILES.trainLabels);
  side(order.slice(train), IDX_FILES.testImages, IDX_FILES.testLabels);
}

/** Change one label of an IDX labels file (to another valid class). */
function editLabel(file: string): void {
  const bytes = fs.readFileSync(file);
  bytes[8] = (bytes[8] + 1) % 10;
  fs.writeFileSync(file, bytes);
}

const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `fwprune-digest-${name}-`));
const listed = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir) : []);

test("the loaders' digests, from the bytes they read, equal the planned ones (IDX folder, gzipped or not, and the embedded digits)", () => {
  const dir = tmp("loaders");
  writeIdxFolder(dir);
  const spec = { name: "idx" as const, dir, limitTrain: 50 };
  const loaded = loadDataset(spec);
  assert.deepEqual({ train: loaded.train.digest, test: loaded.test.digest }, datasetDigest(spec));
  editLabel(path.join(dir, IDX_FILES.testLabels));
  const again = loadDataset(spec);
  assert.equal(again.train.digest, loaded.train.digest);
  assert.notEqual(again.test.digest, loaded.test.digest);
  assert.equal(again.test.digest, datasetDigest(spec).test);
  const embedded = { name: "mnist-embedded" as const, limitTrain: 10, limitTest: 10 };
  const e = loadDataset(embedded);
  assert.deepEqual({ train: e.train.digest, test: e.test.digest }, datasetDigest(embedded));
});

test("a labels file edited between planning and loading fails the runs, records nothing, and pre-trains nothing", { timeout: 120_000 }, async () => {
  const dir = tmp("train-edit");
  const idx = path.join(dir, "idx");
  writeIdxFolder(idx);
  const config = resolveConfig({
    preset: "quick",
    name: "digest-test",
    dataset: { name: "idx", dir: idx },
    model: SMALL_MODEL,
    pretrain: { epochs: 1 },
    budgets: [1],
    methods: ["dense", "magnitude"],
    inference: { repeats: 1 },
  });
  const dataDir = path.join(dir, "data");
  let edited = false;
  const events: string[] = [];
  const result = await sweep(config, {
    dataDir,
    workers: 0,
    onProgress: (p) => {
      if (!edited) {
        editLabel(path.join(idx, IDX_FILES.trainLabels)); // after planning, before any file is loaded
        edited = true;
      }
      if (p.event) events.push(p.event);
    },
  });
  assert.equal(result.failed, 2);
  for (const r of result.records) assert.match(r.reason ?? "", /the train files of idx:.* changed after the sweep was planned .*nothing was recorded/);
  assert.ok(
    events.some((e) => /FAILED \(not recorded\)/.test(e)),
    events.join("\n"),
  );
  assert.deepEqual(listed(path.join(dataDir, "runs")), [], "no record under the old content's keys");
  const ckptDir = path.join(dataDir, "checkpoints");
  assert.deepEqual(
    listed(ckptDir).flatMap((k) => listed(path.join(ckptDir, k))),
    [],
    "no checkpoint, no pre-training log",
  );
  // Planned again on the files as they are: new keys, computed.
  const again = await sweep(config, { dataDir, workers: 0 });
  assert.equal(again.failed, 0);
  assert.equal(listed(path.join(dataDir, "runs")).filter((f) => f.endsWith(".json")).length, 2);
});

test(
  "a test labels file edited after pre-training: the runs fail under no key, with a worker process too; the checkpoint stays",
  { timeout: 180_000 },
  async () => {
    const dir = tmp("test-edit");
    const idx = path.join(dir, "idx");
    writeIdxFolder(idx);
    const base = {
      preset: "quick",
      name: "digest-test",
      dataset: { name: "idx", dir: idx },
      model: SMALL_MODEL,
      pretrain: { epochs: 1 },
      budgets: [1],
      inference: { repeats: 1 },
    };
    const dataDir = path.join(dir, "data");
    const first = await sweep(resolveConfig({ ...base, methods: ["dense"] }), { dataDir, workers: 0 });
    assert.equal(first.failed, 0);
    const config = resolveConfig({ ...base, methods: ["dense", "magnitude", "random"] });
    const plannedKeys = planRuns(config).map((r) => r.key);
    let edited = false;
    const result = await sweep(config, {
      dataDir,
      workers: 1,
      onProgress: () => {
        if (!edited) editLabel(path.join(idx, IDX_FILES.testLabels));
        edited = true;
      },
    });
    assert.equal(result.cached, 1, "dense was recorded before the edit");
    assert.equal(result.failed, 2);
    for (const r of result.records.filter((x) => x.status === "failed"))
      assert.match(r.reason ?? "", /the test files of idx:.* changed after the sweep was planned/);
    const stored = listed(path.join(dataDir, "runs")).map((f) => f.replace(/\.json$/, ""));
    assert.deepEqual(
      stored.filter((k) => plannedKeys.includes(k)),
      first.records.map((r) => r.key),
      "only the run recorded before the edit",
    );
  },
);
