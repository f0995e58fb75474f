// The set-up every chapter shares, one line at the top of each notebook:
//   import { fw, setup } from "./setup"; const ctx = await setup();
// `fw` is the built library (../dist: after changing src/, run `npm run build` and restart the kernel).
import * as fw from "../dist";

export { fw };

/**
 * The config and cache folder this notebook runs with (FWPRUNE_PRESET, FWPRUNE_DATA_DIR, FWPRUNE_WORKERS; see
 * PROTOCOL.md), the tfjs backend initialised; prints both.
 */
export async function setup(): Promise<fw.NotebookContext> {
  const ctx = fw.notebookConfig();
  const backend = await fw.notebookBackend();
  console.log(`tfjs backend: ${backend}\n${fw.describeContext(ctx)}`);
  return ctx;
}
