import { test } from "node:test";
import * as assert from "node:assert/strict";
import { createHash } from "crypto";
import { decodeContainer } from "../src/container";
import { decodeSparseWeights } from "../src/inference/export";
import { CONTAINER_MAGIC, FrameHeader, decodeFrame, encodeFrame, frameBody } from "../src/runtime/container-frame";
import { SPARSE_FORMAT, SPARSE_KIND, decodeSparseFile } from "../src/runtime/format";

// The one container framing (src/runtime/container-frame.ts) on tiny cases: its bytes laid out by hand, every
// flipped bit and every truncation refused, a wrong kind or identity refused, the older formats' magics refused with
// their messages; checkpoints, masks, final models and sparse models are this framing, and one is never read as another.

const sha256 = (b: Uint8Array) => new Uint8Array(createHash("sha256").update(b).digest());
const decode = (bytes: Uint8Array, expected: { kind: string; identity?: Record<string, string | number> } = { kind: "thing" }) =>
  decodeFrame<FrameHeader & { extra: number[] }>(bytes, sha256(frameBody(bytes, "f.bin", expected)), "f.bin", expected);
const HEADER = { kind: "thing", identity: { id: "x", n: 3 }, extra: [1, 2] };
const bytes = encodeFrame(HEADER, [Uint8Array.of(1, 2, 3), Uint8Array.of(4)], sha256);
const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
/** A frame whose header and payload are these bytes as they are, with a correct digest. */
const framed = (header: Uint8Array, payload = new Uint8Array(0), length = header.length) => {
  const prefix = new Uint8Array(12);
  prefix.set(ascii(CONTAINER_MAGIC));
  new DataView(prefix.buffer).setUint32(8, length, true);
  const body = Uint8Array.from([...prefix, ...header, ...payload]);
  return Uint8Array.from([...body, ...sha256(body)]);
};

test("a frame is the magic, the header's length, the header, the payload and the SHA-256 of all of them; it round-trips", async () => {
  const json = ascii(JSON.stringify(HEADER));
  const body = Uint8Array.from([...ascii("FWPRUNE1"), json.length, 0, 0, 0, ...json, 1, 2, 3, 4]);
  assert.deepEqual(bytes, Uint8Array.from([...body, ...sha256(body)]));
  const back = decode(bytes, { kind: "thing", identity: { n: 3 } });
  assert.deepEqual(back.header, HEADER);
  assert.deepEqual(back.payload, Uint8Array.of(1, 2, 3, 4));
  // Web Crypto's digest (the browser runtime's) is the same
  const web = new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", frameBody(bytes, "f.bin", { kind: "thing" })));
  assert.deepEqual(decodeFrame(bytes, web, "f.bin", { kind: "thing" }).payload, Uint8Array.of(1, 2, 3, 4));
});

test("every flipped bit and every truncation of a frame is refused", () => {
  for (let i = 0; i < bytes.length; i++) {
    for (let bit = 0; bit < 8; bit++) {
      const flipped = bytes.slice();
      flipped[i] ^= 1 << bit;
      assert.throws(
        () => decode(flipped),
        /f\.bin: (does not match its SHA-256 \(truncated, corrupted or edited\)|not an fwprune thing file)/,
        `byte ${i} bit ${bit}`,
      );
    }
  }
  for (let n = 0; n < bytes.length; n++) {
    assert.throws(
      () => decode(bytes.subarray(0, n)),
      /f\.bin: (does not match its SHA-256|not an fwprune thing file \(expected the magic "FWPRUNE1"\))/,
      `${n} bytes`,
    );
  }
});

