import * as fs from "fs";
import * as path from "path";
import { build, Plugin } from "esbuild";
import { REPO_ROOT } from "../paths";

/**
 * The browser bundles, built with esbuild (a well-kept, dependency-free bundler with a typed JavaScript API: it
 * bundles TypeScript directly, in well under a second, which `npm run build` can afford on every build):
 *   fwprune-runtime.mjs  the runtime (src/runtime), an ES module for pages, workers and Node's `import`
 *   tfjs-wasm.mjs        the tfjs the demo compares with: tfjs-core, tfjs-layers and the wasm backend, minified
 *   demo.mjs, worker.mjs the demo page's script and its worker (they import the two above as they are served)
 *   index.html           the page
 */
export const WEB_DIR = path.join(REPO_ROOT, "dist", "web");
const PAGE_DIR = path.join(REPO_ROOT, "src", "demo", "page");

/** The page's imports of the runtime and of tfjs stay imports of the served bundles. */
const servedBundles: Plugin = {
  name: "served-bundles",
  setup(b) {
    b.onResolve({ filter: /^(fwprune\/runtime|\.\/tfjs)$/ }, (args) => ({
      path: args.path === "fwprune/runtime" ? "./fwprune-runtime.mjs" : "./tfjs-wasm.mjs",
      external: true,
    }));
  },
};

export async function buildWebBundles(outDir = WEB_DIR): Promise<void> {
  fs.mkdirSync(outDir, { recursive: true });
  const common = { bundle: true, format: "esm", platform: "browser", target: "es2020", minify: true, logLevel: "warning", legalComments: "none" } as const;
  await Promise.all([
    build({ ...common, entryPoints: [path.join(REPO_ROOT, "src", "runtime", "index.ts")], outfile: path.join(outDir, "fwprune-runtime.mjs") }),
    build({
      ...common,
      entryPoints: [path.join(PAGE_DIR, "tfjs.ts")],
      outfile: path.join(outDir, "tfjs-wasm.mjs"),
      // The wasm backend's Emscripten glue names Node modules on paths a browser never takes.
      external: ["fs", "path", "worker_threads", "perf_hooks", "os", "crypto"],
    }),
    build({ ...common, entryPoints: [path.join(PAGE_DIR, "demo.ts")], outfile: path.join(outDir, "demo.mjs"), plugins: [servedBundles] }),
    build({ ...common, entryPoints: [path.join(PAGE_DIR, "worker.ts")], outfile: path.join(outDir, "worker.mjs"), plugins: [servedBundles] }),
  ]);
  fs.copyFileSync(path.join(PAGE_DIR, "index.html"), path.join(outDir, "index.html"));
}

if (require.main === module) {
  buildWebBundles().catch((err: unknown) => {
    console.error(`fwprune bundle: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
