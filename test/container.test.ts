import { test } from "node:test";
import * as assert from "node:assert/strict";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as zlib from "zlib";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/backend";
import { CONTAINER_MAGIC, decodeContainer, encodeContainer } from "../src/container";
import {
  RunRecord,
  cachedCheckpointProblem,
  checkpointFile,
  checkpointIdentity,
  intactEpochs,
  loadCachedCheckpoint,
  readPretrainInfo,
  recordChecksum,
  runFile,
  sealedJson,
  shippedRecord,
  SHIPPED_DIR,
  unsealJson,
  verifyRecordText,
  writeRecord,
  writeShipped,
} from "../src/experiment";
import { indexFile } from "../src/experiment/shipped";
import { mergeDataDirs } from "../src/experiment/merge";
import { ModelSpec, createModel, disposeModel, getWeights } from "../src/model";
import { loadMask, saveMask } from "../src/prune/mask";
import { checkpointBytesProblem, loadCheckpoint, saveCheckpoint } from "../src/train";

// The one container format (src/container.ts): one SHA-256 over every byte, header included; files that say what
// they are and belong to; old-format files refused with a message, then computed again.

const SMALL: ModelSpec = {
  name: "small",
  inputShape: [4, 4, 1],
  layers: [{ type: "conv2d", filters: 2, kernelSize: 3, activation: "relu" }, { type: "flatten" }, { type: "dense", units: 3 }],
};
const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `fwprune-container-${name}-`));
const KEY = "0123456789abcdef0123456789abcdef";

test("a container round-trips float32, int32 and bool tensors with its kind, identity and info; its data is tf.io's encoding", async () => {
  await initBackend("wasm", { quiet: true });
  const tensors = {
    a: tf.tensor2d([
      [1.5, -2],
      [0, 3],
    ]),
    b: tf.tensor1d([7, -8], "int32"),
    c: tf.tensor1d([1, 0, 1], "bool"),
  };
  const bytes = await encodeContainer("thing", { id: "x", n: 3 }, tensors, { note: [1, 2] });
  const { data } = await tf.io.encodeWeights(tensors);
  tf.dispose(Object.values(tensors));
  assert.equal(bytes.subarray(0, 8).toString("latin1"), CONTAINER_MAGIC);
  const headerLength = bytes.readUInt32LE(8);
  assert.deepEqual(bytes.subarray(12 + headerLength, bytes.length - 32), Buffer.from(data), "the data section is tf.io.encodeWeights' bytes");
  const back = decodeContainer(bytes, "mem", { kind: "thing", identity: { id: "x" } });
  assert.deepEqual(back.header.identity, { id: "x", n: 3 });
  assert.deepEqual(back.header.info, { note: [1, 2] });
  assert.deepEqual(back.arrays.a, Float32Array.from([1.5, -2, 0, 3]));
  assert.deepEqual(back.arrays.b, Int32Array.from([7, -8]));
  assert.deepEqual(back.arrays.c, Uint8Array.from([1, 0, 1]));
  const viaTf = tf.io.decodeWeights(data, back.header.weightSpecs);
  for (const [name, t] of Object.entries(viaTf)) assert.deepEqual(back.arrays[name], t.dataSync(), `${name} as tf.io.decodeWeights reads it`);
  tf.dispose(Object.values(viaTf));
  assert.throws(() => decodeContainer(bytes, "mem", { kind: "checkpoint" }), /mem: is a thing file; expected a checkpoint/);
  assert.throws(() => decodeContainer(bytes, "mem", { kind: "thing", identity: { n: 4 } }), /mem: says it is the thing of n 3; expected 4/);
});

test("a single-bit flip anywhere in a checkpoint file, header included, is refused (every bit of every byte)", async () => {
  await initBackend("wasm", { quiet: true });
  const dir = tmp("flip");
  const file = path.join(dir, "e1.ckpt");
  const model = createModel(SMALL, 1);
  await saveCheckpoint(file, model, checkpointIdentity(KEY, 1), { meanLoss: 0.5 });
  disposeModel(model);
  const bytes = fs.readFileSync(file);
  assert.ok(bytes.length < 2000, `a small file (${bytes.length} bytes)`);
  assert.equal(checkpointBytesProblem(bytes, file, checkpointIdentity(KEY, 1)), undefined);
  let refused = 0;
  for (let i = 0; i < bytes.length; i++) {
    for (let bit = 0; bit < 8; bit++) {
      const flipped = Buffer.from(bytes);
      flipped[i] ^= 1 << bit;
      const problem = checkpointBytesProblem(flipped, file, checkpointIdentity(KEY, 1));
      assert.ok(problem !== undefined, `byte ${i} bit ${bit} flipped: accepted`);
      refused++;
    }
  }
  assert.equal(refused, 8 * bytes.length);
  // The header in particular: the model spec (turning a relu into linear) is under the digest.
  const text = bytes.toString("latin1");
  const at = text.indexOf('"relu"');
  assert.ok(at > 0);
  const edited = Buffer.from(text.slice(0, at) + '"ReLU"' + text.slice(at + 6), "latin1");
  assert.match(checkpointBytesProblem(edited, file) ?? "", /does not match its SHA-256/);
});

