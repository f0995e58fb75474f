import { ACTIVATIONS, NodeKind, NodeSpec, ParamRole, paramName } from "../graph/types";

/**
 * The model graph of a .fwsparse file, checked without tfjs: every node's kind, config and inputs (earlier nodes
 * only), its output shape and the shape of every tensor it owns. The same rules as src/graph's kinds (shapes as
 * TensorFlow computes them), restated here because the runtime cannot load src/graph (it runs on tfjs).
 */
export interface CheckedNode {
  spec: NodeSpec;
  inputShapes: number[][];
  shape: number[];
  /** The tensors the node owns, by role: the file's name and the shape it must have. */
  params: { role: ParamRole; name: string; shape: number[] }[];
}

type Fail = (what: string) => never;
type Config = Record<string, unknown>;

const product = (xs: number[]) => xs.reduce((a, b) => a * b, 1);
const isInt = (v: unknown, min: number): v is number => typeof v === "number" && Number.isInteger(v) && v >= min;

function int(c: Config, key: string, min: number, fail: Fail): number {
  const v = c[key];
  if (!isInt(v, min)) fail(`config.${key}: ${JSON.stringify(v)}; expected an integer ≥ ${min}`);
  return v as number;
}

function pair(c: Config, key: string, fail: Fail): [number, number] {
  const v = c[key];
  if (!(Array.isArray(v) && v.length === 2 && v.every((d) => isInt(d, 1)))) fail(`config.${key}: ${JSON.stringify(v)}; expected two positive integers`);
  return v as [number, number];
}

function oneOf<T extends string>(c: Config, key: string, options: readonly T[], fail: Fail): T {
  const v = c[key];
  if (!options.includes(v as T)) fail(`config.${key}: ${JSON.stringify(v)}; expected one of ${options.map((o) => JSON.stringify(o)).join(", ")}`);
  return v as T;
}

function bool(c: Config, key: string, fail: Fail): boolean {
  const v = c[key];
  if (typeof v !== "boolean") fail(`config.${key}: ${JSON.stringify(v)}; expected true or false`);
  return v as boolean;
}

function image(x: number[], fail: Fail): [number, number, number] {
  if (x.length !== 3) fail(`expects an image input [height, width, channels]; its input is [${x}]`);
  return x as [number, number, number];
}

/** Output height and width of a conv or pool window (TensorFlow's rule), checked ≥ 1. */
function windowOut(c: Config, x: number[], sizeKey: string, fail: Fail): [number, number] {
  const [h, w] = image(x, fail);
  const [kh, kw] = pair(c, sizeKey, fail);
  const [sh, sw] = pair(c, "strides", fail);
  const same = oneOf(c, "padding", ["valid", "same"], fail) === "same";
  const [oh, ow] = same ? [Math.ceil(h / sh), Math.ceil(w / sw)] : [Math.floor((h - kh) / sh) + 1, Math.floor((w - kw) / sw) + 1];
  if (oh < 1 || ow < 1) fail(`a ${kh}×${kw} window does not fit the ${h}×${w} input`);
  return [oh, ow];
}

type Decl = [ParamRole, number[]];
type KindCheck = (c: Config, inputs: number[][], fail: Fail) => { shape: number[]; params?: Decl[] };

const activation = (c: Config, fail: Fail) => oneOf(c, "activation", ACTIVATIONS, fail);
const withBias = (c: Config, fail: Fail, channels: number, decls: Decl[]): Decl[] => (bool(c, "useBias", fail) ? [...decls, ["bias", [channels]]] : decls);

function depthwise(c: Config, [x]: number[][], fail: Fail) {
  const [oh, ow] = windowOut(c, x, "kernelSize", fail);
  activation(c, fail);
  const m = int(c, "depthMultiplier", 1, fail);
  return { oh, ow, m, kernel: ["depthwise-kernel", [...pair(c, "kernelSize", fail), x[2], m]] as Decl };
}

