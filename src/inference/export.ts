import { createHash } from "crypto";
import * as fs from "fs";
import * as zlib from "zlib";
import { asGraph } from "../graph";
import { LayersModelJson, layersModelArtifacts } from "../graph/keras-export";
import { ModelLike, ModelSpec, paramShapes } from "../model";

/**
 * What `fwprune export` writes: the model in TensorFlow.js's layers format (model.json + one weights file, loadable
 * by plain @tensorflow/tfjs), and a compact sparse file of the same weights with its loader.
 */

export type { LayersModelJson } from "../graph/keras-export";

/**
 * model.json and the weights file's bytes of a model (a graph, or a config's spec: the paper CNN exports as a
 * Sequential of conv1, maxpool1, …, dense2, so weights keep their names), loadable by plain tfjs.
 */
export function layersArtifactsFor(model: ModelLike, weights: Record<string, Float32Array>, weightsFile = "weights.bin"): { json: LayersModelJson; weights: Uint8Array } {
  return layersModelArtifacts(asGraph(model), weights, weightsFile);
}

/**
 * The compact sparse file (".fwsparse"): magic "FWSPARS1", a u32 (little-endian) header length, the header (JSON:
 * format, spec, tensors and the payload's SHA-256), then the payload. Each conv/dense kernel (row-major, tfjs's
 * layout) is stored as entries: a u8 gap per entry (its position = the previous entry's + gap + 1; a gap that does
 * not fit in a byte is bridged by filler entries of gap 255 and value 0), then, 4-byte aligned, the entries' values
 * as float32 (exactly the weights: the round trip is exact, −0 coming back as 0). Biases are stored dense as float32.
 */
export const SPARSE_MAGIC = "FWSPARS1";
const FORMAT = 1;

interface TensorEntry {
  name: string;
  shape: number[];
  encoding: "dense-f32" | "gap-u8-f32";
  /** Entries stored (non-zeros plus fillers) for gap-u8-f32. */
  entries?: number;
  offset: number;
  bytes: number;
}

interface SparseHeader {
  format: number;
  spec: ModelSpec;
  tensors: TensorEntry[];
  sha256: string;
}

export function encodeSparseWeights(spec: ModelSpec, weights: Record<string, Float32Array>): Uint8Array {
  const parts: Uint8Array[] = [];
  const tensors: TensorEntry[] = [];
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
  for (const p of paramShapes(spec)) {
    const v = weights[p.name];
    const size = p.shape.reduce((a, b) => a * b, 1);
    if (!v || v.length !== size) throw new Error(`weights["${p.name}"]: expected ${size} values, got ${v ? v.length : "none"}`);
    if (!p.prunable) {
      const bytes = new Uint8Array(v.slice().buffer);
      tensors.push({ name: p.name, shape: p.shape, encoding: "dense-f32", offset: add(bytes), bytes: bytes.length });
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
    tensors.push({ name: p.name, shape: p.shape, encoding: "gap-u8-f32", entries: gaps.length, offset: at, bytes: offset - at });
  }
  const payload = concat(parts);
  const header: SparseHeader = { format: FORMAT, spec, tensors, sha256: createHash("sha256").update(payload).digest("hex") };
  const headerBytes = Buffer.from(JSON.stringify(header), "utf8");
  const length = new Uint8Array(4);
  new DataView(length.buffer).setUint32(0, headerBytes.length, true);
  return concat([Buffer.from(SPARSE_MAGIC, "latin1"), length, headerBytes, payload]);
}

/** Read a .fwsparse file's bytes back into the spec and every weight; anything malformed is an error naming it. */
export function decodeSparseWeights(bytes: Uint8Array, source = "sparse file"): { spec: ModelSpec; weights: Record<string, Float32Array> } {
  const fail = (what: string): never => {
    throw new Error(`${source}: ${what}`);
  };
  if (bytes.length < 12 || Buffer.from(bytes.subarray(0, 8)).toString("latin1") !== SPARSE_MAGIC) fail(`not an fwprune sparse file (expected the magic "${SPARSE_MAGIC}")`);
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset + 8, 4).getUint32(0, true);
  if (12 + headerLength > bytes.length) fail(`header of ${headerLength} bytes runs past the end of the file (${bytes.length} bytes)`);
  let header: SparseHeader;
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(12, 12 + headerLength)).toString("utf8")) as SparseHeader;
  } catch (err) {
    return fail(`header is not valid JSON (${(err as Error).message})`);
  }
  if (header?.format !== FORMAT) fail(`format ${JSON.stringify(header?.format)}; expected ${FORMAT}`);
  const payload = bytes.subarray(12 + headerLength);
  if (createHash("sha256").update(payload).digest("hex") !== header.sha256) fail("payload does not match its SHA-256 (truncated or corrupted)");
  let expected: ReturnType<typeof paramShapes>;
  try {
    expected = paramShapes(header.spec);
  } catch (err) {
    return fail(`spec: ${(err as Error).message}`);
  }
  const weights: Record<string, Float32Array> = {};
  for (const p of expected) {
    const t = header.tensors.find((e) => e.name === p.name);
    if (!t) return fail(`tensor "${p.name}" is missing`);
    if (JSON.stringify(t.shape) !== JSON.stringify(p.shape)) fail(`tensor "${p.name}": shape [${t.shape}]; the spec says [${p.shape}]`);
    if (!(t.offset >= 0 && t.offset % 4 === 0 && t.bytes >= 0 && t.offset + t.bytes <= payload.length)) fail(`tensor "${p.name}": bytes ${t.offset}+${t.bytes} outside the payload (${payload.length})`);
    const size = p.shape.reduce((a, b) => a * b, 1);
    const at = payload.byteOffset + t.offset;
    if (t.encoding === "dense-f32") {
      if (t.bytes !== 4 * size) fail(`tensor "${p.name}": ${t.bytes} bytes; expected ${4 * size}`);
      weights[p.name] = new Float32Array(payload.buffer.slice(at, at + t.bytes));
    } else if (t.encoding === "gap-u8-f32") {
      const n = t.entries ?? -1;
      const valuesAt = n + ((4 - (n % 4)) % 4);
      if (!(Number.isInteger(n) && n >= 0 && valuesAt + 4 * n === t.bytes)) fail(`tensor "${p.name}": ${n} entries do not fit its ${t.bytes} bytes`);
      const gaps = payload.subarray(t.offset, t.offset + n);
      const values = new Float32Array(payload.buffer.slice(at + valuesAt, at + valuesAt + 4 * n));
      const out = new Float32Array(size);
      let pos = -1;
      for (let j = 0; j < n; j++) {
        pos += gaps[j] + 1;
        if (pos >= size) fail(`tensor "${p.name}": entry ${j} lands at ${pos}, past its ${size} values`);
        out[pos] = values[j];
      }
      weights[p.name] = out;
    } else {
      fail(`tensor "${p.name}": unknown encoding ${JSON.stringify((t as { encoding: unknown }).encoding)}`);
    }
  }
  return { spec: header.spec, weights };
}

/** The loader: a .fwsparse file from disk → its spec and weights (checked as decodeSparseWeights does). */
export function readSparseModelFile(file: string): { spec: ModelSpec; weights: Record<string, Float32Array> } {
  return decodeSparseWeights(fs.readFileSync(file), file);
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

export interface FileSize {
  file: string;
  bytes: number;
  gzippedBytes: number;
}

/** Raw and gzipped (level 9) size of each file's bytes. */
export function sizeOf(file: string, bytes: Uint8Array): FileSize {
  return { file, bytes: bytes.length, gzippedBytes: zlib.gzipSync(bytes, { level: 9 }).length };
}
