import * as tf from "@tensorflow/tfjs";
import { continueDeferred, finishDeferred, isDeferred } from "./threads";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { pointer, simdLoops } from "./simd";

/** One SGD-momentum update of one variable: inputs value, accumulation, gradient → [new value, new accumulation]. */
export const MOMENTUM_STEP = "FwpruneMomentumStep";

interface MomentumStepAttrs {
  learningRate: number;
  momentum: number;
}

/**
 * tfjs's MomentumOptimizer (without Nesterov) in one pass, in the same float32 operations:
 * acc' = m·acc + g; w' = (−lr)·acc' + w. A SIMD loop (simd.wat) where available, else plain TypeScript.
 */
function momentumStep(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo[] {
  const backend = args.backend as BackendWasm;
  const { value, accumulation, gradient } = args.inputs as Record<"value" | "accumulation" | "gradient", tf.TensorInfo>;
  const { learningRate, momentum } = (args.attrs ?? {}) as unknown as MomentumStepAttrs;
  for (const [name, t] of [
    ["accumulation", accumulation],
    ["gradient", gradient],
  ] as const) {
    if (t.dtype !== "float32" || !tf.util.arraysEqual(t.shape, value.shape)) {
      throw new Error(`${MOMENTUM_STEP}: ${name} is ${t.dtype} [${t.shape}]; expected float32 [${value.shape}] like the value`);
    }
  }
  const newValue = backend.makeOutput(value.shape, "float32");
  const newAccumulation = backend.makeOutput(value.shape, "float32");
  const n = tf.util.sizeFromShape(value.shape);
  const negLr = Math.fround(-learningRate);
  const m = Math.fround(momentum);
  const simd = simdLoops(backend);
  // A gradient still being computed on the kernel threads: the update waits for it (deferred.ts), and whatever reads the
  // new value or accumulation first waits for both. This kernel is not guarded: it joins the job itself where needed.
  const data = [value, accumulation, gradient, newValue, newAccumulation].map((t) => t.dataId);
  const waits = simd !== undefined && isDeferred(gradient.dataId) && !isDeferred(value.dataId) && !isDeferred(accumulation.dataId);
  if (!waits && data.some((d) => isDeferred(d))) finishDeferred();
  if (simd) {
    // Where the data lie now: a variable's dataId changes when it is assigned the new value.
    const [w, acc, g, wOut, accOut] = [value, accumulation, gradient, newValue, newAccumulation].map((t) => pointer(backend, t));
    const update = () => simd.momentumStep(w, acc, g, wOut, accOut, n, negLr, m);
    if (!(waits && continueDeferred(update, data))) update();
    return [newValue, newAccumulation];
  }
  const w = backend.typedArrayFromHeap(value) as Float32Array;
  const acc = backend.typedArrayFromHeap(accumulation) as Float32Array;
  const g = backend.typedArrayFromHeap(gradient) as Float32Array;
  const wOut = backend.typedArrayFromHeap(newValue) as Float32Array;
  const accOut = backend.typedArrayFromHeap(newAccumulation) as Float32Array;
  for (let i = 0; i < n; i++) {
    const a = Math.fround(Math.fround(m * acc[i]) + g[i]);
    accOut[i] = a;
    wOut[i] = Math.fround(negLr * a) + w[i];
  }
  return [newValue, newAccumulation];
}

export const momentumStepConfig: tf.KernelConfig = {
  kernelName: MOMENTUM_STEP,
  backendName: "wasm",
  kernelFunc: momentumStep as unknown as tf.KernelFunc,
};

/**
 * SGD with momentum, the same update as `tf.train.momentum(learningRate, momentum)` (no Nesterov), as one fused
 * kernel per variable where the backend has it (wasm), else with the same tf ops tfjs uses: tfjs issues four
 * small ops per variable. Accumulators start at zero, one per variable name.
 */
export class FusedMomentumOptimizer extends tf.Optimizer {
  static get className(): string {
    return "FusedMomentum";
  }
  private readonly accumulations = new Map<string, tf.Variable>();

  constructor(
    readonly learningRate: number,
    readonly momentum: number,
  ) {
    super();
  }

  applyGradients(variableGradients: tf.NamedTensorMap | { name: string; tensor: tf.Tensor }[]): void {
    const entries: [string, tf.Tensor | undefined][] = Array.isArray(variableGradients)
      ? variableGradients.map((g) => [g.name, g.tensor])
      : Object.entries(variableGradients);
    const fused = tf.getKernel(MOMENTUM_STEP, tf.getBackend()) !== undefined;
    // A gradient still being computed on the kernel threads (deferred: a filter gradient's product) is applied last, so
    // that this thread waits for it as late as it can. Each variable's update is its own: the order changes no value.
    const ready = (g: tf.Tensor | undefined) => g == null || !isDeferred(g.dataId);
    entries.sort(([, a], [, b]) => Number(!ready(a)) - Number(!ready(b)));
    for (const [name, gradient] of entries) {
      if (gradient == null) continue;
      const value = tf.engine().registeredVariables[name];
      if (!value) throw new Error(`FusedMomentumOptimizer: no variable named "${name}" is registered`);
      let accumulation = this.accumulations.get(name);
      if (!accumulation) {
        accumulation = tf.tidy(() => tf.zerosLike(value).variable(false));
        this.accumulations.set(name, accumulation);
      }
      const acc = accumulation;
      tf.tidy(() => {
        if (fused) {
          const inputs = { value, accumulation: acc, gradient };
          const attrs = { learningRate: this.learningRate, momentum: this.momentum };
          const [newValue, newAccumulation] = tf.engine().runKernel(MOMENTUM_STEP, inputs, attrs) as tf.Tensor[];
          acc.assign(newAccumulation);
          value.assign(newValue);
        } else {
          const newAccumulation = tf.add(tf.mul(tf.scalar(this.momentum), acc), gradient);
          acc.assign(newAccumulation);
          value.assign(tf.add(tf.mul(tf.scalar(-this.learningRate), newAccumulation), value));
        }
      });
    }
    this.incrementIterations();
  }

  override dispose(): void {
    tf.dispose([...this.accumulations.values()]);
    this.accumulations.clear();
  }

  getConfig(): tf.serialization.ConfigDict {
    return { learningRate: this.learningRate, momentum: this.momentum };
  }
}
