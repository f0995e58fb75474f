import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { PRESETS, planPretraining, planRuns, resolveConfig, runOne, sweep, validateConfig } from "../src/experiment";
import { PRESET_BN_MOMENTUM, residualNetSpec, separableNetSpec } from "../src/experiment/architectures";
import { ModelGraph, buildGraph, graphFromLayersTopology, paramCount } from "../src/graph";
import { pooledOverModels, claimsByModel } from "../src/analysis/architectures";
import { pairedDifference } from "../src/analysis/claims";
import type { RunRecord } from "../src/experiment/store";
import { residualNet, separableNet } from "../src/zoo";
import { initBackend } from "../src/backend";
import { KINDS } from "../src/graph/kinds";
import { NodeSpecSchema } from "../src/graph/node-schema";

/** A node's whole upstream graph as text (kinds, configs, input order), independent of node names. */
function signature(graph: ModelGraph): string {
  const byName = new Map(graph.nodes.map((n) => [n.name, n]));
  const memo = new Map<string, string>();
  const sig = (name: string): string => {
    if (!memo.has(name)) {
      const n = byName.get(name)!;
      memo.set(name, `${n.kind}${JSON.stringify(n.config)}(${n.inputs.map(sig).join(",")})`);
    }
    return memo.get(name)!;
  };
  return sig(graph.output);
}

async function zooGraph(model: tf.LayersModel): Promise<ModelGraph> {
  let topology: unknown;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      topology = artifacts.modelTopology;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
    }),
  );
  return graphFromLayersTopology(topology);
}

test("the preset's residual and separable graphs are src/zoo.ts's models, layer for layer", async () => {
  await initBackend("cpu", { quiet: true });
  for (const [spec, zoo, params] of [
    [residualNetSpec(), residualNet(), 77_754],
    [separableNetSpec(), separableNet(), 67_338],
  ] as const) {
    const ours = buildGraph(spec.name, spec.nodes);
    const theirs = await zooGraph(zoo);
    // The one intended difference: batch norm's momentum (the zoo keeps Keras's default 0.99).
    for (const n of theirs.nodes) if (n.kind === "batch-norm") n.config = { ...n.config, momentum: PRESET_BN_MOMENTUM };
    assert.ok(ours.nodes.filter((n) => n.kind === "batch-norm").every((n) => n.kind === "batch-norm" && n.config.momentum === 0.9));
    assert.equal(signature(ours), signature(theirs), spec.name);
    const trainable = ours.params.filter((p) => p.trainable).reduce((n, p) => n + p.size, 0);
    assert.equal(trainable, params);
    assert.equal(paramCount(ours), paramCount(theirs));
  }
});

test("the node schema knows every node kind of the graph module", () => {
  for (const kind of Object.keys(KINDS)) {
    const sample = residualNetSpec().nodes.find((n) => n.kind === kind);
    if (sample) assert.ok(NodeSpecSchema.safeParse(sample).success, kind);
  }
  const parsed = NodeSpecSchema.safeParse({ name: "x", kind: "lstm", inputs: [], config: {} });
  assert.equal(parsed.success, false);
});

