import * as fs from "fs";
import { initBackend } from "../src/backend";
import { loadGraph } from "../src/graph/load";
import { loadModel } from "../src/graph/load";
import { encodeSparseWeights } from "../src/inference/export";
import { getWeights } from "../src/model";
import { loadSparseModel } from "../src/runtime";
(async () => {
  await initBackend("wasm", { quiet: true });
  const m = loadModel("/tmp/rt3/res/model.json");
  const rt = await loadSparseModel(encodeSparseWeights(m.graph, getWeights(m)));
  for (const batch of [200, 8, 1, 1, 8]) {
    const x = new Float32Array(batch * 784).fill(0.5);
    rt.predict(x, batch);
    const t = performance.now();
    for (let i = 0; i < 20; i++) rt.predict(x, batch);
    console.log(batch, ((performance.now() - t) / 20).toFixed(2), "ms");
  }
  void fs; void loadGraph;
  const g = globalThis as any; for (const [k, v] of Object.entries(g.T)) console.log(g.OPS[k as any], (v as number).toFixed(1));
})();
