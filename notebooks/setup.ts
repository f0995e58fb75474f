// The set-up every chapter shares, one line at the top of each notebook:
//   import { fw, setup } from "./setup"; const ctx = await setup();
// `fw` is the built library (../dist: after changing src/, run `npm run build` and restart the kernel).
import * as fw from "../dist";

export { fw };

/**
 * The config and cache folder this notebook runs with (FWPRUNE_PRESET, FWPRUNE_DATA_DIR; see PROTOCOL.md), printed.
 * A notebook about another experiment names its own variable and default preset.
 */
export const setup = (which: { variable?: string; fallback?: string } = {}) => fw.notebookSetup(which);