test("a checkpoint copied over another epoch's (or another pre-training's) name is refused, and pre-trained again", async () => {
  await initBackend("wasm", { quiet: true });
  const dataDir = tmp("renamed");
  const model = createModel(SMALL, 2);
  await saveCheckpoint(checkpointFile(dataDir, KEY, 1), model, checkpointIdentity(KEY, 1));
  fs.copyFileSync(checkpointFile(dataDir, KEY, 1), checkpointFile(dataDir, KEY, 2));
  const otherKey = "f".repeat(32);
  fs.mkdirSync(path.dirname(checkpointFile(dataDir, otherKey, 1)), { recursive: true });
  fs.copyFileSync(checkpointFile(dataDir, KEY, 1), checkpointFile(dataDir, otherKey, 1));
  assert.deepEqual(intactEpochs(dataDir, KEY, 2), [1], "epoch 2's file is epoch 1's: not intact");
  assert.match(cachedCheckpointProblem(dataDir, KEY, 2) ?? "", /epoch-002\.ckpt: says it is the checkpoint of epoch 1; expected 2/);
  assert.match(cachedCheckpointProblem(dataDir, otherKey, 1) ?? "", new RegExp(`says it is the checkpoint of pretrainKey "${KEY}"; expected "${otherKey}"`));
  assert.throws(() => loadCachedCheckpoint(dataDir, KEY, 2), /expected 2/);
  assert.deepEqual(getWeights(loadCachedCheckpoint(dataDir, KEY, 1).model), getWeights(model));
  disposeModel(model);
});

test("merge refuses a checkpoint whose file says it is another epoch's; copies the right one", async () => {
  await initBackend("wasm", { quiet: true });
  const source = tmp("merge-src");
  const into = tmp("merge-into");
  const model = createModel(SMALL, 3);
  await saveCheckpoint(checkpointFile(source, KEY, 1), model, checkpointIdentity(KEY, 1));
  fs.copyFileSync(checkpointFile(source, KEY, 1), checkpointFile(source, KEY, 3));
  disposeModel(model);
  const report = mergeDataDirs([source], into);
  assert.equal(report.checkpoints.copied, 1);
  assert.equal(report.invalid.length, 1);
  assert.match(report.invalid[0], /epoch-003\.ckpt: says it is the checkpoint of epoch 1; expected 3/);
  assert.ok(!fs.existsSync(checkpointFile(into, KEY, 3)));
});

