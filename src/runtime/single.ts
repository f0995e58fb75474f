import { csrFromDense } from "../inference/csr";
import type { CheckedNode } from "./graph";
import type { RuntimeMemory } from "./kernels";
import type { Prepared } from "./plan";

/**
 * One example alone, for the images past a batch's last full tile of 8 where there is just one (a tile would be 7/8
 * padding): a chain of unpadded stride-1 convolutions, square unpadded max pools, a flatten and dense layers, with
 * ReLU or no activation. Values are planes [c][h][wp] of one float per position (rows wp ≥ w floats apart, the
 * columns past w scratch) or a vector [features][4] (column 0 holds the example; spmm's narrowest run is 4 floats).
 * The sparse products add the same weights in the same order as the tiles' (CSR sorted by input element), so the
 * results are the same floats.
 */
type SingleValue = { layout: "planes"; c: number; h: number; w: number; wp: number } | { layout: "vec"; features: number };

const bytesOf = (v: SingleValue) => (v.layout === "planes" ? v.c * v.h * v.wp : v.features * 4) * 4;

export interface SingleProgram {
  outputSize: number;
  /** The outputs of one example (flat, channels last) into `result` from `at` on. */
  predictOne(examples: Float32Array, first: number, result: Float32Array, at: number): void;
}

type Step = (x: number, out: number) => void;

const reluOnly = (a: unknown) => (a === "relu" ? 1 : a === "linear" || a === undefined ? 0 : -1);
const same = (a: unknown, b: number[]) => Array.isArray(a) && a.join() === b.join();

/** The program, or undefined where the model is not such a chain (its batches then run in tiles only). */
export function planSingle(nodes: CheckedNode[], prepared: Prepared, mem: RuntimeMemory): SingleProgram | undefined {
  const { alias, configs, tensors } = prepared;
  const resolve = (name: string) => alias.get(name) ?? name;
  const [h0, w0, c0] = nodes[0].shape;
  if (nodes[0].shape.length !== 3) return undefined;
  const input: SingleValue = { layout: "planes", c: c0, h: h0, w: w0, wp: w0 };
  let value: SingleValue = input;
  let previous = nodes[0].spec.name;
  const steps: Step[] = [];
  const values: SingleValue[] = [input];
  for (const node of nodes.slice(1)) {
    if (alias.has(node.spec.name)) continue;
    if (node.spec.inputs.length !== 1 || resolve(node.spec.inputs[0]) !== previous) return undefined;
    const config = configs.get(node.spec.name) as Record<string, unknown>;
    const tensor = (role: string) => tensors.get(node.spec.name)?.get(role);
    const planned = planStep(node.spec.kind, config, tensor, value, mem);
    if (!planned) return undefined;
    steps.push(planned.run);
    value = planned.output;
    values.push(value);
    previous = node.spec.name;
  }
  if (value.layout !== "vec") return undefined;
  const outputSize = value.features;
  // runs read up to 3 floats past a row (and so past the last one)
  const largest = Math.max(...values.map(bytesOf)) + 64;
  const buffers = [mem.alloc(largest), mem.alloc(largest)];
  const imageSize = h0 * w0 * c0;
  const plane = h0 * w0;
  return {
    outputSize,
    predictOne(examples, first, result, at) {
      const x = mem.floats(buffers[0], imageSize);
      const from = first * imageSize;
      for (let p = 0; p < plane; p++) for (let ch = 0; ch < c0; ch++) x[ch * plane + p] = examples[from + p * c0 + ch];
      let [a, b] = buffers;
      for (const step of steps) {
        step(a, b);
        [a, b] = [b, a];
      }
      const out = mem.floats(a, outputSize * 4);
      for (let o = 0; o < outputSize; o++) result[at + o] = out[o * 4];
    },
  };
}

