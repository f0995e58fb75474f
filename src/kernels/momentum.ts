import * as tf from "@tensorflow/tfjs-core";
import { continueDeferred, finishDeferred, isDeferred } from "./threads";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { heapBuffer, pointer, simdLoops } from "./simd";

/** One SGD-momentum update of one variable: inputs value, accumulation, gradient → [new value, new accumulation]. */
export const MOMENTUM_STEP = "FwpruneMomentumStep";

interface MomentumStepAttrs {
  learningRate: number;
  momentum: number;
}

/**
 * tfjs's MomentumOptimizer (without Nesterov) in one pass, in the same float32 operations:
 * acc' = m·acc + g; w' = (−lr)·acc' + w; with a mask input, then w' ← w' ⊙ mask (as tf.mul would, after the
 * update: a pruned model's weights held at zero). A SIMD loop (simd.wat) where available, else plain TypeScript.
 */
function momentumStep(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo[] {
  const backend = args.backend as BackendWasm;
  const { value, accumulation, gradient, mask } = args.inputs as Record<"value" | "accumulation" | "gradient", tf.TensorInfo> & { mask?: tf.TensorInfo };
  const { learningRate, momentum } = (args.attrs ?? {}) as unknown as MomentumStepAttrs;
  for (const [name, t] of [["accumulation", accumulation], ["gradient", gradient], ...(mask ? [["mask", mask] as const] : [])] as const) {
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
  const data = [value, accumulation, gradient, newValue, newAccumulation, ...(mask ? [mask] : [])].map((t) => t.dataId);
  const waits = simd !== undefined && isDeferred(gradient.dataId) && [value, accumulation, mask].every((t) => !t || !isDeferred(t.dataId));
  if (!waits && data.some((d) => isDeferred(d))) finishDeferred();
  if (simd) {
    // Where the data lie now: a variable's dataId changes when it is assigned the new value.
    const [w, acc, g, wOut, accOut] = [value, accumulation, gradient, newValue, newAccumulation].map((t) => pointer(backend, t));
    const masked = mask && { at: pointer(backend, mask), whole: n & ~3 };
    const update = () => {
      simd.momentumStep(w, acc, g, wOut, accOut, n, negLr, m);
      if (!masked) return;
      simd.mulRows(wOut, 0, masked.at, 0, wOut, 1, masked.whole * 4);
      const heap = new Float32Array(heapBuffer(backend));
      for (let i = masked.whole; i < n; i++) heap[wOut / 4 + i] *= heap[masked.at / 4 + i];
    };
    if (!(waits && continueDeferred(update, data))) update();
    return [newValue, newAccumulation];
  }
  const w = backend.typedArrayFromHeap(value) as Float32Array;
  const acc = backend.typedArrayFromHeap(accumulation) as Float32Array;
  const g = backend.typedArrayFromHeap(gradient) as Float32Array;
  const wOut = backend.typedArrayFromHeap(newValue) as Float32Array;
  const accOut = backend.typedArrayFromHeap(newAccumulation) as Float32Array;
  const keep = mask && (backend.typedArrayFromHeap(mask) as Float32Array);
  for (let i = 0; i < n; i++) {
    const a = Math.fround(Math.fround(m * acc[i]) + g[i]);
    accOut[i] = a;
    wOut[i] = Math.fround(negLr * a) + w[i];
    if (keep) wOut[i] *= keep[i];
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

  /** instanceof as the prototype chain says: tf.Optimizer's accepts any object with an optimizer's methods. */
  static [Symbol.hasInstance](value: unknown): boolean {
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }
  private readonly accumulations = new Map<string, tf.Variable>();
  /** Masks by variable name (see holdAtZero). */
  private masks = new Map<string, tf.Tensor>();

  constructor(
    readonly learningRate: number,
    readonly momentum: number,
  ) {
    super();
  }

  /**
   * Each update of these variables (by name) multiplies the new value by its mask, as tf.mul would after the update:
   * a pruned model's weights stay exactly zero. The update itself may wait for a deferred gradient (see momentumStep),
   * where multiplying afterwards would wait for it at once. Masks stay owned by the caller; none: no masks.
   */
  holdAtZero(masks: Map<string, tf.Tensor> = new Map()): void {
    this.masks = masks;
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
      const mask = this.masks.get(name);
      tf.tidy(() => {
        if (fused) {
          const inputs = { value, accumulation: acc, gradient, ...(mask ? { mask } : {}) };
          const attrs = { learningRate: this.learningRate, momentum: this.momentum };
          const [newValue, newAccumulation] = tf.engine().runKernel(MOMENTUM_STEP, inputs, attrs) as tf.Tensor[];
          acc.assign(newAccumulation);
          value.assign(newValue);
        } else {
          const newAccumulation = tf.add(tf.mul(tf.scalar(this.momentum), acc), gradient);
          acc.assign(newAccumulation);
          const newValue = tf.add(tf.mul(tf.scalar(-this.learningRate), newAccumulation), value);
          value.assign(mask ? tf.mul(newValue, mask) : newValue);
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