test("a checkpoint or mask of the old formats (header outside the checksum) is refused with a message; a sweep's cache treats it as missing", async () => {
  await initBackend("wasm", { quiet: true });
  const dataDir = tmp("old");
  const file = checkpointFile(dataDir, KEY, 1);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const header = Buffer.from(
    JSON.stringify({ spec: SMALL, weightSpecs: [], sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", meta: {} }),
  );
  const length = Buffer.alloc(4);
  length.writeUInt32LE(header.length);
  fs.writeFileSync(file, Buffer.concat([Buffer.from("FWPCKPT2"), length, header]));
  assert.match(cachedCheckpointProblem(dataDir, KEY, 1) ?? "", /an fwprune checkpoint of an older format \(FWPCKPT2\).*refused \(a sweep computes it again\)/);
  assert.deepEqual(intactEpochs(dataDir, KEY, 1), []);
  fs.writeFileSync(file + ".mask", Buffer.concat([Buffer.from("FWPMASK1"), length, header]));
  assert.throws(() => loadMask(file + ".mask"), /older format \(FWPMASK1\)/);
  assert.throws(() => loadCheckpoint(file), /older format/);
});

test("a mask file says what it belongs to; every single-bit flip in it is refused", async () => {
  await initBackend("wasm", { quiet: true });
  const dir = tmp("mask");
  const file = path.join(dir, "m.mask");
  const mask = { "conv1/kernel": Float32Array.from([1, 0, 1, 1, 0]), "dense1/kernel": Float32Array.from([0, 1]) };
  await saveMask(file, mask, { pretrainKey: KEY, epoch: 1, method: "magnitude" }, { sparsity: 0.4 });
  assert.deepEqual(loadMask(file, { pretrainKey: KEY, epoch: 1 }).mask, mask);
  assert.throws(() => loadMask(file, { epoch: 2 }), /says it is the mask of epoch 1; expected 2/);
  const bytes = fs.readFileSync(file);
  for (let i = 0; i < bytes.length; i++) {
    const flipped = Buffer.from(bytes);
    flipped[i] ^= 1 << (i % 8);
    fs.writeFileSync(file, flipped);
    assert.throws(() => loadMask(file), Error, `byte ${i} flipped: accepted`);
  }
});

/** A failed run record as writeRecord takes it (no checksum yet). */
function failedRecordLike(key: string): RunRecord {
  return {
    format: 3,
    key,
    status: "failed",
    reason: "a reason",
    label: "fw",
    method: "fw",
    seed: 0,
    budget: 1,
    sparsityTarget: 0.9,
    inputs: { format: 3, checkpoint: { pretrainKey: key, epoch: 1 }, method: "fw" },
    config: { name: "x" },
    backend: "wasm",
    versions: { fwprune: "0.1.0", tfjs: "4.22.0", node: "v20" },
    createdAt: new Date(0).toISOString(),
    host: "h",
    pid: 1,
  } as unknown as RunRecord;
}

test("a single-bit flip anywhere in a run record's file is refused (one bit of every byte)", () => {
  const dataDir = tmp("record");
  const record = failedRecordLike(KEY);
  writeRecord(dataDir, record);
  const file = runFile(dataDir, KEY);
  const bytes = fs.readFileSync(file);
  assert.equal(verifyRecordText(bytes.toString("utf8"), KEY, file).kind, "ok");
  for (let i = 0; i < bytes.length; i++) {
    for (let bit = 0; bit < 8; bit++) {
      const flipped = Buffer.from(bytes);
      flipped[i] ^= 1 << bit;
      assert.equal(
        verifyRecordText(flipped.toString("utf8"), KEY, file).kind,
        "corrupt",
        `byte ${i} (${JSON.stringify(String.fromCharCode(bytes[i]))}) bit ${bit} flipped: accepted`,
      );
    }
  }
});

test("a shipped record is checked when a run asks for it: tampered lines are reported and passed over, the last intact one used", (t) => {
  const dir = tmp("shipped");
  const base = { ...failedRecordLike(KEY), checksum: undefined };
  const intact = { ...base, checksum: recordChecksum(base as RunRecord) };
  const tampered = { ...intact, reason: "another reason" }; // its checksum no longer matches
  const otherKey = KEY.replace("0", "f");
  const other = { ...intact, key: otherKey, checksum: undefined };
  const otherTampered = { ...other, checksum: recordChecksum(other as RunRecord), label: "edited" };
  const edited = { ...intact, label: "edited" };
  const intactLater = { ...base, createdAt: new Date(1).toISOString() };
  const later = { ...intactLater, checksum: recordChecksum(intactLater as RunRecord) };
  // For KEY: tampered, intact, edited, intact again (the last valid line wins; every bad one is reported); a key with
  // only a tampered line; a line without a key; a line whose key is not where records write it (found by parsing).
  const moved = failedRecordLike(KEY.replace("1", "e"));
  const movedSealed = Object.assign({ label: "" }, moved, { checksum: recordChecksum(moved) }); // label's place first
  const texts = [tampered, intact, edited, later, otherTampered, { no: "key" }, movedSealed].map((r) => JSON.stringify(r));
  fs.writeFileSync(path.join(dir, "x.jsonl.gz"), zlib.gzipSync(texts.join("\n") + "\n"));
  const errors: string[] = [];
  t.mock.method(console, "error", (message: string) => errors.push(message));
  assert.deepEqual(shippedRecord(KEY, dir), later);
  assert.equal(shippedRecord(otherKey, dir), undefined);
  assert.equal(shippedRecord(otherKey, dir), undefined, "asked again: still refused");
  assert.deepEqual(shippedRecord(moved.key, dir), movedSealed);
  assert.equal(errors.length, 4, errors.join("\n"));
  assert.match(errors[0], /ignoring line 6 of .*x\.jsonl\.gz: not JSON with a "key" field/);
  assert.match(errors[1], /ignoring line 1 of .*x\.jsonl\.gz: .*checksum/);
  assert.match(errors[2], /ignoring line 3 of .*x\.jsonl\.gz: .*checksum/);
  assert.match(errors[3], /ignoring line 5 of .*x\.jsonl\.gz: .*checksum/);
  fs.rmSync(dir, { recursive: true });
});

const sealedRecord = (key: string): RunRecord => {
  const base = { ...failedRecordLike(key), checksum: undefined };
  return { ...base, checksum: recordChecksum(base as RunRecord) };
};
const sha256 = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex");

test("a shipped file is decompressed only for a key its index lists; an index of other bytes is passed over", (t) => {
  const dir = tmp("shipped-index");
  const [first, second] = [KEY, KEY.replace("0", "e")].map(sealedRecord);
  const file = path.join(dir, "a.jsonl.gz");
  writeShipped(file, [second, first]);
  const index = JSON.parse(fs.readFileSync(indexFile(file), "utf8"));
  assert.deepEqual(index, { of: sha256(fs.readFileSync(file)), keys: [first.key, second.key] });
  // A file that is no gzip at all, whose current index lists one key: decompressed (and reported) only for that key.
  const broken = path.join(dir, "b.jsonl.gz");
  fs.writeFileSync(broken, "not gzip");
  const listed = "f".repeat(32);
  fs.writeFileSync(indexFile(broken), JSON.stringify({ of: sha256("not gzip"), keys: [listed] }));
  const errors: string[] = [];
  t.mock.method(console, "error", (message: string) => errors.push(message));
  assert.deepEqual(shippedRecord(second.key, dir), second);
  assert.deepEqual(shippedRecord(first.key, dir), first);
  assert.equal(shippedRecord("a".repeat(32), dir), undefined);
  assert.deepEqual(errors, [], "b.jsonl.gz was decompressed for keys its index does not list");
  assert.equal(shippedRecord(listed, dir), undefined);
  assert.equal(errors.length, 1);
  assert.match(errors[0], /ignoring .*b\.jsonl\.gz: not a gzipped file/);
  // Lines added without a new index: the index no longer matches, so the file is read whole and the new key found.
  const stale = tmp("shipped-stale");
  const staleFile = path.join(stale, "a.jsonl.gz");
  writeShipped(staleFile, [second]);
  fs.writeFileSync(staleFile, zlib.gzipSync([second, first].map((r) => JSON.stringify(r)).join("\n") + "\n"));
  assert.deepEqual(shippedRecord(first.key, stale), first);
  fs.rmSync(dir, { recursive: true });
  fs.rmSync(stale, { recursive: true });
});

test("every shipped file has a current index: the SHA-256 of its bytes and every key of its lines", () => {
  const files = fs.readdirSync(SHIPPED_DIR).filter((f) => f.endsWith(".jsonl.gz"));
  assert.ok(files.length > 0);
  for (const name of files) {
    const file = path.join(SHIPPED_DIR, name);
    const bytes = fs.readFileSync(file);
    const keys = zlib
      .gunzipSync(bytes)
      .toString("utf8")
      .split("\n")
      .filter((line) => line.trim() !== "")
      .map((line) => (JSON.parse(line) as RunRecord).key);
    const index = JSON.parse(fs.readFileSync(indexFile(file), "utf8"));
    assert.equal(index.of, sha256(bytes), `${indexFile(file)} indexes other bytes than ${name}'s: run fwprune ship again`);
    assert.deepEqual(index.keys, [...new Set(keys)].sort(), indexFile(file));
  }
});

test("a pre-training log is sealed like a record: read back intact, refused when edited or another key's", () => {
  const dataDir = tmp("pretrain-log");
  const file = path.join(dataDir, "checkpoints", KEY, "pretrain.json");
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const log = { key: KEY, epochsDone: 1, losses: [0.5], epochSeconds: [2] };
  fs.writeFileSync(file, sealedJson(log));
  assert.deepEqual(readPretrainInfo(dataDir, KEY)?.losses, [0.5]);
  fs.writeFileSync(file, sealedJson(log).replace('"epochsDone": 1', '"epochsDone": 1, "failed": "forged"'));
  assert.equal(readPretrainInfo(dataDir, KEY), undefined, "an edit (a forged failure) is refused");
  fs.writeFileSync(file, JSON.stringify(log));
  assert.equal(readPretrainInfo(dataDir, KEY), undefined, "an unsealed (old) log counts as absent");
  const other = "e".repeat(32);
  fs.mkdirSync(path.join(dataDir, "checkpoints", other));
  fs.writeFileSync(path.join(dataDir, "checkpoints", other, "pretrain.json"), sealedJson(log));
  assert.equal(readPretrainInfo(dataDir, other), undefined, "another key's log");
  const bytes = Buffer.from(sealedJson(log));
  for (let i = 0; i < bytes.length; i++) {
    const flipped = Buffer.from(bytes);
    flipped[i] ^= 1 << (i % 8);
    assert.equal(unsealJson(flipped.toString("utf8")), undefined, `byte ${i} flipped: accepted`);
  }
});
