import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { exportRun, finalModelFile, modelLike, modelsOf, planRuns, readFinalModel, readRecord, resolveConfig, runOne, selectRun } from "../src/experiment";
import { mergeDataDirs } from "../src/experiment/merge";
import { disposeModel, getWeights } from "../src/model";
import { runModel } from "../src/notebook";
import { TINY } from "./tiny-config";

// The paper CNN on 600 training and 300 test digits, FW-momentum (T = 10) and dense: a run takes seconds.
const CONFIG = { ...TINY, name: "final-model-test", methods: ["dense", "fw-momentum"] };

test(
  "a run keeps its final model; a cached export reads it (no training, no timing); a missing, corrupt or foreign model is recomputed once",
  { timeout: 600_000 },
  async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-final-model-"));
    try {
      const dataDir = path.join(dir, "data");
      const config = resolveConfig(CONFIG);
      const key = selectRun(config, { method: "fw-momentum", budget: 1 }).key;
      const denseKey = selectRun(config, { method: "dense", budget: 1 }).key;
      const exportTo = async (name: string) => {
        const statuses: string[] = [];
        const start = performance.now();
        const report = await exportRun({
          preset: config,
          method: "fw-momentum",
          budget: 1,
          out: path.join(dir, name),
          dataDir,
          onStatus: (m) => statuses.push(m),
        });
        return { report, statuses, seconds: (performance.now() - start) / 1000, weights: fs.readFileSync(path.join(dir, name, "weights.bin")) };
      };

      // Cold: the run is computed once, and its model stored with its record.
      const cold = await exportTo("cold");
      assert.ok(!cold.statuses.some((s) => s.startsWith("recomputing")), cold.statuses.join("\n"));
      assert.ok(fs.existsSync(finalModelFile(dataDir, key)));
      const read = readRecord(dataDir, key);
      assert.equal(read.kind, "ok");
      const record = read.kind === "ok" ? read.record : assert.fail();
      const stored = readFinalModel(dataDir, key);
      // The stored weights are the run's: exact zeros where the mask is 0, the record's zero count, the exported weights.
      let zeros = 0;
      for (const [name, m] of Object.entries(stored.mask ?? assert.fail("no mask stored"))) {
        const w = stored.weights[name];
        m.forEach((keep, i) => {
          if (keep === 0) assert.ok(w[i] === 0, `${name}[${i}] is masked yet non-zero`);
        });
        zeros += w.reduce((n, x) => n + (x === 0 ? 1 : 0), 0);
      }
      assert.equal(zeros, record.metrics?.zeros);
      assert.equal(cold.report.testAccuracy, record.metrics?.testAccuracy);
      // A notebook reads the same model.
      const inNotebook = await runModel({ preset: "final-model-test", config, model: modelLike(modelsOf(config)[0]), dataDir }, record);
      assert.deepEqual(getWeights(inNotebook.model), stored.weights);
      assert.deepEqual(inNotebook.mask, stored.mask);
      disposeModel(inNotebook.model);

      // Cached: the checkpoints are removed, so anything that trained or computed the run would have to pre-train again.
      fs.rmSync(path.join(dataDir, "checkpoints"), { recursive: true });
      const recordBytes = fs.readFileSync(path.join(dataDir, "runs", `${key}.json`));
      const cached = await exportTo("cached");
      assert.deepEqual(cached.statuses, [
        "the run's record (computed now if it is not cached)",
        "checking the layers model through plain tfjs, and the sparse file's round trip",
      ]);
      assert.ok(!fs.existsSync(path.join(dataDir, "checkpoints")), "nothing was pre-trained or computed");
      assert.ok(fs.readFileSync(path.join(dataDir, "runs", `${key}.json`)).equals(recordBytes), "the record is untouched");
      assert.ok(cached.weights.equals(cold.weights), "the same weights as the cold export");
      const runSeconds = record.metrics?.seconds.total ?? 0;
      console.log(`# cached export ${cached.seconds.toFixed(2)} s; the run itself ${runSeconds.toFixed(2)} s; the cold export ${cold.seconds.toFixed(2)} s`);
      assert.ok(cached.seconds < runSeconds / 2, `the cached export took ${cached.seconds.toFixed(2)} s; the run itself ${runSeconds.toFixed(2)} s`);

      // Missing: recomputed once (pre-training its checkpoint again), said so, and kept.
      fs.rmSync(finalModelFile(dataDir, key));
      const missing = await exportTo("missing");
      assert.ok(missing.statuses.includes(`recomputing run ${key} to get its final model (not stored)`), missing.statuses.join("\n"));
      assert.ok(missing.weights.equals(cold.weights));
      const again = await exportTo("again");
      assert.ok(!again.statuses.some((s) => s.startsWith("recomputing")), "kept: the next export reads it");

      // Corrupt (one bit flipped) and foreign (the dense run's model under this run's name): refused, recomputed, replaced.
      const file = finalModelFile(dataDir, key);
      const bytes = fs.readFileSync(file);
      bytes[bytes.length >> 1] ^= 1;
      fs.writeFileSync(file, bytes);
      const corrupt = await exportTo("corrupt");
      assert.ok(
        corrupt.statuses.some((s) => /^recomputing run [0-9a-f]{32} to get its final model \(the stored one is refused: .*does not match its SHA-256/.test(s)),
        corrupt.statuses.join("\n"),
      );
      assert.ok(corrupt.weights.equals(cold.weights));
      await runOne(config, { method: "dense", budget: 1 }, { dataDir });
      assert.ok(fs.existsSync(finalModelFile(dataDir, denseKey)), "the dense run's model was stored when it was computed");
      fs.copyFileSync(finalModelFile(dataDir, denseKey), file);
      const foreign = await exportTo("foreign");
      assert.ok(
        foreign.statuses.some((s) => s.includes(`says it is the final model of runKey "${denseKey}"; expected "${key}"`)),
        foreign.statuses.join("\n"),
      );
      assert.ok(foreign.weights.equals(cold.weights));
      assert.equal(readFinalModel(dataDir, key).mask !== undefined, true);

      // merge copies final models, verified: one under another run's name is refused.
      const into = path.join(dir, "merged");
      const report = mergeDataDirs([dataDir], into);
      assert.equal(report.finalModels.copied, planRuns(config).length);
      const other = path.join(dir, "other");
      fs.mkdirSync(path.join(other, "runs"), { recursive: true });
      fs.copyFileSync(finalModelFile(dataDir, denseKey), finalModelFile(other, key));
      const refused = mergeDataDirs([other], path.join(dir, "merged-2"));
      assert.equal(refused.finalModels.copied, 0);
      assert.match(refused.invalid[0], /says it is the final model of runKey/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

test("run selection: --sparsity for weight-level methods, --flop-reduction for structured ones, runs the config lacks refused", () => {
  const config = resolveConfig({ ...TINY, methods: ["magnitude", "structured-magnitude"], sparsity: [0.5] });
  assert.equal(selectRun(config, { method: "magnitude", budget: 1, sparsity: 0.5 }).sparsity, 0.5);
  assert.equal(selectRun(config, { method: "structured-magnitude", budget: 1, flopReduction: 0.5 }).sparsity, 0.5);
  assert.throws(() => selectRun(config, { method: "structured-magnitude", budget: 1, sparsity: 0.5 }), /--sparsity .* give --flop-reduction instead/);
  assert.throws(() => selectRun(config, { method: "magnitude", budget: 1, flopReduction: 0.5 }), /--flop-reduction .* give --sparsity instead/);
  assert.throws(
    () => selectRun(config, { method: "magnitude", budget: 2 }),
    /no run at budget 2, seed 0; its runs have budgets 1, seeds 0, sparsity targets 0.5/,
  );
  assert.throws(() => selectRun(config, { method: "fw", budget: 1 }), /--method: "fw" is not a method of/);
});
