import { ChildProcess, fork } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ExperimentConfig, validateConfig } from "./config";
import { lockAgeSeconds, lockPath, lockTimings } from "./lock";
import { modelsOf } from "./config-model";
import { PretrainPlan, RunPlan, Shard, parseShard, planPretraining, planRuns, shardRuns } from "./plan";
import { assertWritableFolder, removeOrphanedTemporaries } from "../fsutil";
import { kernelThreads } from "../kernels";
import { defaultDataDir } from "../paths";
import { cachedCheckpointProblem, intactEpochs } from "./pretrain";
import { failedRecord } from "./run";
import { RunRecord, readRecord, writeRecord } from "./store";
import { encodeFunctions, hasFunction } from "../prune/function-source";
import { Task, WorkerMessage, handleTask } from "./worker";

export interface SweepProgress {
  /** Steps done and to do: one per run and one per pre-training epoch this sweep computes. */
  done: number;
  total: number;
  runsDone: number;
  runsTotal: number;
  computed: number;
  cached: number;
  failed: number;
  /** What each worker is doing now. */
  current: string[];
  etaSeconds?: number;
  /** A notable event: a corrupt record, a failed run, a finished run. */
  event?: string;
}

export interface SweepOptions {
  dataDir?: string;
  /** Worker processes; default one per core; 0 runs everything in this process. */
  workers?: number;
  shard?: Shard | string;
  /** Only the runs of this model (by name) of a config that lists several. */
  model?: string;
  /** Recompute runs recorded as failed (and pre-training recorded as diverged). */
  retryFailed?: boolean;
  onProgress?: (p: SweepProgress) => void;
}

export interface SweepResult {
  /** One record per run of the config (of the shard), by method (config order), budget, seed, sparsity. */
  records: RunRecord[];
  runs: number;
  computed: number;
  cached: number;
  failed: number;
  /** Records that did not parse (reported, then recomputed). */
  corrupt: string[];
  seconds: number;
}

/** How often a sweep waiting on another process's pre-training says so again. */
const WAIT_REPORT_SECONDS = 30;

const describeRun = (r: RunPlan) => `${r.label} budget ${r.budget} seed ${r.seed}${r.sparsity === null ? "" : ` s=${r.sparsity}`}`;
const checkpointId = (key: string, epoch: number) => `${key}/${epoch}`;

/** What sweeps on this machine that were killed (kill -9, a crash) left half-written: records, final models, checkpoints. */
function removeLeftovers(dataDir: string): void {
  const checkpoints = path.join(dataDir, "checkpoints");
  const folders = [path.join(dataDir, "runs"), checkpoints];
  if (fs.existsSync(checkpoints)) folders.push(...fs.readdirSync(checkpoints).map((key) => path.join(checkpoints, key)));
  for (const folder of folders) removeOrphanedTemporaries(folder);
}

