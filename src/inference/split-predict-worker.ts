import type { MessagePort } from "node:worker_threads";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../backend";
import { Params, forward } from "../model";
import type { ModelGraph } from "../graph";
import { valuesOf } from "../kernels/deferred";
import { registerSparseKernels } from "../kernels/sparse";
import { setKernelThreads } from "../kernels/threads";
import { CompiledGraph, LayerPath, Step, execute, program } from "./program";
import { compileGraph, compiledTensors } from "./sparse-model";
import { DONE, FAILED, READY } from "../kernels/worker-pool";
import { EXAMPLES_AT, claimExamples } from "./split-predict";
import type { SplitMessage } from "./split-predict";

/**
 * A worker thread of split-predict.ts: its own wasm backend with fwprune's kernels on one thread, the models it was
 * sent compiled to the same programs, and a part of a batch predicted on request (by a compiled model, or by a graph's
 * forward pass with the weights it was sent, kept by id), its logits written after the examples in the request's
 * SharedArrayBuffer.
 */
export function serveSplitPredict(workerData: { control: SharedArrayBuffer; slot: number }, port: MessagePort): void {
  const ctrl = new Int32Array(workerData.control);
  const { slot } = workerData;
  setKernelThreads(1); // the other cores are this worker's siblings'
  const up = initBackend("wasm", { quiet: true, training: false }).then(
    (name) => {
      registerSparseKernels();
      Atomics.store(ctrl, slot + READY, name === "wasm" ? 1 : -1);
    },
    () => Atomics.store(ctrl, slot + READY, -1),
  );
  const models = new Map<number, { compiled: CompiledGraph; steps: Step[] }>();
  const weightSets = new Map<number, { graph: ModelGraph; params: Params }>();
  port.on("message", (message: SplitMessage) => {
    void up.then(() => {
      if (message.kind === "model") {
        try {
          const compiled = compileGraph(message.model.prepared);
          models.set(message.model.id, { compiled, steps: program(compiled, new Map<string, LayerPath>(message.model.paths)) });
        } catch {
          // its predictions fail (no model), and the batch runs whole on the main thread
        }
      } else if (message.kind === "drop-weights") {
        tf.dispose(Object.values(weightSets.get(message.id)?.params ?? {}));
        weightSets.delete(message.id);
      } else if (message.kind === "drop") {
        const model = models.get(message.id);
        if (model) tf.dispose(compiledTensors(model.compiled));
        models.delete(message.id);
      } else {
        try {
          const { data, shape } = message;
          const perExample = shape.slice(1).reduce((a, b) => a * b, 1);
          const model = message.kind === "predict" ? models.get(message.id) : undefined;
          if (message.kind === "predict" && !model) throw new Error(`no model ${message.id}`);
          const weights = message.kind === "forward" ? weightsOf(message) : undefined;
          claimExamples(message, (first, count) =>
            valuesOf(() => {
              const x = tf.tensor(new Float32Array(data, EXAMPLES_AT + first * perExample * 4, count * perExample), [count, ...shape.slice(1)]);
              return weights ? forward(weights.graph, weights.params, x) : execute(model!.steps, model!.compiled.graph, x);
            }),
          );
        } catch {
          Atomics.store(ctrl, slot + FAILED, 1);
        }
        Atomics.store(ctrl, slot + DONE, 1);
        Atomics.notify(ctrl, slot + DONE);
      }
    });
  });

  /** A forward pass's weights: those sent along (kept under their id, which is never sent twice), else those kept under it. */
  function weightsOf(message: Extract<SplitMessage, { kind: "forward" }>): { graph: ModelGraph; params: Params } {
    const { id, graph, weights } = message;
    if (graph && weights) {
      weightSets.set(id, { graph, params: Object.fromEntries(graph.params.map((p) => [p.name, tf.tensor(weights[p.name], p.shape)])) });
    }
    const held = weightSets.get(id);
    if (!held) throw new Error(`no weights ${id}`);
    return held;
  }
}
