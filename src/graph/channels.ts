import { buildGraph } from "./graph";
import { paramName } from "./kind";
import { kindOf } from "./kinds";
import { ModelGraph, NodeSpec } from "./types";

/**
 * Channel coupling, as Torch-Pruning's DependencyGraph couples channels: a group is a set of channels that must be
 * removed together. It starts at the output channels of a conv or dense layer and takes in everything that is the
 * same channel further on: a BN, activations, pools and dropout, a depthwise conv (with depth multiplier m an input
 * channel owns m of its outputs), every input of an Add (one group per channel index), a Concatenate's output range,
 * a Flatten's or Reshape's values, global pooling, and the kernel rows of the layers that read it. Channels that reach
 * the model's logits or output, or its input, or that a softmax mixes, belong to no group.
 */

/** Groups made by the same layers (conv1; conv_a+conv_b for the channels an Add joins), numbered contiguously. */
export interface ChannelFamily {
  /** The source layers' names joined by "+". */
  name: string;
  sources: string[];
  /** Where its groups sit in the flat group vector. */
  offset: number;
  count: number;
}

/** A parameter whose entries belong to groups: along `axis`, index k belongs to group[k] (−1: to none, always kept). */
export interface ParamAxisGroups {
  axis: number;
  group: Int32Array;
  /** The entries compute the channel (filter, bias, BN scale), rather than read it (the next layer's kernel rows). */
  produces: boolean;
}
export interface ParamGroups {
  param: string;
  shape: number[];
  axes: ParamAxisGroups[];
}

export interface ChannelGroups {
  /** In the order of their first channel in the graph (topological order, then channel index). */
  families: ChannelFamily[];
  count: number;
  /** The group of each output channel of each node (−1: none). */
  nodeChannels: Record<string, Int32Array>;
  /** Every parameter with entries in a group, in graph order. */
  params: ParamGroups[];
}

const cache = new WeakMap<ModelGraph, ChannelGroups>();

/** The graph's channel groups, by one pass over its nodes (a union-find over (node, channel)); computed once per graph. */
export function channelGroups(graph: ModelGraph): ChannelGroups {
  let groups = cache.get(graph);
  if (!groups) {
    groups = computeChannelGroups(graph);
    cache.set(graph, groups);
  }
  return groups;
}

function computeChannelGroups(graph: ModelGraph): ChannelGroups {
  const base = new Map<string, number>();
  let total = 0;
  for (const n of graph.nodes) {
    base.set(n.name, total);
    total += channelCount(n.outputShape);
  }
  const parent = Int32Array.from({ length: total }, (_, i) => i);
  const find = (e: number): number => {
    while (parent[e] !== e) e = parent[e] = parent[parent[e]];
    return e;
  };
  const blocked = new Uint8Array(total);
  const source = new Uint8Array(total);
  const shapes = new Map(graph.nodes.map((n) => [n.name, n.outputShape]));
  const own = (name: string) => {
    const b = base.get(name) as number;
    return Array.from({ length: channelCount(shapes.get(name) as number[]) }, (_, c) => b + c);
  };
  for (const node of graph.nodes) {
    const inputs = node.inputs.map((i) => shapes.get(i) as number[]);
    const mine = base.get(node.name) as number;
    const link = (input: number, from: number, to: number) => {
      if (!(input < inputs.length && from < channelCount(inputs[input]) && to < channelCount(node.outputShape))) {
        throw new Error(`layer "${node.name}" (${node.kind}): channel link ${input}:${from} → ${to} is out of range`);
      }
      const a = find((base.get(node.inputs[input]) as number) + from);
      const b = find(mine + to);
      if (a !== b) parent[Math.max(a, b)] = Math.min(a, b);
    };
    const flow = kindOf(node.kind).channels.flow(node.config as never, inputs, node.outputShape, link);
    if (flow === "new") for (const e of own(node.name)) source[e] = 1;
    if (flow === "fixed") for (const name of [node.name, ...node.inputs]) for (const e of own(name)) blocked[e] = 1;
  }
  for (const name of new Set([graph.logits, graph.output])) for (const e of own(name)) blocked[e] = 1;
  const blockedRoots = new Set<number>();
  for (let e = 0; e < total; e++) if (blocked[e]) blockedRoots.add(find(e));

  // Classes with a source and nothing blocked, in order of first appearance; each with its source layers.
  const sourcesOf = new Map<number, string[]>();
  for (const node of graph.nodes) {
    for (const e of own(node.name)) {
      const r = find(e);
      if (!source[e] || blockedRoots.has(r)) continue;
      const list = sourcesOf.get(r) ?? [];
      if (list[list.length - 1] !== node.name) list.push(node.name);
      sourcesOf.set(r, list);
    }
  }
  const byFamily = new Map<string, number[]>();
  for (const [root, sources] of sourcesOf) {
    const key = sources.join("+");
    byFamily.set(key, [...(byFamily.get(key) ?? []), root]);
  }
  const families: ChannelFamily[] = [];
  const groupOfRoot = new Map<number, number>();
  let offset = 0;
  for (const [name, roots] of byFamily) {
    families.push({ name, sources: name.split("+"), offset, count: roots.length });
    roots.forEach((r, i) => groupOfRoot.set(r, offset + i));
    offset += roots.length;
  }
  const nodeChannels: Record<string, Int32Array> = {};
  for (const node of graph.nodes) nodeChannels[node.name] = Int32Array.from(own(node.name), (e) => groupOfRoot.get(find(e)) ?? -1);

  const params: ParamGroups[] = [];
  for (const node of graph.nodes) {
    const slices = kindOf(node.kind).channels.slices?.(node.config as never) ?? [];
    for (const s of slices) {
      const info = node.params.find((p) => p.name === paramName(node.name, s.role));
      if (!info) continue;
      const channels = nodeChannels[s.side === "input" ? node.inputs[0] : node.name];
      const per = s.per ?? 1;
      if (info.shape[s.axis] !== channels.length * per) {
        throw new Error(`layer "${node.name}": ${info.name} axis ${s.axis} has ${info.shape[s.axis]} entries; expected ${channels.length} channels × ${per}`);
      }
      const group = Int32Array.from({ length: info.shape[s.axis] }, (_, k) => channels[Math.floor(k / per)]);
      if (group.every((g) => g < 0)) continue;
      let entry = params.find((p) => p.param === info.name);
      if (!entry) params.push((entry = { param: info.name, shape: info.shape, axes: [] }));
      entry.axes.push({ axis: s.axis, group, produces: s.produces });
    }
  }
  return { families, count: offset, nodeChannels, params };
}

function channelCount(shape: number[]): number {
  return shape[shape.length - 1];
}

/**
 * The graph a 0/1 group vector leaves: every node whose config fixes its channel count (filters, units, a reshape's
 * target) narrowed to its kept channels; the other nodes' shapes follow from their inputs.
 */
export function narrowedGraph(graph: ModelGraph, keep: Float32Array, name: string): ModelGraph {
  const { nodeChannels } = channelGroups(graph);
  const specs = graph.nodes.map(({ outputShape: _shape, params: _params, ...spec }) => {
    const narrow = kindOf(spec.kind).channels.narrow;
    if (!narrow) return spec as NodeSpec;
    const kept = nodeChannels[spec.name].reduce((n, g) => n + (g < 0 || keep[g] !== 0 ? 1 : 0), 0);
    return { ...spec, config: narrow(spec.config as never, kept) } as NodeSpec;
  });
  return buildGraph(name, specs, { form: graph.form });
}
