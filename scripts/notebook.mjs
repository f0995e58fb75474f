#!/usr/bin/env node
// npm run notebook [-- <jupyter-notebook options>]: the notebooks as a workbench. Does the set-up that is missing
// (Debian's Jupyter and Notebook server, Chromium, the project's tslab kernel; dist/ built when src/ is newer), then
// serves notebooks/ with the classic Jupyter Notebook server and prints the address to open. Options after `--`
// go to the server (e.g. --port 8899, --no-browser, --ip 0.0.0.0). Ctrl-C stops the server and its kernels.
//
// Access: the server asks for a token (random per start, or $JUPYTER_TOKEN when set); the printed address carries
// it. The server runs whatever a notebook asks, as you, so it is not left open to other users of the machine.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { JUPYTER_DATA_DIR, JUPYTER_NOTEBOOK, REPO, SetupError, setupJupyter } from "./setup-jupyter.mjs";

const NOTEBOOKS = path.join(REPO, "notebooks");
const STOP_GRACE_MS = 15_000;

function fail(message) {
  console.error(`notebook: ${message}`);
  process.exit(1);
}

function newestSourceMtime(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSourceMtime(p));
    else if (entry.name.endsWith(".ts")) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** The notebooks import ../dist: build it (npm run build) when it is missing or older than a file in src/. */
function buildIfStale() {
  const built = path.join(REPO, "dist", "index.js");
  const exists = fs.existsSync(built);
  if (exists && fs.statSync(built).mtimeMs >= newestSourceMtime(path.join(REPO, "src"))) return;
  console.error(`notebook: building dist/ (${exists ? "src/ changed since the last build" : "not built yet"})`);
  const tsc = path.join(REPO, "node_modules", ".bin", "tsc");
  const result = spawnSync(tsc, ["-p", path.join(REPO, "tsconfig.json")], { stdio: "inherit" });
  if (result.status !== 0) fail(`"npm run build" failed (exit ${result.status ?? result.signal}); fix the errors above, then run this again`);
}

/** The server's own options: those after `--` (npm strips it; a direct `node scripts/notebook.mjs -- …` may not). */
function serverOptions(argv) {
  const args = argv[0] === "--" ? argv.slice(1) : argv;
  const extra = [`--notebook-dir=${NOTEBOOKS}`, "--MappingKernelManager.default_kernel_name=tslab"];
  if (typeof process.getuid === "function" && process.getuid() === 0) extra.push("--allow-root");
  const browserChosen = args.some((a) => /^--(no-)?browser\b|^--NotebookApp\.(open_browser|browser)\b/.test(a));
  const noDisplay = process.platform === "linux" && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY;
  if (noDisplay && !browserChosen) {
    extra.push("--no-browser");
    console.error("notebook: no display here, so no browser is opened (open the address below yourself)");
  }
  return [...extra, ...args];
}

try {
  setupJupyter({ server: "required" });
} catch (err) {
  if (err instanceof SetupError) fail(err.message);
  throw err;
}
buildIfStale();

const token = process.env.JUPYTER_TOKEN || randomBytes(24).toString("hex");
const existingPath = process.env.JUPYTER_PATH;
const env = {
  ...process.env,
  JUPYTER_PATH: existingPath ? `${JUPYTER_DATA_DIR}${path.delimiter}${existingPath}` : JUPYTER_DATA_DIR,
  JUPYTER_TOKEN: token,
};
// Its own process group: Ctrl-C reaches this script only, which stops the server (and so its kernels) with SIGTERM
// instead of the server's interactive "Shutdown this notebook server?" prompt.
const server = spawn(JUPYTER_NOTEBOOK, serverOptions(process.argv.slice(2)), { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
server.on("error", (err) => fail(`could not start ${JUPYTER_NOTEBOOK}: ${err.message}`));

// A watchdog for whatever way this script dies (kill -9 included, which no handler sees): a small process that holds
// the read end of a pipe only this script writes to. When this script is gone, the pipe ends and the watchdog stops
// the server's process group (SIGTERM, then SIGKILL after the grace time). It exits by itself once the group is gone.
const WATCHDOG = `
const group = -Number(process.argv[1]);
const signal = (s) => { try { process.kill(group, s); return true; } catch { return false; } };
process.stdin.on("data", () => {});
process.stdin.on("end", () => {
  signal("SIGTERM");
  setTimeout(() => { signal("SIGKILL"); process.exit(0); }, ${STOP_GRACE_MS}).unref();
});
setInterval(() => { if (!signal(0)) process.exit(0); }, 1000);
`;
if (server.pid !== undefined) {
  spawn(process.execPath, ["-e", WATCHDOG, String(server.pid)], { stdio: ["pipe", "ignore", "inherit"], detached: true }).unref();
}

let announced = false;
function announce(line) {
  if (announced) return;
  const url = /(https?:\/\/[^\s/?]+)(\/[^\s?]*)?\?token=/.exec(line);
  if (!url) return;
  announced = true;
  const base = `${url[1]}${(url[2] ?? "/").replace(/\/?$/, "/")}`;
  const preset = process.env.FWPRUNE_PRESET || "quick";
  const dataDir = process.env.FWPRUNE_DATA_DIR || "data";
  console.log(
    [
      "",
      `fwprune notebooks: ${base}tree?token=${token}`,
      `  start with:      ${base}notebooks/00-smoke.ipynb?token=${token}`,
      `  they run with FWPRUNE_PRESET=${preset}, FWPRUNE_DATA_DIR=${dataDir}; after changing src/, run "npm run build" and restart the kernel`,
      "  Ctrl-C stops the server",
      "",
    ].join("\n"),
  );
}
for (const stream of [server.stdout, server.stderr]) {
  let pending = "";
  stream.on("data", (chunk) => {
    process.stderr.write(chunk);
    pending += chunk.toString();
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    lines.forEach(announce);
  });
}

let stopping = false;
function stop(signal) {
  if (server.exitCode !== null || server.signalCode !== null) return;
  if (stopping) {
    console.error(`notebook: ${signal} again: killing the server`);
    process.kill(-server.pid, "SIGKILL");
    return;
  }
  stopping = true;
  console.error(`notebook: ${signal}: stopping the server and its kernels`);
  server.kill("SIGTERM");
  setTimeout(() => {
    if (server.exitCode === null && server.signalCode === null) {
      console.error(`notebook: the server did not stop within ${STOP_GRACE_MS / 1000} s: killing it`);
      process.kill(-server.pid, "SIGKILL");
    }
  }, STOP_GRACE_MS).unref();
}
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => stop(signal));

server.on("exit", (code, signal) => {
  if (stopping) {
    console.error("notebook: server stopped");
    process.exit(0);
  }
  fail(`the server exited on its own (${signal ?? `exit code ${code}`}); its messages are above`);
});
