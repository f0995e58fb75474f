#!/usr/bin/env node
// Make this checkout ready to execute its notebooks: Debian's Jupyter (nbconvert, jupyter-client, IPython; with
// --server also the classic Notebook server), Debian's Chromium (static figure images, HTML report checks, the
// browser test), Debian's Fashion-MNIST files (the generalization notebook), and the tslab kernel registered inside the repository (.jupyter/, git-ignored) so no global
// Jupyter state is needed. Idempotent; fast when done. As root on Debian it installs what is missing with apt;
// otherwise it prints the exact command and stops.
//
// Usage: node scripts/setup-jupyter.mjs [--server | --server-if-possible] [--check]
//   --server              also the classic Notebook server (npm run notebook)
//   --server-if-possible  the same, but where it cannot be installed say so and go on (npm test: only the browser
//                         test needs it, and it skips with the reason)
//   --check               report what is missing, install nothing
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

// Debian's own binaries: the `python3` first on PATH may be a pyenv one without Jupyter.
export const PYTHON = "/usr/bin/python3";
export const JUPYTER = "/usr/bin/jupyter";
export const JUPYTER_NOTEBOOK = "/usr/bin/jupyter-notebook";
export const CHROMIUM = "/usr/bin/chromium";
const JUPYTER_PACKAGES = ["jupyter-nbconvert", "jupyter-client", "python3-ipython"];
const SERVER_PACKAGES = ["jupyter-notebook"];
// fonts-liberation: Chromium's recommended fonts, so figure text renders in the static images.
const CHROMIUM_PACKAGES = ["chromium", "fonts-liberation"];
// The generalization experiment's data (notebook 09, preset "fashion"): Fashion-MNIST's four IDX files.
const FASHION_PACKAGES = ["dataset-fashion-mnist"];
const FASHION_DIR = "/usr/share/datasets/fashion-mnist";

export const TSLAB_BINARY = path.join(REPO, "node_modules", ".bin", "tslab");
const KERNEL_PREFIX = path.join(REPO, ".jupyter");
/** Where Jupyter finds the project's kernel: JUPYTER_PATH must include it. */
export const JUPYTER_DATA_DIR = path.join(KERNEL_PREFIX, "share", "jupyter");
export const KERNEL_SPEC_FILE = path.join(JUPYTER_DATA_DIR, "kernels", "tslab", "kernel.json");

export class SetupError extends Error {}

function run(command, args, opts = {}) {
  const result = spawnSync(command, args, { encoding: "utf8", ...opts });
  if (result.error) return { ok: false, output: String(result.error.message) };
  return { ok: result.status === 0, output: `${result.stdout ?? ""}${result.stderr ?? ""}` };
}

function jupyterReady() {
  if (![PYTHON, JUPYTER, "/usr/bin/jupyter-nbconvert"].every((f) => fs.existsSync(f))) return false;
  return run(PYTHON, ["-c", "import nbconvert, nbclient, jupyter_client, IPython"]).ok;
}

function serverReady() {
  return fs.existsSync(JUPYTER_NOTEBOOK) && run(PYTHON, ["-c", "import notebook.notebookapp"]).ok;
}

function chromiumReady() {
  return fs.existsSync(CHROMIUM);
}

function expectedKernelArgv() {
  return [TSLAB_BINARY, "kernel", "--config-path", "{connection_file}"];
}

function kernelSpecCurrent() {
  try {
    const spec = JSON.parse(fs.readFileSync(KERNEL_SPEC_FILE, "utf8"));
    return JSON.stringify(spec.argv) === JSON.stringify(expectedKernelArgv()) && spec.language === "typescript";
  } catch {
    return false;
  }
}

/** The apt command that installs `packages`, as the user should type it. */
export function aptCommand(packages, isRoot) {
  const sudo = isRoot ? "" : "sudo ";
  return `${sudo}apt-get update && ${sudo}env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${packages.join(" ")}`;
}