/** What the runtime checks of each node kind: its config, the input count, the output shape and its tensors. */
const KIND_CHECKS: Record<NodeKind, { inputs: "none" | "one" | "many"; check: KindCheck }> = {
  input: {
    inputs: "none",
    check: (c, _x, fail) => {
      const s = c.shape;
      if (!(Array.isArray(s) && s.length >= 1 && s.every((d) => isInt(d, 1)))) fail(`config.shape: ${JSON.stringify(s)}; expected positive integers`);
      return { shape: s as number[] };
    },
  },
  conv2d: {
    inputs: "one",
    check: (c, [x], fail) => {
      const [oh, ow] = windowOut(c, x, "kernelSize", fail);
      activation(c, fail);
      const filters = int(c, "filters", 1, fail);
      return { shape: [oh, ow, filters], params: withBias(c, fail, filters, [["kernel", [...pair(c, "kernelSize", fail), x[2], filters]]]) };
    },
  },
  "depthwise-conv2d": {
    inputs: "one",
    check: (c, inputs, fail) => {
      const { oh, ow, m, kernel } = depthwise(c, inputs, fail);
      return { shape: [oh, ow, inputs[0][2] * m], params: withBias(c, fail, inputs[0][2] * m, [kernel]) };
    },
  },
  "separable-conv2d": {
    inputs: "one",
    check: (c, inputs, fail) => {
      const { oh, ow, m, kernel } = depthwise(c, inputs, fail);
      const filters = int(c, "filters", 1, fail);
      return { shape: [oh, ow, filters], params: withBias(c, fail, filters, [kernel, ["pointwise-kernel", [1, 1, inputs[0][2] * m, filters]]]) };
    },
  },
  "batch-norm": {
    inputs: "one",
    check: (c, [x], fail) => {
      if (c.axis !== -1 && c.axis !== x.length) fail(`config.axis: ${JSON.stringify(c.axis)}; expected -1 or ${x.length} (the last axis)`);
      if (!(typeof c.epsilon === "number" && c.epsilon > 0)) fail(`config.epsilon: ${JSON.stringify(c.epsilon)}; expected a number > 0`);
      const shape = [x[x.length - 1]];
      const roles: ParamRole[] = [...(bool(c, "scale", fail) ? ["gamma" as const] : []), ...(bool(c, "center", fail) ? ["beta" as const] : [])];
      return { shape: x, params: [...roles, "moving-mean" as const, "moving-variance" as const].map((r): Decl => [r, shape]) };
    },
  },
  dense: {
    inputs: "one",
    check: (c, [x], fail) => {
      activation(c, fail);
      const units = int(c, "units", 1, fail);
      return { shape: [...x.slice(0, -1), units], params: withBias(c, fail, units, [["kernel", [x[x.length - 1], units]]]) };
    },
  },
  activation: { inputs: "one", check: (c, [x], fail) => (activation(c, fail), { shape: x }) },
  "max-pool": { inputs: "one", check: (c, [x], fail) => ({ shape: [...windowOut(c, x, "poolSize", fail), x[2]] }) },
  "avg-pool": { inputs: "one", check: (c, [x], fail) => ({ shape: [...windowOut(c, x, "poolSize", fail), x[2]] }) },
  "global-avg-pool": { inputs: "one", check: (_c, [x], fail) => ({ shape: [image(x, fail)[2]] }) },
  "global-max-pool": { inputs: "one", check: (_c, [x], fail) => ({ shape: [image(x, fail)[2]] }) },
  flatten: { inputs: "one", check: (_c, [x]) => ({ shape: [product(x)] }) },
  reshape: {
    inputs: "one",
    check: (c, [x], fail) => {
      const t = c.targetShape;
      if (!(Array.isArray(t) && t.length >= 1 && t.every((d) => d === -1 || isInt(d, 1)) && t.filter((d) => d === -1).length <= 1))
        fail(`config.targetShape: ${JSON.stringify(t)}; expected positive integers, one of them perhaps -1`);
      const known = product((t as number[]).filter((d) => d !== -1));
      const shape = (t as number[]).map((d) => (d === -1 ? product(x) / known : d));
      if (product(shape) !== product(x) || !shape.every((d) => isInt(d, 1))) fail(`config.targetShape: cannot reshape [${x}] to [${t}]`);
      return { shape };
    },
  },
  dropout: {
    inputs: "one",
    check: (c, [x], fail) => {
      if (!(typeof c.rate === "number" && c.rate >= 0 && c.rate < 1)) fail(`config.rate: ${JSON.stringify(c.rate)}; expected a number in [0, 1)`);
      return { shape: x };
    },
  },
  add: {
    inputs: "many",
    check: (_c, xs, fail) => {
      if (xs.some((x) => x.join() !== xs[0].join())) fail(`input shapes ${xs.map((x) => `[${x}]`).join(", ")} differ`);
      return { shape: xs[0] };
    },
  },
  concatenate: {
    inputs: "many",
    check: (_c, xs, fail) => {
      if (xs.some((x) => x.length !== xs[0].length || x.slice(0, -1).join() !== xs[0].slice(0, -1).join()))
        fail(`input shapes ${xs.map((x) => `[${x}]`).join(", ")} differ before the last axis`);
      return { shape: [...xs[0].slice(0, -1), xs.reduce((n, x) => n + x[x.length - 1], 0)] };
    },
  },
};

