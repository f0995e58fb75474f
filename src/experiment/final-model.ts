import * as path from "path";
import * as tf from "@tensorflow/tfjs-core";
import { encodeContainer, readContainer } from "../container";
import { writeFileAtomic } from "../fsutil";
import { Model, ModelLike, modelFromWeights, paramShapes } from "../model";
import { Mask, Weights } from "../prune/mask";
import { layersInfo, layersOfInfo } from "../train";

/**
 * A run's final model, kept beside its record (runs/<key>.model): a container (src/container.ts) of kind "final
 * model" whose identity is the run key, holding the final weights, the method's mask (0/1, as bool) and, for
 * structured methods, the group mask; its layers (spec or graph) in the header. A surgered run's weights have the
 * smaller model's shapes; its mask keeps the original's.
 */
export const FINAL_MODEL_KIND = "final model";

export const finalModelFile = (dataDir: string, key: string) => path.join(dataDir, "runs", `${key}.model`);

export interface FinalModel {
  layers: ModelLike;
  weights: Weights;
  mask?: Mask;
  groups?: Float32Array;
}

const MASK = "mask/";
const GROUPS = "groups";

/** The container's bytes for run `key`'s final model (the model's tensors are read, not changed). */
export async function encodeFinalModel(key: string, model: Model, mask?: Mask, groups?: Float32Array): Promise<Buffer> {
  const extra: tf.NamedTensorMap = {};
  try {
    for (const [name, m] of Object.entries(mask ?? {}))
      extra[MASK + name] = tf.tensor1d(
        Uint8Array.from(m, (x) => (x !== 0 ? 1 : 0)),
        "bool",
      );
    if (groups) extra[GROUPS] = tf.tensor1d(groups, "float32");
    return await encodeContainer(FINAL_MODEL_KIND, { runKey: key }, { ...model.params, ...extra }, layersInfo(model));
  } finally {
    tf.dispose(Object.values(extra));
  }
}

export async function writeFinalModel(dataDir: string, key: string, model: Model, mask?: Mask, groups?: Float32Array): Promise<void> {
  writeFileAtomic(finalModelFile(dataDir, key), await encodeFinalModel(key, model, mask, groups));
}

/** Run `key`'s final model, verified (digest, kind, run key); throws naming the file when missing, corrupt or another run's. */
export function readFinalModel(dataDir: string, key: string): FinalModel {
  const { header, arrays } = readContainer(finalModelFile(dataDir, key), { kind: FINAL_MODEL_KIND, identity: { runKey: key } });
  const out: FinalModel = { layers: layersOfInfo(header.info), weights: {} };
  for (const [name, values] of Object.entries(arrays)) {
    if (name.startsWith(MASK)) (out.mask ??= {})[name.slice(MASK.length)] = Float32Array.from(values);
    else if (name === GROUPS) out.groups = values as Float32Array;
    else out.weights[name] = values as Float32Array;
  }
  for (const p of paramShapes(out.layers)) {
    const size = p.shape.reduce((a, b) => a * b, 1);
    if (out.weights[p.name]?.length !== size) throw new Error(`${finalModelFile(dataDir, key)}: holds no ${size} values for ${p.name} [${p.shape}]`);
  }
  return out;
}

/** The final model as a model to run (its tensors are the caller's to dispose). */
export function finalModelOf(final: FinalModel): Model {
  return modelFromWeights(final.layers, final.weights);
}
