import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/backend";
import { forward, layersModelArtifacts } from "../src/graph";
import { modelFromLayersModel } from "../src/graph/load";
import { disposeModel, getWeights } from "../src/model";
import { functionalModel, loadInTfjs, randomizeWeights, relativeError, saveLayersModel, sequentialModel } from "./graph-models";

const cases = [
  { name: "Sequential depthwise-separable CNN", build: () => sequentialModel(), shape: [12, 12, 3] },
  { name: "functional residual block with BN", build: () => functionalModel(), shape: [10, 10, 3] },
];

for (const c of cases) {
  test(`${c.name}: import then forward equals tfjs predict; export reloads in plain tfjs with the same layers and outputs`, async () => {
    await initBackend("wasm", { quiet: true });
    const model = c.build();
    randomizeWeights(model, 7);
    const saved = await saveLayersModel(model);
    const imported = modelFromLayersModel(saved.json, saved.weights);
    const x = tf.randomNormal([4, ...c.shape], 0, 1, "float32", 3);
    try {
      const expected = (model.predict(x) as tf.Tensor).dataSync();
      const ours = forward(imported.graph, imported.params, x, { output: "output" }).dataSync();
      assert.ok(relativeError(ours, expected) <= 1e-5, `relative error ${relativeError(ours, expected)}`);
      // The logits: the output without its softmax; softmax of them is the output.
      const logits = forward(imported.graph, imported.params, x);
      const probs = tf.softmax(logits).dataSync();
      assert.ok(relativeError(probs, expected) <= 1e-5);
      assert.notDeepEqual(Array.from(logits.dataSync()), Array.from(expected));

      const exported = layersModelArtifacts(imported.graph, getWeights(imported));
      const reloaded = await loadInTfjs(exported.json, exported.weights);
      assert.deepEqual(
        reloaded.layers.map((l) => [l.name, l.getClassName()]),
        model.layers.map((l) => [l.name, l.getClassName()]),
      );
      const again = (reloaded.predict(x) as tf.Tensor).dataSync();
      assert.ok(relativeError(again, ours) <= 1e-5, `relative error ${relativeError(again, ours)}`);
      // and fwprune reads its own export back to the same graph
      const back = modelFromLayersModel(exported.json, exported.weights);
      assert.deepEqual(back.graph, imported.graph);
      disposeModel(back);
      reloaded.dispose();
      tf.dispose(logits);
    } finally {
      tf.dispose(x);
      model.dispose();
      disposeModel(imported);
    }
  });
}

test("the graph of the functional model: kinds, shapes, parameter roles, logits and FLOPs by hand", async () => {
  const saved = await saveLayersModel(functionalModel());
  const { graph } = modelFromLayersModel(saved.json, saved.weights);
  assert.equal(graph.form, "functional");
  assert.equal(graph.logits, "head");
  const kinds = Object.fromEntries(graph.nodes.map((n) => [n.name, `${n.kind} [${n.outputShape}]`]));
  assert.deepEqual(kinds, {
    image: "input [10,10,3]",
    c1: "conv2d [10,10,8]",
    c2: "conv2d [10,10,8]",
    bn2: "batch-norm [10,10,8]",
    residual: "add [10,10,8]",
    act: "activation [10,10,8]",
    dw: "depthwise-conv2d [5,5,8]",
    dw_bn: "batch-norm [5,5,8]",
    dw_relu6: "activation [5,5,8]",
    pw: "separable-conv2d [5,5,12]",
    gap: "global-avg-pool [12]",
    gmp: "global-max-pool [8]",
    cat: "concatenate [20]",
    drop: "dropout [20]",
    head: "dense [5]",
  });
  const roles = graph.params.map((p) => `${p.name}:${p.role}:${p.prunable ? "P" : ""}${p.trainable ? "T" : ""}`);
  assert.ok(roles.includes("bn2/moving_mean:moving-mean:") && roles.includes("bn2/gamma:gamma:T") && roles.includes("dw/depthwise_kernel:depthwise-kernel:PT"));
  assert.ok(roles.includes("pw/pointwise_kernel:pointwise-kernel:PT") && !roles.some((r) => r.startsWith("dw_bn/gamma")));
  // multiply-adds per image: conv 10·10·(3·3·3·8) + 10·10·(3·3·8·8), depthwise 5·5·(3·3·8), separable 5·5·(1·1·8) + 5·5·(8·12), dense 20·5
  const flops = graph.params.filter((p) => p.prunable).reduce((n, p) => n + p.size * p.uses, 0);
  assert.equal(flops, 100 * 216 + 100 * 576 + 25 * 72 + 25 * 8 + 25 * 96 + 100);
});