test("a config's model may be a node list; mistakes are named by field before any work", () => {
  const graphModel = residualNetSpec();
  const config = resolveConfig({ preset: "quick", model: graphModel });
  assert.equal(planRuns(config).length, planRuns(validateConfig(PRESETS.quick)).length);
  const bad = structuredClone(graphModel) as unknown as { nodes: { config: Record<string, unknown> }[] };
  bad.nodes[1].config.kernelSize = [3, "3"];
  assert.throws(() => resolveConfig({ preset: "quick", model: bad }), /model\.nodes\.1\.config\.kernelSize\.1: Expected number/);
  const wrongInput = residualNetSpec([32, 32, 1]);
  assert.throws(
    () => resolveConfig({ preset: "quick", model: wrongInput }),
    /model\.nodes: the dataset's images are 28×28×1 \(H×W×C\); expected the model's input to be the same \(the model's input is 32×32×1\)/,
  );
  assert.throws(
    () => resolveConfig({ preset: "quick", model: residualNetSpec([28, 28, 1], 7) }),
    /model\.nodes: the model's logits have 7 values; expected 10/,
  );
  const dangling = structuredClone(graphModel);
  dangling.nodes[3].inputs = ["block1_add"];
  assert.throws(() => resolveConfig({ preset: "quick", model: dangling }), /model\.nodes: .*input "block1_add" is not an earlier node/);
  assert.throws(() => resolveConfig({ preset: "quick", model: [graphModel, residualNetSpec()] }), /model\.1\.name: duplicate model name "residual-net"/);
});

test("the architectures preset: three models, each its own pre-training, 180 runs, matched runs within their model", () => {
  const config = validateConfig(PRESETS.architectures);
  const runs = planRuns(config);
  assert.equal(runs.length, 3 * 3 * 2 * 10);
  assert.equal(planPretraining(config, runs).length, 9);
  const models = new Set(runs.map((r) => r.model));
  assert.deepEqual([...models].sort(), ["paper-cnn", "residual-net", "separable-net"]);
  const byKey = new Map(runs.map((r) => [r.key, r]));
  for (const r of runs)
    for (const k of r.dependsOn) {
      const other = byKey.get(k)!;
      assert.deepEqual([other.model, other.seed, other.budget], [r.model, r.seed, r.budget]);
    }
  // The paper CNN's pre-training is the fashion preset's (same data, model and optimizer): its checkpoints are shared.
  const fashion = planRuns(validateConfig(PRESETS.fashion));
  const paperKeys = new Set(runs.filter((r) => r.model === "paper-cnn").map((r) => r.pretrainKey));
  assert.deepEqual(paperKeys, new Set(fashion.map((r) => r.pretrainKey)));
});

test("sweep --model and run --model name the models when it is not one of them", async () => {
  await assert.rejects(
    runOne(PRESETS.architectures, { model: "vgg", method: "fw", budget: 2 }, { dataDir: "/tmp" }),
    /--model "vgg": the config has no such model/,
  );
  await assert.rejects(
    sweep(PRESETS.architectures, { model: "vgg", workers: 0, dataDir: "/tmp" }),
    /--model "vgg": the config has no such model; expected one of paper-cnn, residual-net, separable-net/,
  );
});

function record(model: string, label: string, seed: number, budget: number, accuracy: number): RunRecord {
  return {
    format: 3,
    key: `${model}-${label}-${seed}-${budget}`,
    status: "ok",
    label,
    model,
    method: label,
    seed,
    budget,
    sparsityTarget: 0.9,
    inputs: {} as RunRecord["inputs"],
    config: {},
    backend: "wasm",
    versions: { fwprune: "", tfjs: "", node: "" },
    createdAt: "",
    host: "",
    pid: 0,
    metrics: { testAccuracy: accuracy, sparsity: 0.9 } as RunRecord["metrics"],
  };
}

test("claims pooled over architectures pair runs within one architecture, each (architecture, seed) a replicate", () => {
  // Per architecture, fw-momentum beats magnitude by exactly 1 point; across architectures the levels differ a lot,
  // so pairing across architectures would give a wide, wrong interval.
  const records: RunRecord[] = [];
  ["a", "b"].forEach((model, m) => {
    for (const seed of [0, 1, 2])
      for (const budget of [2, 10]) {
        const base = 0.5 + 0.3 * m + 0.01 * seed + 0.001 * budget;
        records.push(record(model, "magnitude", seed, budget, base), record(model, "fw-momentum", seed, budget, base + 0.01));
      }
  });
  const pooled = pooledOverModels(records);
  assert.equal(new Set(pooled.map((r) => r.seed)).size, 6);
  const d = pairedDifference(pooled, "fw-momentum", "magnitude", (r) => r.metrics!.testAccuracy);
  assert.equal(d.pooled.n, 6);
  assert.ok(Math.abs(d.pooled.mean - 0.01) < 1e-12 && d.pooled.upper - d.pooled.lower < 1e-9);
  const claims = claimsByModel(records);
  assert.deepEqual(
    claims.map((c) => c.model),
    ["a", "b", "pooled"],
  );
  for (const c of claims) assert.equal(c.rows[0].verdict, "holds");
});