/** Run what is missing; returns every record of the config (computed now or found in the cache). */
export async function sweep(configInput: ExperimentConfig | unknown, opts: SweepOptions = {}): Promise<SweepResult> {
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const config = validateConfig(configInput);
  const dataDir = opts.dataDir ?? defaultDataDir();
  assertWritableFolder(dataDir);
  removeLeftovers(dataDir);
  const shard = typeof opts.shard === "string" ? parseShard(opts.shard) : opts.shard;
  const runs = shardRuns(planRuns(config), shard).filter((r) => opts.model === undefined || r.model === opts.model);
  if (opts.model !== undefined && runs.length === 0 && !modelsOf(config).some((m) => m.name === opts.model))
    throw new Error(
      `--model ${JSON.stringify(opts.model)}: the config has no such model; expected one of ${modelsOf(config)
        .map((m) => m.name)
        .join(", ")}`,
    );
  const records = new Map<string, RunRecord>();
  const corrupt: string[] = [];
  const todo: RunPlan[] = [];
  let cached = 0;
  let computed = 0;
  let failed = 0;
  const progress = (current: string[], event?: string) => {
    const doneSteps = done;
    const elapsed = (performance.now() - started) / 1000;
    const etaSeconds = doneSteps > 0 ? (elapsed / doneSteps) * (total - doneSteps) : undefined;
    opts.onProgress?.({ done: doneSteps, total, runsDone: records.size, runsTotal: runs.length, computed, cached, failed, current, etaSeconds, event });
  };
  for (const run of runs) {
    const r = readRecord(dataDir, run.key);
    if (r.kind === "ok" && !(opts.retryFailed && r.record.status === "failed")) {
      records.set(run.key, { ...r.record, label: run.label, model: run.model });
      cached++;
      if (r.record.status === "failed") failed++;
      continue;
    }
    if (r.kind === "corrupt") corrupt.push(r.reason);
    todo.push(run);
  }
  todo.sort((a, b) => a.budget - b.budget || a.seed - b.seed || a.label.localeCompare(b.label) || (a.sparsity ?? 0) - (b.sparsity ?? 0));

  const ready = new Set<string>();
  const pretrainFailures = new Map<string, { reason: string; record: boolean }>();
  const pretrainQueue: PretrainPlan[] = [];
  let pretrainSteps = 0;
  for (const plan of planPretraining(config, todo)) {
    const intact = intactEpochs(dataDir, plan.key, plan.epochs);
    for (const e of intact) ready.add(checkpointId(plan.key, e));
    if (intact.length < plan.epochs) {
      pretrainQueue.push(plan);
      pretrainSteps += plan.epochs - intact.length;
    }
  }
  const total = todo.length + pretrainSteps;
  let done = 0;
  for (const reason of corrupt) progress([], `corrupt record, recomputing: ${reason}`);
  progress([]);

  // A notebook's custom schedule crosses to a worker process as its source text (see prune/function-source.ts).
  const workerCount = Math.max(0, Math.min(opts.workers ?? os.cpus().length, todo.length + pretrainQueue.length));
  const threads = workerThreads(workerCount);
  const slots: Slot[] = workerCount === 0 ? [inProcessSlot()] : Array.from({ length: workerCount }, () => workerSlot(threads, workerNodeFlags(workerCount)));
  const current: string[] = slots.map(() => "idle");
  const pending = [...todo];

  const finishRun = (record: RunRecord, run: RunPlan, wasComputed: boolean, stored = true) => {
    records.set(run.key, { ...record, label: run.label, model: run.model });
    done++;
    if (wasComputed) computed++;
    else cached++;
    if (record.status === "failed") failed++;
    const what =
      record.status === "ok"
        ? `acc ${record.metrics?.testAccuracy.toFixed(4)} sparsity ${record.metrics?.sparsity.toFixed(4)}`
        : `FAILED${stored ? "" : " (not recorded)"}: ${record.reason}`;
    progress(current, `${wasComputed ? "computed" : "cached (by another process)"} ${describeRun(run)}: ${what}`);
  };

  const staleMs = lockTimings().stale;
  const liveElsewhere = (lockKey: string) => (lockAgeSeconds(dataDir, lockKey) ?? Infinity) * 1000 < staleMs;
  // Pre-training another process holds (a live lock: another sweep on the same folder, e.g. another Slurm task) does
  // not tie up a worker waiting for it (the worker hands it back when it finds the lock taken): its checkpoints are
  // picked up as they appear, and the workers compute the runs they allow meanwhile. When its lock is no longer live,
  // the plan goes back to the queue.
  const awaitedPretrain: PretrainPlan[] = [];
  const pretrainLock = (plan: PretrainPlan) => `pretrain-${plan.key}`;
  // Said at once, then every WAIT_REPORT_SECONDS: which pre-training this sweep waits for, and until when at most.
  const lastWaitReport = new Map<string, number>();
  const reportAwaited = () => {
    for (const plan of awaitedPretrain) {
      const last = lastWaitReport.get(plan.key);
      if (last !== undefined && performance.now() - last < WAIT_REPORT_SECONDS * 1000) continue;
      lastWaitReport.set(plan.key, performance.now());
      const age = lockAgeSeconds(dataDir, pretrainLock(plan));
      progress(
        current,
        `waiting for another process's pre-training of seed ${plan.inputs.seed} (its lock ${lockPath(dataDir, pretrainLock(plan))} ` +
          `was renewed ${age === undefined ? "just now" : `${age.toFixed(0)} s ago`}; taken over when not renewed for ${staleMs / 1000} s); runs start on its checkpoints as they appear`,
      );
    }
  };
  const awaitPretrain = (plan: PretrainPlan) => {
    awaitedPretrain.push(plan);
    reportAwaited();
  };
  const pollAwaitedPretrain = (): boolean => {
    let changed = false;
    for (let i = 0; i < awaitedPretrain.length; i++) {
      const plan = awaitedPretrain[i];
      // Only the epochs not yet seen are read and hashed: a checkpoint found intact stays so.
      let intact = 0;
      for (let e = 1; e <= plan.epochs; e++) {
        const id = checkpointId(plan.key, e);
        if (!ready.has(id)) {
          if (cachedCheckpointProblem(dataDir, plan.key, e) !== undefined) continue;
          ready.add(id);
          done++;
          changed = true;
        }
        intact++;
      }
      if (intact === plan.epochs || !liveElsewhere(pretrainLock(plan))) {
        awaitedPretrain.splice(i--, 1);
        if (intact < plan.epochs) pretrainQueue.push(plan);
        changed = true;
      }
    }
    return changed;
  };
  const nextTask = (): { task: Task; label: string; run?: RunPlan } | undefined => {
    for (let plan = pretrainQueue.shift(); plan; plan = pretrainQueue.shift()) {
      if (liveElsewhere(pretrainLock(plan))) awaitPretrain(plan);
      else
        return {
          task: { type: "pretrain", plan, dataDir, retryFailed: opts.retryFailed === true },
          label: `pretraining seed ${plan.inputs.seed} to epoch ${plan.epochs}`,
        };
    }
    // Runs another process is computing (a live lock: another sweep on the same folder) go last: this sweep takes
    // the others first instead of waiting for theirs.
    const heldElsewhere = (run: RunPlan) => liveElsewhere(run.key);
    for (const allowHeld of [false, true]) {
      for (let i = 0; i < pending.length; i++) {
        const run = pending[i];
        const failure = pretrainFailures.get(run.pretrainKey);
        if (failure !== undefined) {
          pending.splice(i--, 1);
          const record = failedRecord(run, config, failure.reason, "none");
          if (failure.record) writeRecord(dataDir, record);
          finishRun(record, run, true, failure.record);
          continue;
        }
        if (ready.has(checkpointId(run.pretrainKey, run.budget)) && run.dependsOn.every((k) => records.has(k)) && (allowHeld || !heldElsewhere(run))) {
          pending.splice(i, 1);
          return {
            task: { type: "run", plan: run, dataDir, config, retryFailedBefore: opts.retryFailed ? startedAt : undefined },
            label: describeRun(run),
            run,
          };
        }
      }
    }
    return undefined;
  };

  let awaitTimer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      let inFlight = 0;
      let stopped = false;
      const fail = (err: Error) => {
        if (!stopped) {
          stopped = true;
          reject(err);
        }
      };
      awaitTimer = setInterval(() => {
        if (!stopped && awaitedPretrain.length && pollAwaitedPretrain()) {
          progress(current);
          pump();
        }
        if (!stopped) reportAwaited();
      }, 1000);
      const pump = () => {
        if (stopped) return;
        slots.forEach((slot, i) => {
          if (slot.busy || stopped) return;
          const next = nextTask();
          if (!next) return;
          slot.busy = true;
          inFlight++;
          current[i] = next.label;
          progress(current);
          slot
            .execute(next.task, (m) => {
              if (m.type === "checkpoint") {
                if (ready.has(checkpointId(m.pretrainKey, m.epoch))) return;
                ready.add(checkpointId(m.pretrainKey, m.epoch));
                done++;
                current[i] = `pretraining seed ${(next.task as { plan: PretrainPlan }).plan.inputs.seed}: epoch ${m.epoch} saved`;
                progress(current);
                pump();
              } else if (m.type === "pretrained") {
                if (m.heldElsewhere) awaitPretrain((next.task as { plan: PretrainPlan }).plan);
                if (m.failed !== undefined) {
                  pretrainFailures.set(m.pretrainKey, { reason: m.failed, record: !m.unrecorded });
                  progress(current, m.failed);
                }
              } else if (m.type === "run-progress") {
                current[i] = `${next.label}: step ${m.done}/${m.total}`;
                if (m.done === m.total || m.done % Math.max(1, Math.round(m.total / 20)) === 0) progress(current);
              } else if (m.type === "waiting") {
                current[i] =
                  `${next.label}: waiting ${Math.round(m.seconds)} s for another process's lock (taken over when not renewed for ${lockTimings().stale / 1000} s)`;
                if (Math.round(m.seconds) % 10 === 0) progress(current, current[i]);
              } else if (m.type === "run-done" && next.run) {
                finishRun(m.record, next.run, m.computed, m.stored !== false);
              } else if (m.type === "error") {
                fail(new Error(`${next.label} failed: ${m.message}`));
              }
            })
            .then(() => {
              slot.busy = false;
              inFlight--;
              current[i] = "idle";
              pump();
            }, fail);
        });
        if (stopped) return;
        if (inFlight === 0) {
          if (pending.length === 0) resolve();
          else if (awaitedPretrain.length > 0) current.fill(`waiting for another process's pre-training (seed ${awaitedPretrain[0].inputs.seed})`);
          else
            fail(new Error(`sweep stalled: ${pending.length} runs wait for checkpoints that pre-training did not produce (first: ${describeRun(pending[0])})`));
        }
      };
      pump();
    });
  } finally {
    clearInterval(awaitTimer);
    for (const slot of slots) slot.close();
  }
  done = total;
  progress(current.map(() => "idle"));
  const methodOrder = new Map(config.methods.map((m, i) => [m.name, i]));
  const readable = [...runs].sort(
    (a, b) =>
      (methodOrder.get(a.label) ?? 0) - (methodOrder.get(b.label) ?? 0) || a.budget - b.budget || a.seed - b.seed || (a.sparsity ?? 0) - (b.sparsity ?? 0),
  );
  const ordered = readable.map((r) => records.get(r.key)).filter((r): r is RunRecord => r !== undefined);
  return { records: ordered, runs: runs.length, computed, cached, failed, corrupt, seconds: (performance.now() - started) / 1000 };
}

