import { createHash } from "crypto";
import * as fs from "fs";
import * as tf from "@tensorflow/tfjs";
import { writeFileAtomic } from "./fsutil";

/**
 * The one binary file format of fwprune (checkpoints, masks): a file that proves what it is and that no byte of it
 * changed.
 *
 *   "FWPRUNE1"  8 bytes, the magic
 *   uint32 LE   length of the header
 *   header      JSON: { kind, identity, weightSpecs, info }
 *   data        the tensors as tf.io.encodeWeights writes them (weightSpecs gives name, shape, dtype, in order)
 *   SHA-256     32 bytes, of every byte before it: magic, length, header and data
 *
 * `kind` says what the file is ("checkpoint", "mask"); `identity` what it belongs to (a checkpoint: its pre-training
 * key and epoch). A reader names the kind and the identity it expects, and anything else is refused: a file copied
 * over another's name, or one whose header was edited, is never used as the file it replaced.
 */
export const CONTAINER_MAGIC = "FWPRUNE1";
const DIGEST_BYTES = 32;
/** Magic numbers of the formats before this one: their headers were outside their checksum. */
const OLD_FORMATS: Record<string, string> = { FWPCKPT2: "checkpoint", FWPMASK1: "mask" };

export type Identity = Record<string, string | number>;

export interface ContainerHeader {
  kind: string;
  identity: Identity;
  weightSpecs: tf.io.WeightsManifestEntry[];
  info: Record<string, unknown>;
}

export type DecodedArray = Float32Array | Int32Array | Uint8Array;

export interface Container {
  header: ContainerHeader;
  /** Each tensor's values (float32, int32, or bool as 0/1 bytes), by name. */
  arrays: Record<string, DecodedArray>;
}

/** What a reader expects: the kind, and the identity fields that must match (others in the file are allowed). */
export interface Expected {
  kind: string;
  identity?: Identity;
}

/** The file's bytes: `tensors` encoded by tf.io.encodeWeights, under a header, then the SHA-256 of all of it. */
export async function encodeContainer(kind: string, identity: Identity, tensors: tf.NamedTensorMap, info: Record<string, unknown> = {}): Promise<Buffer> {
  const { data, specs } = await tf.io.encodeWeights(tensors);
  const header: ContainerHeader = { kind, identity, weightSpecs: specs, info };
  const headerBytes = Buffer.from(JSON.stringify(header), "utf8");
  const length = Buffer.alloc(4);
  length.writeUInt32LE(headerBytes.length);
  const body = Buffer.concat([Buffer.from(CONTAINER_MAGIC, "latin1"), length, headerBytes, Buffer.from(data)]);
  return Buffer.concat([body, createHash("sha256").update(body).digest()]);
}

/** Write a container atomically (see writeFileAtomic). */
export async function writeContainer(
  file: string,
  kind: string,
  identity: Identity,
  tensors: tf.NamedTensorMap,
  info: Record<string, unknown> = {},
): Promise<void> {
  writeFileAtomic(file, await encodeContainer(kind, identity, tensors, info));
}

const BYTES_PER_ELEMENT: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

/** A container's bytes checked (digest first, then header, length, kind, identity) and decoded; throws naming `source`. */
export function decodeContainer(bytes: Uint8Array, source: string, expected: Expected): Container {
  const fail = (what: string): never => {
    throw new Error(`${source}: ${what}`);
  };
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const magic = buf.subarray(0, 8).toString("latin1");
  if (OLD_FORMATS[magic]) {
    fail(
      `an fwprune ${OLD_FORMATS[magic]} of an older format (${magic}), whose header was outside its checksum and which does not say what it belongs to; refused (a sweep computes it again)`,
    );
  }
  if (buf.length < 12 + DIGEST_BYTES || magic !== CONTAINER_MAGIC) fail(`not an fwprune ${expected.kind} file (expected the magic "${CONTAINER_MAGIC}")`);
  const body = buf.subarray(0, buf.length - DIGEST_BYTES);
  if (!createHash("sha256").update(body).digest().equals(buf.subarray(body.length))) fail("does not match its SHA-256 (truncated, corrupted or edited)");
  const headerLength = body.readUInt32LE(8);
  if (12 + headerLength > body.length) fail(`header of ${headerLength} bytes runs past the end of the file`);
  let header: ContainerHeader;
  try {
    header = JSON.parse(body.subarray(12, 12 + headerLength).toString("utf8")) as ContainerHeader;
  } catch (err) {
    return fail(`header is not valid JSON (${(err as Error).message})`);
  }
  const isObject = (v: unknown) => v !== null && typeof v === "object" && !Array.isArray(v);
  if (!isObject(header) || typeof header.kind !== "string" || !isObject(header.identity) || !Array.isArray(header.weightSpecs) || !isObject(header.info)) {
    fail("header lacks kind, identity, weightSpecs or info");
  }
  if (header.kind !== expected.kind) fail(`is a ${header.kind} file; expected a ${expected.kind}`);
  for (const [field, value] of Object.entries(expected.identity ?? {})) {
    if (header.identity[field] !== value) {
      fail(
        `says it is the ${header.kind} of ${field} ${JSON.stringify(header.identity[field])}; expected ${JSON.stringify(value)} (a file copied or renamed from another's place)`,
      );
    }
  }
  let expectedBytes = 0;
  for (const w of header.weightSpecs) {
    const size = BYTES_PER_ELEMENT[w?.dtype as string];
    if (
      typeof w?.name !== "string" ||
      !Array.isArray(w.shape) ||
      !w.shape.every((d) => Number.isInteger(d) && d >= 0) ||
      size === undefined ||
      w.quantization
    ) {
      fail(`weight spec ${JSON.stringify(w)}: expected a name, a shape of non-negative integers and dtype float32, int32 or bool, unquantized`);
    }
    expectedBytes += size * w.shape.reduce((a, b) => a * b, 1);
  }
  const data = body.subarray(12 + headerLength);
  if (data.length !== expectedBytes) fail(`holds ${data.length} bytes of tensor data; its weight specs say ${expectedBytes}`);
  // tf.io's encoding of unquantized float32, int32 and bool tensors is their values' bytes, one tensor after the
  // other (little-endian; bool one byte each): read back here without tensors, so no backend is needed to verify.
  const arrays: Record<string, DecodedArray> = {};
  let at = data.byteOffset;
  for (const w of header.weightSpecs) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    const bytes = data.buffer.slice(at, at + n * BYTES_PER_ELEMENT[w.dtype]);
    arrays[w.name] = w.dtype === "float32" ? new Float32Array(bytes) : w.dtype === "int32" ? new Int32Array(bytes) : new Uint8Array(bytes);
    at += bytes.byteLength;
  }
  return { header, arrays };
}

/** Read and decode a container file (see decodeContainer); an unreadable file is an error naming it. */
export function readContainer(file: string, expected: Expected): Container {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new Error(`${file}: cannot read ${expected.kind} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return decodeContainer(bytes, file, expected);
}

/** Why these bytes are not the container expected (undefined when they are). */
export function containerProblem(bytes: Uint8Array, source: string, expected: Expected): string | undefined {
  try {
    decodeContainer(bytes, source, expected);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
