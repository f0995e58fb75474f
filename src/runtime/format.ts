import type { SerializedGraph } from "../graph/types";
import { FrameHeader, Sha256, decodeFrame, encodeFrame, frameBody } from "./container-frame";

/**
 * The compact sparse file (".fwsparse"), format 4: an fwprune container (src/runtime/container-frame.ts: magic
 * "FWPRUNE1", header length, JSON header, payload, SHA-256 of every byte before it) of kind "sparse model", identity
 * { model: the graph's name }. One encoder and one decoder, free of Node built-ins, used by the Node side
 * (src/inference/export.ts) and by the browser runtime alike; the SHA-256 is the caller's (Node's crypto, or Web
 * Crypto, which is asynchronous).
 *
 *   header      { kind: "sparse model", identity: { model }, format: 4, model: { name, form, nodes: NodeSpec[] },
 *               tensors: TensorEntry[] }
 *   payload     the tensors, each 4-byte aligned
 *
 * The model is fwprune's model graph as written (src/graph/types.ts: each node's name, kind, inputs and config, in
 * topological order, the first the input, the last the output), so a file describes any graph fwprune imports; a
 * node's tensors are named <node>/<role suffix> (conv1/kernel, bn1/moving_mean, ...).
 *
 * A prunable tensor (conv, depthwise, pointwise and dense kernels, row-major as tfjs lays them out) is stored as
 * entries: a u8 gap per entry (its position = the previous entry's + gap + 1; a gap that does not fit in a byte is
 * bridged by filler entries of gap 255 and value 0), then, 4-byte aligned, the entries' values as float32 (exactly the
 * weights: −0 comes back as 0). Other tensors (biases, batch norm's) are stored dense as float32.
 *
 * Format 3 (magic "FWSPARS3": the same header fields and payload in a framing of its own) and format 2 ("FWSPARS2",
 * the paper CNN's chain of layers only) are refused with a message saying to export again.
 */
export const SPARSE_KIND = "sparse model";
export const SPARSE_FORMAT = 4;

/** The model a file describes: fwprune's serialized model graph. */
export type SparseModelGraph = SerializedGraph;

export interface TensorEntry {
  name: string;
  shape: number[];
  encoding: "dense-f32" | "gap-u8-f32";
  /** Entries stored (non-zeros plus fillers) for gap-u8-f32. */
  entries?: number;
  /** Byte offset within the payload, and length. */
  offset: number;
  bytes: number;
}

export interface SparseFileHeader extends FrameHeader {
  format: number;
  model: SparseModelGraph;
  tensors: TensorEntry[];
}

export interface NamedTensor {
  name: string;
  shape: number[];
  values: Float32Array;
  /** Stored as gaps and non-zero values (kernels) rather than dense (biases). */
  sparse: boolean;
}

export type { Sha256 } from "./container-frame";

export function encodeSparseFile(model: SparseModelGraph, tensors: NamedTensor[], sha256: Sha256): Uint8Array {
  const parts: Uint8Array[] = [];
  const entries: TensorEntry[] = [];
  let offset = 0;
  const add = (bytes: Uint8Array) => {
    parts.push(bytes);
    const at = offset;
    offset += bytes.length;
    const pad = (4 - (offset % 4)) % 4;
    if (pad) {
      parts.push(new Uint8Array(pad));
      offset += pad;
    }
    return at;
  };
  for (const t of tensors) {
    const v = t.values;
    if (v.length !== t.shape.reduce((a, b) => a * b, 1)) throw new Error(`tensor "${t.name}": ${v.length} values do not fill its shape [${t.shape}]`);
    if (!t.sparse) {
      const bytes = new Uint8Array(v.slice().buffer);
      entries.push({ name: t.name, shape: t.shape, encoding: "dense-f32", offset: add(bytes), bytes: bytes.length });
      continue;
    }
    const gaps: number[] = [];
    const values: number[] = [];
    let last = -1;
    for (let i = 0; i < v.length; i++) {
      if (v[i] === 0) continue; // −0 too (a masked negative weight): it decodes as 0
      while (i - last - 1 > 255) {
        gaps.push(255);
        values.push(0);
        last += 256;
      }
      gaps.push(i - last - 1);
      values.push(v[i]);
      last = i;
    }
    const at = add(Uint8Array.from(gaps));
    add(new Uint8Array(Float32Array.from(values).buffer));
    entries.push({ name: t.name, shape: t.shape, encoding: "gap-u8-f32", entries: gaps.length, offset: at, bytes: offset - at });
  }
  const header: SparseFileHeader = { kind: SPARSE_KIND, identity: { model: model.name }, format: SPARSE_FORMAT, model, tensors: entries };
  return encodeFrame(header, parts, sha256);
}