// ---------------------------------------------------------------- where tasks run

interface Slot {
  busy: boolean;
  /** Resolves when the task's final message ("pretrained", "run-done" or "error") has been handled. */
  execute(task: Task, onMessage: (m: WorkerMessage) => void): Promise<void>;
  close(): void;
}

function inProcessSlot(): Slot {
  return { busy: false, execute: (task, onMessage) => handleTask(task, onMessage), close: () => {} };
}

/** The compiled worker next to this file; under tsx (tests) the .ts source, run through tsx. */
function workerEntry(): { file: string; execArgv: string[] } {
  const js = path.join(__dirname, "worker.js");
  if (fs.existsSync(js)) return { file: js, execArgv: [] };
  return { file: path.join(__dirname, "worker.ts"), execArgv: ["--import", "tsx"] };
}

/**
 * The kernel threads of each of W worker processes: max(1, T / W), where T is this process's thread count
 * (FWPRUNE_THREADS or setKernelThreads, else every core), so that the workers share the threads a single run would use.
 */
export function workerThreads(workers: number, threads = kernelThreads()): number {
  return Math.max(1, Math.floor(threads / Math.max(1, workers)));
}

/**
 * Node's flags for the worker processes. With a worker on every core, V8's parallel garbage-collection threads can
 * only take time from another worker; collecting on the worker's own thread costs less CPU in all. With a core to
 * spare, they run there for free. Collection never changes what a run computes.
 */