export const RUNTIME_KINDS = Object.keys(KIND_CHECKS) as NodeKind[];

/**
 * Checks the file's node list in order and returns each node with its shapes and tensors; `tensorShape(name)` gives
 * a tensor's shape as the file stores it (undefined when it has none). Throws "model.nodes[i] ("name", kind): what"
 * on the first node that does not fit, and on a tensor of the file that no node owns.
 */
export function checkGraph(model: unknown, tensorShape: (name: string) => number[] | undefined, tensorNames: string[]): CheckedNode[] {
  const m = model as { name?: unknown; form?: unknown; nodes?: unknown };
  if (!m || typeof m.name !== "string" || !Array.isArray(m.nodes) || m.nodes.length < 2)
    throw new Error(`model: expected { name, nodes } with an input node and at least one layer`);
  if (m.form !== undefined && m.form !== "sequential" && m.form !== "functional")
    throw new Error(`model.form: ${JSON.stringify(m.form)}; expected "sequential" or "functional"`);
  const shapes = new Map<string, number[]>();
  const owned = new Set<string>();
  const checked = (m.nodes as NodeSpec[]).map((spec, i): CheckedNode => {
    const fail: Fail = (what) => {
      throw new Error(`model.nodes[${i}] (${JSON.stringify(spec?.name)}, ${spec?.kind}): ${what}`);
    };
    if (!spec || typeof spec !== "object") fail("expected an object { name, kind, inputs, config }");
    if (typeof spec.name !== "string" || spec.name === "" || spec.name.includes("/")) fail(`name: expected a non-empty string without "/"`);
    if (shapes.has(spec.name)) fail("name: used by an earlier node too");
    const kind = Object.prototype.hasOwnProperty.call(KIND_CHECKS, spec.kind) ? KIND_CHECKS[spec.kind] : undefined;
    if (!kind) fail(`kind ${JSON.stringify(spec.kind)} is not one the runtime runs (${RUNTIME_KINDS.join(", ")})`);
    if ((i === 0) !== (spec.kind === "input")) fail("the first node, and only it, must be the input");
    const inputs = spec.inputs as unknown;
    if (!Array.isArray(inputs) || !inputs.every((n) => typeof n === "string")) fail(`inputs: ${JSON.stringify(inputs)}; expected a list of node names`);
    const count = kind!.inputs === "none" ? inputs.length === 0 : kind!.inputs === "one" ? inputs.length === 1 : inputs.length >= 2;
    if (!count) fail(`inputs: ${JSON.stringify(inputs)}; expected ${kind!.inputs === "none" ? "none" : kind!.inputs === "one" ? "one" : "two or more"}`);
    const inputShapes = spec.inputs.map((n) => shapes.get(n) ?? fail(`inputs: ${JSON.stringify(n)} is not an earlier node`));
    if (!spec.config || typeof spec.config !== "object") fail(`config: ${JSON.stringify(spec.config)}; expected an object`);
    const { shape, params = [] } = kind!.check(spec.config as Config, inputShapes, fail);
    shapes.set(spec.name, shape);
    return {
      spec,
      inputShapes,
      shape,
      params: params.map(([role, expected]) => {
        const name = paramName(spec.name, role);
        const stored = tensorShape(name);
        if (!stored) fail(`tensor "${name}" (its ${role}) is missing from the file`);
        if (stored!.join() !== expected.join() || stored!.length !== expected.length) fail(`tensor "${name}": shape [${stored}]; expected [${expected}]`);
        owned.add(name);
        return { role, name, shape: expected };
      }),
    };
  });
  const stray = tensorNames.find((n) => !owned.has(n));
  if (stray !== undefined) throw new Error(`tensor ${JSON.stringify(stray)}: no node of the model owns it`);
  const consumed = new Set(checked.flatMap((n) => n.spec.inputs));
  const dangling = checked.slice(0, -1).find((n) => !consumed.has(n.spec.name));
  if (dangling) throw new Error(`model.nodes: "${dangling.spec.name}" feeds nothing; the last node is the only output`);
  return checked;
}
