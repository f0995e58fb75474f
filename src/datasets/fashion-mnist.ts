import { z } from "zod";
import { describeIdxFolderProblem, idxFolderFiles, loadIdxFolder } from "../data";
import { limitFields, limitProblems, registerDataset } from "./dataset";
import { MNIST_CLASSES, MNIST_SHAPE } from "./mnist-embedded";

/** Where Debian's `dataset-fashion-mnist` package installs its (gzip-compressed) IDX files. */
export const FASHION_MNIST_DEBIAN_DIR = "/usr/share/datasets/fashion-mnist";

export const FashionMnistSchema = z.object({ name: z.literal("fashion-mnist"), dir: z.string().min(1).optional(), ...limitFields }).strict();
export type FashionMnistSpec = z.infer<typeof FashionMnistSchema>;

/** Zalando's Fashion-MNIST (60,000/10,000 28×28 grayscale images of ten garments), from Debian's package or `dir`. */
export const fashionMnist = registerDataset<FashionMnistSpec>({
  name: "fashion-mnist",
  summary: `Fashion-MNIST, 60,000/10,000 images of 10 garments: the four IDX files in dir (default ${FASHION_MNIST_DEBIAN_DIR}, Debian's dataset-fashion-mnist)`,
  schema: FashionMnistSchema,
  // No default for dir: the run key hashes the files' contents, not where they lie.
  defaults: {},
  testOnly: [],
  shape: () => MNIST_SHAPE,
  classes: () => MNIST_CLASSES,
  files: (spec) => idxFolderFiles(spec.dir ?? FASHION_MNIST_DEBIAN_DIR),
  problems: (spec) => {
    const problem = describeIdxFolderProblem(spec.dir ?? FASHION_MNIST_DEBIAN_DIR);
    return [...(problem ? [["dir", problem] as [string, string]] : []), ...limitProblems(spec, 60_000, 10_000)];
  },
  load: (spec) => {
    const problem = describeIdxFolderProblem(spec.dir ?? FASHION_MNIST_DEBIAN_DIR);
    if (problem) {
      const hint =
        spec.dir === undefined
          ? `install Debian's package with: sudo apt-get install dataset-fashion-mnist (it puts the files in ${FASHION_MNIST_DEBIAN_DIR}), or give { name: "fashion-mnist", dir: "<folder with the four IDX files>" }`
          : `put the four Fashion-MNIST IDX files there, or leave dir out to use ${FASHION_MNIST_DEBIAN_DIR} (sudo apt-get install dataset-fashion-mnist)`;
      throw new Error(`dataset "fashion-mnist": ${problem}; ${hint}`);
    }
    return loadIdxFolder(spec.dir ?? FASHION_MNIST_DEBIAN_DIR, "fashion-mnist", { shape: MNIST_SHAPE, classes: MNIST_CLASSES });
  },
});
