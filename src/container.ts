import { createHash } from "crypto";
import * as fs from "fs";
import * as tf from "@tensorflow/tfjs-core";
import { writeFileAtomic } from "./fsutil";
import { Expected, Identity, decodeFrame, encodeFrame, frameBody, isObject } from "./runtime/container-frame";

/**
 * Checkpoints, masks and final models: fwprune containers (src/runtime/container-frame.ts: magic "FWPRUNE1", header
 * length, JSON header, payload, SHA-256 of every byte before it) whose header is { kind, identity, weightSpecs, info }
 * and whose payload is the tensors as tf.io.encodeWeights writes them (weightSpecs gives name, shape, dtype, in order).
 * `kind` says what the file is ("checkpoint", "mask", "final model"); `identity` what it belongs to (a checkpoint: its
 * pre-training key and epoch).
 */
export { CONTAINER_MAGIC } from "./runtime/container-frame";
export type { Expected, Identity } from "./runtime/container-frame";

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

/** The file's bytes: `tensors` encoded by tf.io.encodeWeights, under a header, then the SHA-256 of all of it. */
export async function encodeContainer(kind: string, identity: Identity, tensors: tf.NamedTensorMap, info: Record<string, unknown> = {}): Promise<Buffer> {
  const { data, specs } = await tf.io.encodeWeights(tensors);
  const header: ContainerHeader = { kind, identity, weightSpecs: specs, info };
  const bytes = encodeFrame(header, [new Uint8Array(data)], sha256);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
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

const sha256 = (bytes: Uint8Array) => new Uint8Array(createHash("sha256").update(bytes).digest());

const BYTES_PER_ELEMENT: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

/** A container's bytes checked (magic, digest, header, kind, identity, then the tensors' specs and length) and decoded; throws naming `source`. */
export function decodeContainer(bytes: Uint8Array, source: string, expected: Expected): Container {
  const fail = (what: string): never => {
    throw new Error(`${source}: ${what}`);
  };
  const { header, payload: data } = decodeFrame<ContainerHeader>(bytes, sha256(frameBody(bytes, source, expected)), source, expected);
  if (!Array.isArray(header.weightSpecs) || !isObject(header.info)) fail("header lacks weightSpecs or info");
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