/** The bytes the digest covers (all but the last 32); refuses an older format, and what is no fwprune container. */
export function sparseFileBody(bytes: Uint8Array, source = "sparse file"): Uint8Array {
  return frameBody(bytes, source, { kind: SPARSE_KIND });
}

/**
 * The header and every tensor of a sparse file, given the SHA-256 of its body (sparseFileBody). Anything malformed
 * is an error naming the source and what is wrong; the digest is checked before anything else is read.
 */
export function decodeSparseFile(
  bytes: Uint8Array,
  bodyDigest: Uint8Array,
  source = "sparse file",
): { header: SparseFileHeader; tensors: Map<string, Float32Array> } {
  const fail = (what: string): never => {
    throw new Error(`${source}: ${what}`);
  };
  const { header, payload: stored } = decodeFrame<SparseFileHeader>(bytes, bodyDigest, source, { kind: SPARSE_KIND });
  if (header.format !== SPARSE_FORMAT) fail(`format ${JSON.stringify(header.format)}; expected ${SPARSE_FORMAT}`);
  if (!header.model || typeof header.model.name !== "string" || !Array.isArray(header.model.nodes) || !Array.isArray(header.tensors))
    fail("header: expected a model { name, nodes } and a list of tensors");
  if (header.identity.model !== header.model.name)
    fail(`says it is the sparse model of model ${JSON.stringify(header.identity.model)}; its graph is ${JSON.stringify(header.model.name)}`);
  // A copy (new Uint8Array copies; a Node Buffer's slice would not), so that the float32 views are aligned whatever
  // the offset of the bytes handed in.
  const payload = new Uint8Array(stored);
  const tensors = new Map<string, Float32Array>();
  for (const t of header.tensors) {
    const where = `tensor ${JSON.stringify(t?.name)}`;
    if (typeof t?.name !== "string" || tensors.has(t.name)) fail(`${where}: expected a name no other tensor has`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isInteger(d) && d >= 0))
      fail(`${where}: shape ${JSON.stringify(t.shape)}; expected non-negative integers`);
    if (!(
      Number.isInteger(t.offset) &&
      t.offset >= 0 &&
      t.offset % 4 === 0 &&
      Number.isInteger(t.bytes) &&
      t.bytes >= 0 &&
      t.offset + t.bytes <= payload.length
    )) {
      fail(`${where}: bytes ${t.offset}+${t.bytes} outside the payload (${payload.length})`);
    }
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (t.encoding === "dense-f32") {
      if (t.bytes !== 4 * size) fail(`${where}: ${t.bytes} bytes; expected ${4 * size}`);
      tensors.set(t.name, new Float32Array(payload.buffer, t.offset, size));
    } else if (t.encoding === "gap-u8-f32") {
      const n = t.entries ?? -1;
      const valuesAt = n + ((4 - (n % 4)) % 4);
      if (!(Number.isInteger(n) && n >= 0 && valuesAt + 4 * n === t.bytes)) fail(`${where}: ${n} entries do not fit its ${t.bytes} bytes`);
      const gaps = payload.subarray(t.offset, t.offset + n);
      const values = new Float32Array(payload.buffer, t.offset + valuesAt, n);
      const out = new Float32Array(size);
      let pos = -1;
      for (let j = 0; j < n; j++) {
        pos += gaps[j] + 1;
        if (pos >= size) fail(`${where}: entry ${j} lands at ${pos}, past its ${size} values`);
        out[pos] = values[j];
      }
      tensors.set(t.name, out);
    } else {
      fail(`${where}: unknown encoding ${JSON.stringify((t as { encoding: unknown }).encoding)}`);
    }
  }
  return { header, tensors };
}