test("a frame of another kind, or of another identity, is refused naming both", () => {
  assert.throws(() => decode(bytes, { kind: "checkpoint" }), /f\.bin: is a thing file; expected a checkpoint/);
  assert.throws(
    () => decode(bytes, { kind: "thing", identity: { id: "x", n: 4 } }),
    /f\.bin: says it is the thing of n 3; expected 4 \(a file copied or renamed from another's place\)/,
  );
  assert.throws(() => decode(bytes, { kind: "thing", identity: { epoch: 1 } }), /says it is the thing of epoch undefined; expected 1/);
  // a sparse model is never read as a checkpoint, nor a checkpoint as a sparse model
  const checkpoint = encodeFrame({ kind: "checkpoint", identity: {}, weightSpecs: [], info: {} } as FrameHeader, [], sha256);
  assert.equal(decodeContainer(checkpoint, "e1.ckpt", { kind: "checkpoint" }).header.kind, "checkpoint");
  assert.throws(() => decodeSparseWeights(checkpoint, "e1.ckpt"), /e1\.ckpt: is a checkpoint file; expected a sparse model/);
  const sparse = encodeFrame({ kind: SPARSE_KIND, identity: { model: "m" } }, [], sha256);
  assert.throws(() => decodeContainer(sparse, "m.fwsparse", { kind: "checkpoint" }), /m\.fwsparse: is a sparse model file; expected a checkpoint/);
});

test("a header running past the end, one that is not JSON, or one without kind and identity is refused (digest correct)", () => {
  assert.throws(() => decode(framed(ascii("{}"), new Uint8Array(0), 40)), /f\.bin: header of 40 bytes runs past the end of the file/);
  assert.throws(() => decode(framed(ascii("{kind"))), /f\.bin: header is not valid JSON/);
  assert.throws(() => decode(framed(Uint8Array.of(0x22, 0xff, 0x22))), /f\.bin: header is not valid JSON/, "not UTF-8");
  assert.throws(() => decode(framed(ascii('{"kind":"thing"}'))), /f\.bin: header lacks kind or identity/);
  assert.throws(() => decode(framed(ascii('{"kind":"thing","identity":[]}'))), /f\.bin: header lacks kind or identity/);
  assert.deepEqual(decode(framed(ascii('{"kind":"thing","identity":{}}'), Uint8Array.of(9))).payload, Uint8Array.of(9));
});

test("the older formats' magics are refused, each with its message", () => {
  const old = (magic: string) => {
    const b = bytes.slice();
    b.set(ascii(magic));
    return b;
  };
  const cases: [string, RegExp][] = [
    [
      "FWPCKPT2",
      /f\.bin: an fwprune checkpoint of an older format \(FWPCKPT2\), whose header was outside its checksum .* refused \(a sweep computes it again\)/,
    ],
    ["FWPMASK1", /f\.bin: an fwprune mask of an older format \(FWPMASK1\)/],
    ["FWSPARS1", /f\.bin: a format-1 sparse file \(its digest did not cover the header\); export the model again/],
    ["FWSPARS2", /f\.bin: a format-2 sparse file \(an older fwprune's, for the paper CNN's layers only\); write it again with this fwprune/],
    ["FWSPARS3", /f\.bin: a format-3 sparse file .*; write it again with this fwprune \(fwprune export or fwprune prune\)/],
  ];
  for (const [magic, expected] of cases) assert.throws(() => decode(old(magic)), expected, magic);
  assert.throws(() => decode(old("FWPRUNE2")), /f\.bin: not an fwprune thing file \(expected the magic "FWPRUNE1"\)/);
});

test("a sparse model's header: its format is 4, and its identity names its graph", () => {
  const sparse = (header: object) => {
    const b = encodeFrame({ kind: SPARSE_KIND, identity: { model: "m" }, ...header }, [], sha256);
    return decodeSparseFile(b, sha256(b.subarray(0, b.length - 32)), "m.fwsparse");
  };
  const model = { name: "m", form: "functional", nodes: [] };
  assert.equal(SPARSE_FORMAT, 4);
  assert.deepEqual(sparse({ format: 4, model, tensors: [] }).header.model, model);
  assert.throws(() => sparse({ format: 3, model, tensors: [] }), /m\.fwsparse: format 3; expected 4/);
  assert.throws(
    () => sparse({ format: 4, model: { ...model, name: "n" }, tensors: [] }),
    /m\.fwsparse: says it is the sparse model of model "m"; its graph is "n"/,
  );
});