export function workerNodeFlags(workers: number, cores = os.cpus().length): string[] {
  return workers >= cores ? ["--single-threaded-gc"] : [];
}

function workerSlot(threadsPerWorker: number, nodeFlags: string[]): Slot {
  const entry = workerEntry();
  const child: ChildProcess = fork(entry.file, [], {
    execArgv: [...nodeFlags, ...entry.execArgv],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    env: { ...process.env, FWPRUNE_QUIET: "1", FWPRUNE_THREADS: String(threadsPerWorker) },
  });
  let current: { onMessage: (m: WorkerMessage) => void; resolve: () => void; reject: (e: Error) => void } | undefined;
  let exited = false;
  child.on("message", (m: WorkerMessage) => {
    if (!current) return;
    const task = current;
    task.onMessage(m);
    if (m.type === "pretrained" || m.type === "run-done" || m.type === "error") {
      current = undefined;
      task.resolve();
    }
  });
  child.on("exit", (code, signal) => {
    exited = true;
    current?.reject(new Error(`worker process ${child.pid} exited (code ${code}, signal ${signal}) in the middle of a task`));
    current = undefined;
  });
  return {
    busy: false,
    execute(task, onMessage) {
      if (exited) return Promise.reject(new Error(`worker process ${child.pid} has exited`));
      return new Promise<void>((resolve, reject) => {
        current = { onMessage, resolve, reject };
        child.send(hasFunction(task) ? encodeFunctions(task) : task);
      });
    },
    close() {
      if (!exited && child.connected) child.disconnect();
    },
  };
}
