import { z } from "zod";
import { describeIdxFolderProblem, idxFolderFiles, idxImageShape, loadIdxFolder } from "../data";
import { limitFields, registerDataset } from "./dataset";

export const IdxSchema = z
  .object({
    name: z.literal("idx"),
    dir: z.string().min(1),
    /** Labels are 0..classes-1 (default 10, the MNIST family's). */
    classes: z.number().int().min(1).max(100_000).optional(),
    ...limitFields,
  })
  .strict();
export type IdxSpec = z.infer<typeof IdxSchema>;

const DEFAULT_CLASSES = 10;

/** Any folder holding the four IDX files of MNIST's layout (one-channel images of any H×W; plain or .gz). */
export const idx = registerDataset<IdxSpec>({
  name: "idx",
  summary:
    "a folder holding train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each may end in .gz); classes default 10",
  schema: IdxSchema,
  // No default filled in for classes: configs written before it existed keep their run keys.
  defaults: {},
  testOnly: [],
  shape: (spec) => idxImageShape(idxFolderFiles(spec.dir).train[0]),
  classes: (spec) => spec.classes ?? DEFAULT_CLASSES,
  files: (spec) => idxFolderFiles(spec.dir),
  problems: (spec) => {
    const problem = describeIdxFolderProblem(spec.dir);
    return problem ? [["dir", problem]] : [];
  },
  load: (spec) => {
    if (typeof spec.dir !== "string" || spec.dir === "") {
      throw new Error(`dataset spec "idx": field dir must name a folder holding the four IDX files, got ${JSON.stringify(spec.dir)}`);
    }
    return loadIdxFolder(spec.dir, `idx:${spec.dir}`, { classes: spec.classes ?? DEFAULT_CLASSES });
  },
});