function planStep(
  kind: string,
  config: Record<string, unknown>,
  tensor: (role: string) => Float32Array | undefined,
  x: SingleValue,
  mem: RuntimeMemory,
): { output: SingleValue; run: Step } | undefined {
  const loops = mem.loops;
  const bias = (n: number) => mem.put(tensor("bias") ?? new Float32Array(n));
  if (kind === "conv2d" && x.layout === "planes") {
    const c = config as { filters: number; kernelSize: number[]; strides: unknown; padding: unknown; activation: unknown };
    const [kh, kw] = c.kernelSize;
    const [oh, ow] = [x.h - kh + 1, x.w - kw + 1];
    const relu = reluOnly(c.activation);
    const unpadded = c.padding === "valid" || (kh === 1 && kw === 1);
    if (relu < 0 || !same(c.strides, [1, 1]) || !unpadded || oh < 1 || ow < 1) return undefined;
    const segVecs = Math.ceil(ow / 4);
    const owp = 4 * segVecs;
    const co = c.filters;
    const kernel = tensor("kernel") as Float32Array;
    // kernel [kh, kw, c, co] as rows (dy·kw + dx)·c + ci → element (ci·h + dy)·wp + dx of the input planes
    const csr = csrFromDense(kernel, kh * kw * x.c, co, (row) => ((row % x.c) * x.h + Math.floor(row / (x.c * kw))) * x.wp + (Math.floor(row / x.c) % kw));
    const [rowPtr, idx, vals, b] = [mem.put(csr.rowPtr), mem.put(csr.idx), mem.put(csr.vals), bias(co)];
    return {
      output: { layout: "planes", c: co, h: oh, w: ow, wp: owp },
      run: (at, out) => loops.spmm(rowPtr, idx, vals, b, at, out, co, 1, 0, 0, oh, x.wp * 4, owp * 4, oh * owp * 4, segVecs, 4, relu),
    };
  }
  if (kind === "max-pool" && x.layout === "planes") {
    const c = config as { poolSize: number[]; strides: unknown; padding: unknown };
    const k = c.poolSize[0];
    if (!same(c.poolSize, [k, k]) || !same(c.strides, [k, k]) || c.padding !== "valid") return undefined;
    return poolPlanes(mem, x, k);
  }
  if (kind === "flatten" && x.layout === "planes") {
    const { c, h, w, wp } = x;
    return {
      output: { layout: "vec", features: h * w * c },
      run: (at, out) => {
        const [from, to] = [mem.floats(at, c * h * wp), mem.floats(out, h * w * c * 4)];
        for (let y = 0; y < h; y++)
          for (let xx = 0; xx < w; xx++) for (let ci = 0; ci < c; ci++) to[((y * w + xx) * c + ci) * 4] = from[(ci * h + y) * wp + xx];
      },
    };
  }
  if (kind === "dense" && x.layout === "vec") {
    const c = config as { units: number; activation: unknown };
    const relu = reluOnly(c.activation);
    if (relu < 0) return undefined;
    const csr = csrFromDense(tensor("kernel") as Float32Array, x.features, c.units, (row) => row);
    const [rowPtr, idx, vals, b] = [mem.put(csr.rowPtr), mem.put(csr.idx), mem.put(csr.vals), bias(c.units)];
    return {
      output: { layout: "vec", features: c.units },
      run: (at, out) => loops.spmm(rowPtr, idx, vals, b, at, out, c.units, 1, 0, 0, 1, 16, 16, 16, 1, 16, relu),
    };
  }
  return undefined;
}

/** A size×size, stride-size max pool of one example's planes (a few thousand maxima, plain JS). */
function poolPlanes(mem: RuntimeMemory, p: Extract<SingleValue, { layout: "planes" }>, size: number): { output: SingleValue; run: Step } | undefined {
  const [oh, ow] = [Math.floor(p.h / size), Math.floor(p.w / size)];
  if (oh < 1 || ow < 1) return undefined;
  return {
    output: { layout: "planes", c: p.c, h: oh, w: ow, wp: ow },
    run: (at, out) => {
      const [from, to] = [mem.floats(at, p.c * p.h * p.wp), mem.floats(out, p.c * oh * ow)];
      let o = 0;
      for (let ci = 0; ci < p.c; ci++)
        for (let i = 0; i < oh; i++) {
          const top = (ci * p.h + i * size) * p.wp;
          if (size === 2) {
            for (let j = 0, a = top; j < ow; j++, a += 2) to[o++] = Math.max(from[a], from[a + 1], from[a + p.wp], from[a + p.wp + 1]);
            continue;
          }
          for (let j = 0; j < ow; j++) {
            let m = -Infinity;
            for (let dy = 0; dy < size; dy++) for (let dx = 0, a = top + dy * p.wp + j * size; dx < size; dx++) m = Math.max(m, from[a + dx]);
            to[o++] = m;
          }
        }
    },
  };
}
