import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { checkpointFile, planPretraining, planRuns, pretrain, resolveConfig, sweep, tryLock } from "../src/experiment";

// A sweep sharing its data folder with another (e.g. two Slurm tasks) does not tie a worker up waiting for the other's
// pre-training: it computes the runs each new checkpoint allows as it appears.
const tiny = {
  preset: "quick",
  name: "tiny-shared-pretraining-test",
  dataset: { name: "mnist-embedded", limitTrain: 300, limitTest: 200 },
  pretrain: { epochs: 2 },
  budgets: [1, 2],
  methods: ["dense", "magnitude"],
  sparsity: [0.9],
  inference: { repeats: 1 },
};

test("pre-training another process holds: its checkpoints are used as they appear, a worker is not tied up waiting", { timeout: 180_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-shared-pretrain-"));
  const config = resolveConfig(tiny);
  const elsewhere = path.join(dir, "elsewhere");
  await sweep(config, { dataDir: elsewhere, workers: 0 }); // the checkpoints "the other process" will produce
  const pretrainKey = planRuns(config)[0].pretrainKey;
  const shared = path.join(dir, "shared");
  const publish = (epoch: number) => {
    fs.mkdirSync(path.dirname(checkpointFile(shared, pretrainKey, epoch)), { recursive: true });
    fs.copyFileSync(checkpointFile(elsewhere, pretrainKey, epoch), checkpointFile(shared, pretrainKey, epoch));
  };
  // "Another process" pre-trains: it holds (and renews) the pre-training lock and has saved epoch 1 so far.
  const release = await tryLock(shared, `pretrain-${pretrainKey}`);
  assert.ok(release);
  publish(1);
  let forced = false;
  const fallback = setTimeout(() => {
    forced = true; // only when the sweep never got to a budget-1 run on its own
    publish(2);
    void release();
  }, 60_000);
  // A worker handed pre-training that another process took meanwhile gives it back at once instead of waiting.
  const [plan] = planPretraining(config, planRuns(config));
  const handedBack = Date.now();
  assert.equal(await pretrain(plan, shared, () => {}, { yieldIfHeld: true }), "held-elsewhere");
  assert.ok(Date.now() - handedBack < 2000);
  const computedBeforeEpoch2: string[] = [];
  let epoch2 = false;
  try {
    const result = await sweep(config, {
      dataDir: shared,
      workers: 1,
      onProgress: (p) => {
        if (!p.event?.startsWith("computed ")) return;
        if (!epoch2) computedBeforeEpoch2.push(p.event);
        if (!epoch2 && computedBeforeEpoch2.length === 2) {
          epoch2 = true;
          publish(2);
          void release();
        }
      },
    });
    assert.equal(forced, false, "the sweep waited on the other process's lock instead of computing the budget-1 runs");
    assert.equal(result.computed, 4);
    assert.deepEqual(
      computedBeforeEpoch2.map((e) => /budget (\d)/.exec(e)?.[1]),
      ["1", "1"],
    );
    assert.ok(!fs.existsSync(path.join(shared, "checkpoints", pretrainKey, "pretrain.json")), "this sweep pre-trained nothing itself");
    assert.equal(await pretrain(plan, shared, () => {}, { yieldIfHeld: true }), "done", "all intact: nothing to do");
  } finally {
    clearTimeout(fallback);
    await release();
  }
});
