import { decodeFunctions } from "../prune/function-source";
import { DatasetChangedError } from "../digest";
import { describeError } from "../errors";
import { PretrainPlan, RunPlan } from "./plan";
import { PretrainFailed, pretrain } from "./pretrain";
import { ensureBackend, ensureRecord } from "./run";
import { RunRecord } from "./store";

/** What the sweep asks a worker to do (one task at a time). */
export type Task =
  | { type: "pretrain"; plan: PretrainPlan; dataDir: string; retryFailed: boolean }
  | { type: "run"; plan: RunPlan; dataDir: string; config: unknown; retryFailedBefore?: string };

/** What a worker reports; "pretrained", "run-done" and "error" end a task. */
export type WorkerMessage =
  | { type: "checkpoint"; pretrainKey: string; epoch: number }
  | { type: "pretrained"; pretrainKey: string; failed?: string; heldElsewhere?: boolean; unrecorded?: boolean }
  | { type: "run-done"; record: RunRecord; computed: boolean; stored?: boolean }
  | { type: "waiting"; key: string; seconds: number }
  | { type: "run-progress"; key: string; done: number; total: number }
  | { type: "error"; message: string };

/** Run one task in this process, reporting through `emit`. Used by worker processes and by in-process sweeps alike. */
export async function handleTask(sent: Task, emit: (m: WorkerMessage) => void): Promise<void> {
  try {
    const task = decodeFunctions(sent); // custom schedules arrive as source text from the sweep
    await ensureBackend();
    if (task.type === "pretrain") {
      try {
        const outcome = await pretrain(task.plan, task.dataDir, (epoch) => emit({ type: "checkpoint", pretrainKey: task.plan.key, epoch }), {
          retryFailed: task.retryFailed,
          yieldIfHeld: true,
        });
        emit({ type: "pretrained", pretrainKey: task.plan.key, heldElsewhere: outcome === "held-elsewhere" || undefined });
      } catch (err) {
        if (!(err instanceof PretrainFailed || err instanceof DatasetChangedError)) throw err;
        emit({ type: "pretrained", pretrainKey: task.plan.key, failed: err.message, unrecorded: err instanceof DatasetChangedError || undefined });
      }
    } else {
      const { record, computed, stored } = await ensureRecord(task.plan, task.dataDir, task.config, {
        retryFailedBefore: task.retryFailedBefore,
        onWait: (seconds) => emit({ type: "waiting", key: task.plan.key, seconds }),
        onProgress: (done, total) => emit({ type: "run-progress", key: task.plan.key, done, total }),
      });
      emit({ type: "run-done", record, computed, stored });
    }
  } catch (err) {
    emit({ type: "error", message: describeError(err) });
  }
}

// The worker process: forked by the sweep, runs the tasks it is sent, exits when the sweep goes away.
if (require.main === module) {
  // The sweep gone (killed, or its terminal closed): stop at once and quietly, the lock lease lapses by itself.
  const orphaned = () => process.exit(0);
  const send = (m: WorkerMessage) => {
    if (!process.connected) return orphaned();
    process.send?.(m, undefined, {}, (err) => err && orphaned());
  };
  let queue = Promise.resolve();
  process.on("message", (task: Task) => {
    queue = queue.then(() => handleTask(task, send));
  });
  process.on("disconnect", orphaned);
}