function aptInstall(packages, what, { checkOnly, log }) {
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  const isDebian = fs.existsSync("/etc/debian_version");
  if (checkOnly || !isRoot || !isDebian) {
    const how = isDebian
      ? `run:\n  ${aptCommand(packages, isRoot)}`
      : `install the equivalent of Debian's ${packages.join(", ")} (this set-up automates Debian only)`;
    throw new SetupError(`${what} is missing. To install it, ${how}\nthen run this again.`);
  }
  log(`setup-jupyter: installing ${what} with apt: ${packages.join(" ")}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  for (const args of [["update"], ["install", "-y", "--no-install-recommends", ...packages]]) {
    const result = spawnSync("apt-get", args, { stdio: "inherit", env });
    if (result.status !== 0) throw new SetupError(`"apt-get ${args.join(" ")}" failed (exit ${result.status}); see its output above.`);
  }
}

/**
 * Install and register what is missing (see the file's header). Throws a SetupError saying what is missing and the
 * command that installs it. server: false | "required" | "optional".
 */
export function setupJupyter({ server = false, checkOnly = false, log = (line) => console.error(line) } = {}) {
  const opts = { checkOnly, log };
  let serverNote = server ? `, ${JUPYTER_NOTEBOOK}` : "";
  const fastPath =
    kernelSpecCurrent() &&
    chromiumReady() &&
    fs.existsSync(JUPYTER) &&
    fs.existsSync("/usr/bin/jupyter-nbconvert") &&
    fs.existsSync(FASHION_DIR) &&
    (!server || fs.existsSync(JUPYTER_NOTEBOOK));
  if (!fastPath) {
    if (!jupyterReady()) aptInstall(JUPYTER_PACKAGES, "Jupyter (nbconvert, jupyter-client, IPython for /usr/bin/python3)", opts);
    if (!jupyterReady()) throw new SetupError(`after installing, "${PYTHON} -c 'import nbconvert, nbclient, jupyter_client, IPython'" still fails`);
    if (server && !serverReady()) {
      try {
        aptInstall(SERVER_PACKAGES, "The classic Jupyter Notebook server (jupyter-notebook)", opts);
        if (!serverReady()) throw new SetupError(`after installing, ${JUPYTER_NOTEBOOK} or "${PYTHON} -c 'import notebook.notebookapp'" is still missing`);
      } catch (err) {
        if (server !== "optional" || !(err instanceof SetupError)) throw err;
        log(`setup-jupyter: warning: ${err.message}`);
        serverNote = ", no Notebook server";
      }
    }
    if (!chromiumReady()) aptInstall(CHROMIUM_PACKAGES, "Chromium (static figure images, HTML report checks)", opts);
    if (!fs.existsSync(FASHION_DIR)) aptInstall(FASHION_PACKAGES, `Fashion-MNIST (${FASHION_DIR}, for the generalization notebook)`, opts);
    if (!fs.existsSync(TSLAB_BINARY)) throw new SetupError(`${TSLAB_BINARY} not found: run "npm ci" in ${REPO} first`);
    if (!kernelSpecCurrent()) {
      if (checkOnly) throw new SetupError(`the tslab kernel is not registered in ${KERNEL_PREFIX}: run "npm run setup"`);
      const result = run(TSLAB_BINARY, ["install", `--python=${PYTHON}`, `--prefix=${KERNEL_PREFIX}`, `--binary=${TSLAB_BINARY}`]);
      if (!result.ok || !kernelSpecCurrent()) throw new SetupError(`"tslab install" failed:\n${result.output}`);
    }
  }
  log(`setup-jupyter: ready (tslab kernel in ${path.relative(REPO, path.dirname(KERNEL_SPEC_FILE))}, Chromium ${CHROMIUM}${serverNote})`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  try {
    const server = process.argv.includes("--server") ? "required" : process.argv.includes("--server-if-possible") ? "optional" : false;
    setupJupyter({ server, checkOnly: process.argv.includes("--check") });
  } catch (err) {
    if (!(err instanceof SetupError)) throw err;
    console.error(`setup-jupyter: ${err.message}`);
    process.exit(1);
  }
}
