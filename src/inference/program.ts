import * as tf from "@tensorflow/tfjs-core";
import { GraphNode, KINDS, ModelGraph, paramName } from "../graph";
import { filledTensor } from "../kernels/deferred";
import { mulberry32 } from "../random";
import { Layout, SparseWeights, conversion, layoutShape } from "./layouts";
import { ELEMENTWISE, LAYOUT_STEPS, SPARSE_KERNELS } from "./sparse-kinds";

export type LayerPath = "dense" | "sparse";

/** A compiled graph's tensors: every parameter for the dense path, CSR copies for the nodes that can run sparse. */
export interface CompiledGraph {
  graph: ModelGraph;
  params: Record<string, tf.Tensor>;
  sparse: Map<string, SparseWeights>;
  /** The layer each node's time counts toward in a profile (a layer: a node with a prunable kernel). */
  owner: Map<string, string>;
}

/** One value: a node's output in a layout, of per-example shape `shape`. */
export interface Slot {
  node: string;
  layout: Layout;
  shape: number[];
}

/** A step of a compiled program: what runs, on which values, and the value it makes. */
export interface Step {
  key: string;
  label: string;
  layer: string;
  inputs: Slot[];
  output: Slot;
  run: (xs: tf.Tensor[], n: number) => tf.Tensor;
}

const slotKey = (s: { node: string; layout: Layout }) => `${s.node}@${s.layout}`;
const CTX = { training: false, seed: 0 };

/** The program for one choice of paths: the graph's nodes in their layouts, with conversions where layouts change. */
export function program(c: CompiledGraph, paths: Map<string, LayerPath>): Step[] {
  const g = c.graph;
  const byName = new Map(g.nodes.map((n) => [n.name, n]));
  const readers = new Map<string, GraphNode[]>();
  for (const n of g.nodes) for (const i of n.inputs) readers.set(i, [...(readers.get(i) ?? []), byName.get(n.name) as GraphNode]);
  const steps: Step[] = [];
  const layoutOf = new Map<string, Layout>([[g.input, "std"]]);
  const have = new Set([slotKey({ node: g.input, layout: "std" })]);
  const slot = (node: string, layout: Layout): Slot => ({ node, layout, shape: (byName.get(node) as GraphNode).outputShape });
  const produce = (step: Omit<Step, "output">, output: Slot) => {
    steps.push({ ...step, output });
    have.add(slotKey(output));
    if (!layoutOf.has(output.node)) layoutOf.set(output.node, output.layout);
  };
  const need = (node: string, layout: Layout, layer: string): Slot => {
    const out = slot(node, layout);
    if (have.has(slotKey(out))) return out;
    const from = layout === "std" ? (layoutOf.get(node) as Layout) : "std";
    const input = layout === "std" ? slot(node, from) : need(node, "std", layer);
    const run = conversion(from, layout);
    produce({ key: `${node}:${from}>${layout}`, label: `${from}→${layout}`, layer, inputs: [input], run: ([x], n) => run(x, n) }, out);
    return out;
  };
  const skipped = new Set<string>();
  for (const node of g.nodes.slice(1)) {
    if (skipped.has(node.name)) continue;
    const layer = c.owner.get(node.name) as string;
    const kernel = SPARSE_KERNELS[node.kind];
    const weights = c.sparse.get(node.name);
    const firstLayout = layoutOf.get(node.inputs[0]) as Layout;
    const layoutStep = LAYOUT_STEPS[node.kind];
    if (kernel && weights && paths.get(node.name) === "sparse") {
      const input = need(node.inputs[0], kernel.layout, layer);
      const [reader] = readers.get(node.name) ?? [];
      const pool = reader && readers.get(node.name)?.length === 1 && node.name !== g.logits ? LAYOUT_STEPS[reader.kind] : undefined;
      if (kernel.runPooled && pool?.fusesIntoConv && pool.accepts(reader)) {
        const runPooled = kernel.runPooled;
        produce(
          {
            key: `${node.name}:pooled`,
            label: `${node.name} sparse + ${reader.kind}`,
            layer,
            inputs: [input],
            run: ([x]) => runPooled(weights, node, input.shape, x),
          },
          slot(reader.name, kernel.layout),
        );
        skipped.add(reader.name);
        continue;
      }
      produce(
        { key: `${node.name}:sparse`, label: `${node.name} sparse`, layer, inputs: [input], run: ([x]) => kernel.run(weights, node, input.shape, x) },
        slot(node.name, kernel.layout),
      );
    } else if (layoutStep && layoutStep.from === firstLayout && layoutStep.accepts(node)) {
      const input = slot(node.inputs[0], firstLayout);
      produce(
        {
          key: `${node.name}:${firstLayout}`,
          label: `${node.kind} (${firstLayout}→${layoutStep.to})`,
          layer,
          inputs: [input],
          run: ([x]) => layoutStep.run(x),
        },
        slot(node.name, layoutStep.to),
      );
    } else {
      const elementwise = firstLayout !== "std" && (ELEMENTWISE[node.kind]?.(node) ?? false);
      const layout = elementwise ? firstLayout : "std";
      const inputs = node.inputs.map((i) => need(i, layout, layer));
      const param = (role: Parameters<typeof paramName>[1]) => c.params[paramName(node.name, role)];
      const forward = KINDS[node.kind].forward as (n: GraphNode, xs: tf.Tensor[], p: typeof param, ctx: typeof CTX) => tf.Tensor;
      const label = node.params.some((p) => p.prunable) ? `${node.name} dense` : `${node.kind}${layout === "std" ? "" : ` (${layout})`}`;
      produce(
        { key: `${node.name}:${inputs.map((s) => s.layout).join(",")}`, label, layer, inputs, run: (xs) => forward(node, xs, param, CTX) },
        slot(node.name, layout),
      );
    }
  }
  need(g.logits, "std", c.owner.get(g.logits) as string);
  return steps;
}

/** Runs a program on examples x (inside the caller's tidy); the logits [n, classes]. */
export function execute(steps: Step[], graph: ModelGraph, x: tf.Tensor, onStep?: (step: Step, ms: number) => void): tf.Tensor2D {
  const n = x.shape[0];
  const values = new Map<string, tf.Tensor>([[slotKey({ node: graph.input, layout: "std" }), x]]);
  for (const step of steps) {
    const t0 = performance.now();
    const y = step.run(
      step.inputs.map((s) => values.get(slotKey(s)) as tf.Tensor),
      n,
    );
    onStep?.(step, performance.now() - t0);
    values.set(slotKey(step.output), y);
  }
  return values.get(slotKey({ node: graph.logits, layout: "std" })) as tf.Tensor2D;
}

/**
 * Noise in [−1, 1) of any length up to the largest asked for so far: one array, grown when needed and reused for every
 * calibration input (timings do not depend on the values). A fresh array for each input (tf.randomUniform's) took about
 * 30% of the paper CNN's calibration, most of it the system handing out their pages.
 */
export function calibrationNoise(): (length: number) => Float32Array {
  let values = new Float32Array(0);
  return (length) => {
    if (values.length < length) {
      values = new Float32Array(length);
      const next = mulberry32(1);
      for (let i = 0; i < length; i++) values[i] = 2 * next() - 1;
    }
    return values.subarray(0, length);
  };
}

/** Inputs of the layouts and shapes a step expects, for a batch of n, filled with `noise`. */
export function calibrationInputs(step: Step, n: number, noise: (length: number) => Float32Array): tf.Tensor[] {
  return step.inputs.map((s) => filledTensor(layoutShape(s.layout, s.shape, n), (values) => values.set(noise(values.length))));
}
