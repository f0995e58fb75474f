/**
 * The one binary container of fwprune: checkpoints, masks and final models (src/container.ts: tensors as tf.io
 * encodes them) and sparse models (src/runtime/format.ts: the runtime's .fwsparse) are all this framing around their
 * own header fields and payload. It proves what a file is and that no byte of it changed:
 *
 *   "FWPRUNE1"  8 bytes, the magic
 *   uint32 LE   length of the header
 *   header      UTF-8 JSON: { kind, identity, ...the kind's own fields }
 *   payload     the kind's bytes
 *   SHA-256     32 bytes, of every byte before it: magic, length, header and payload
 *
 * `kind` says what the file is ("checkpoint", "mask", "final model", "sparse model"); `identity` what it belongs to (a
 * checkpoint: its pre-training key and epoch). A reader names the kind and the identity it expects, and anything else
 * is refused: a file copied over another's name, or one whose header was edited, is never used as the file it replaced.
 *
 * Free of Node built-ins and of tfjs (the browser runtime reads it): the SHA-256 is the caller's (Node's crypto, or
 * Web Crypto, which is asynchronous), handed in to encode; to decode, the caller hands in the digest of frameBody.
 */
export const CONTAINER_MAGIC = "FWPRUNE1";
export const DIGEST_BYTES = 32;
const PREFIX_BYTES = 12;

export type Identity = Record<string, string | number>;

export interface FrameHeader {
  kind: string;
  identity: Identity;
}

/** What a reader expects: the kind, and the identity fields that must match (others in the file are allowed). */
export interface Expected {
  kind: string;
  identity?: Identity;
}

export type Sha256 = (bytes: Uint8Array) => Uint8Array;

const olderContainer = (kind: string, magic: string) =>
  `an fwprune ${kind} of an older format (${magic}), whose header was outside its checksum and which does not say what it belongs to; refused (a sweep computes it again)`;
const exportAgain = "write it again with this fwprune (fwprune export or fwprune prune)";

/** The magic numbers of the formats before this one, and why each is refused. */
const OLD_FORMATS: Record<string, string> = {
  FWPCKPT2: olderContainer("checkpoint", "FWPCKPT2"),
  FWPMASK1: olderContainer("mask", "FWPMASK1"),
  FWSPARS1: "a format-1 sparse file (its digest did not cover the header); export the model again",
  FWSPARS2: `a format-2 sparse file (an older fwprune's, for the paper CNN's layers only); ${exportAgain}`,
  FWSPARS3: `a format-3 sparse file (an older fwprune's, from before sparse files were fwprune containers); ${exportAgain}`,
};

/** The file's bytes: magic, header length, `header` as JSON, the payload's parts one after the other, their SHA-256. */
export function encodeFrame(header: FrameHeader, payload: Uint8Array[], sha256: Sha256): Uint8Array {
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const prefix = new Uint8Array(PREFIX_BYTES);
  for (let i = 0; i < CONTAINER_MAGIC.length; i++) prefix[i] = CONTAINER_MAGIC.charCodeAt(i);
  new DataView(prefix.buffer).setUint32(8, headerBytes.length, true);
  const body = concat([prefix, headerBytes, ...payload]);
  return concat([body, sha256(body)]);
}

/** The bytes the digest covers (all but the last 32); refuses an older format, and what is no container at all. */
export function frameBody(bytes: Uint8Array, source: string, expected: Expected): Uint8Array {
  const magic = String.fromCharCode(...bytes.subarray(0, 8));
  if (Object.prototype.hasOwnProperty.call(OLD_FORMATS, magic)) throw new Error(`${source}: ${OLD_FORMATS[magic]}`);
  if (bytes.length < PREFIX_BYTES + DIGEST_BYTES || magic !== CONTAINER_MAGIC)
    throw new Error(`${source}: not an fwprune ${expected.kind} file (expected the magic "${CONTAINER_MAGIC}")`);
  return bytes.subarray(0, bytes.length - DIGEST_BYTES);
}

/**
 * A container's header and payload (a view of `bytes`), given the SHA-256 of its body (frameBody): checked in this
 * order, magic, digest, header length, JSON, kind, identity; anything else is an error naming `source`. The kind's own
 * header fields are the caller's to check.
 */
export function decodeFrame<H extends FrameHeader>(
  bytes: Uint8Array,
  bodyDigest: Uint8Array,
  source: string,
  expected: Expected,
): { header: H; payload: Uint8Array } {
  const fail = (what: string): never => {
    throw new Error(`${source}: ${what}`);
  };
  const body = frameBody(bytes, source, expected);
  const stored = bytes.subarray(body.length);
  if (bodyDigest.length !== DIGEST_BYTES || stored.some((b, i) => b !== bodyDigest[i])) fail("does not match its SHA-256 (truncated, corrupted or edited)");
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset + 8, 4).getUint32(0, true);
  if (PREFIX_BYTES + headerLength > body.length) fail(`header of ${headerLength} bytes runs past the end of the file`);
  let header: H;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body.subarray(PREFIX_BYTES, PREFIX_BYTES + headerLength))) as H;
  } catch (err) {
    return fail(`header is not valid JSON (${(err as Error).message})`);
  }
  if (!isObject(header) || typeof header.kind !== "string" || !isObject(header.identity)) fail("header lacks kind or identity");
  if (header.kind !== expected.kind) fail(`is a ${header.kind} file; expected a ${expected.kind}`);
  for (const [field, value] of Object.entries(expected.identity ?? {})) {
    if (header.identity[field] !== value) {
      fail(
        `says it is the ${header.kind} of ${field} ${JSON.stringify(header.identity[field])}; expected ${JSON.stringify(value)} (a file copied or renamed from another's place)`,
      );
    }
  }
  return { header, payload: body.subarray(PREFIX_BYTES + headerLength) };
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
