import * as fs from "fs";
import * as http from "http";
import * as net from "net";
import * as path from "path";
import { sizeOf } from "../inference/export";
import { WEB_DIR, buildWebBundles } from "./bundle";
import type { DemoBytes, DemoInfo } from "./types";
import { DEMO_FILES, ensureDemoModel } from "./model";

const WEB_FILES = ["index.html", "demo.mjs", "worker.mjs", "fwprune-runtime.mjs", "tfjs-wasm.mjs"];
const TFJS_WASM_DIR = path.dirname(require.resolve("@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm"));
/** Without cross-origin isolation (no threads), tfjs's wasm backend loads its SIMD binary. */
const TFJS_WASM_FILES = ["tfjs-backend-wasm.wasm", "tfjs-backend-wasm-simd.wasm", "tfjs-backend-wasm-threaded-simd.wasm"];

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".mjs": "text/javascript",
  ".wasm": "application/wasm",
  ".json": "application/json",
};

export interface DemoServer {
  url: string;
  info: DemoInfo & { bytes: DemoBytes };
  close(): Promise<void>;
}

function demoBytes(modelDir: string): DemoBytes {
  const gz = (file: string) => sizeOf(path.basename(file), fs.readFileSync(file)).gzippedBytes;
  const files: Record<string, number> = {
    "tfjs-wasm.mjs": gz(path.join(WEB_DIR, "tfjs-wasm.mjs")),
    "tfjs-backend-wasm-simd.wasm": gz(path.join(TFJS_WASM_DIR, "tfjs-backend-wasm-simd.wasm")),
    "fwprune-runtime.mjs": gz(path.join(WEB_DIR, "fwprune-runtime.mjs")),
    "model.json": gz(path.join(modelDir, "model.json")),
    "weights.bin": gz(path.join(modelDir, "weights.bin")),
    "model.fwsparse": gz(path.join(modelDir, "model.fwsparse")),
  };
  return {
    runtime: { dense: files["tfjs-wasm.mjs"] + files["tfjs-backend-wasm-simd.wasm"], sparse: files["fwprune-runtime.mjs"] },
    model: { dense: files["model.json"] + files["weights.bin"], sparse: files["model.fwsparse"] },
    files,
  };
}

/** Serve the demo page, its bundles (built if missing) and the demo model (exported if missing) on 127.0.0.1 only. */
export async function startDemoServer(opts: { port: number; dataDir: string; onStatus?: (message: string) => void }): Promise<DemoServer> {
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new Error(`--port: expected an integer in 0..65535, got ${opts.port}`);
  if (!WEB_FILES.every((f) => fs.existsSync(path.join(WEB_DIR, f)))) {
    opts.onStatus?.("building the browser bundles");
    await buildWebBundles();
  }
  const { dir, info } = await ensureDemoModel(opts.dataDir, opts.onStatus);
  const served = { ...info, bytes: demoBytes(dir) };
  const routes = new Map<string, string>([
    ["/", path.join(WEB_DIR, "index.html")],
    ...WEB_FILES.map((f): [string, string] => [`/${f}`, path.join(WEB_DIR, f)]),
    ...TFJS_WASM_FILES.map((f): [string, string] => [`/tfjs-wasm/${f}`, path.join(TFJS_WASM_DIR, f)]),
    ...DEMO_FILES.map((f): [string, string] => [`/model/${f}`, path.join(dir, f)]),
  ]);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const headers = { "Cache-Control": "no-store" };
    if (url.pathname === "/info.json") {
      res.writeHead(200, { ...headers, "Content-Type": TYPES[".json"] }).end(JSON.stringify(served));
      return;
    }
    const file = routes.get(url.pathname);
    if (!file || req.method !== "GET") {
      res.writeHead(404, { ...headers, "Content-Type": "text/plain" }).end(`not found: ${url.pathname}`);
      return;
    }
    fs.readFile(file, (err, data) => {
      if (err) res.writeHead(500, { ...headers, "Content-Type": "text/plain" }).end(err.message);
      else res.writeHead(200, { ...headers, "Content-Type": TYPES[path.extname(file)] ?? "application/octet-stream" }).end(data);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(err.code === "EADDRINUSE" ? new Error(`--port: ${opts.port} is in use; pick another (0: any free port)`) : err),
    );
    server.listen(opts.port, "127.0.0.1", resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    info: served,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
