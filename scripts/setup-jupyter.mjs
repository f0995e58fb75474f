#!/usr/bin/env node
// Make this checkout ready to execute its notebooks: Debian's Jupyter (nbconvert, jupyter-client, IPython),
// Debian's Chromium (static figure images, HTML report checks), and the tslab kernel registered inside the
// repository (.jupyter/, git-ignored) so no global Jupyter state is needed. Idempotent; fast when done.
//
// Usage: node scripts/setup-jupyter.mjs [--check]   (--check: report what is missing, install nothing)
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const checkOnly = process.argv.includes("--check");

// Debian's own binaries: the `python3` first on PATH may be a pyenv one without Jupyter.
const PYTHON = "/usr/bin/python3";
const JUPYTER = "/usr/bin/jupyter";
const CHROMIUM = "/usr/bin/chromium";
const JUPYTER_PACKAGES = ["jupyter-nbconvert", "jupyter-client", "python3-ipython"];
const CHROMIUM_PACKAGES = ["chromium"];

const tslabBinary = path.join(repo, "node_modules", ".bin", "tslab");
const kernelPrefix = path.join(repo, ".jupyter");
const kernelSpecFile = path.join(kernelPrefix, "share", "jupyter", "kernels", "tslab", "kernel.json");

function fail(message) {
  console.error(`setup-jupyter: ${message}`);
  process.exit(1);
}

function run(command, args, opts = {}) {
  const result = spawnSync(command, args, { encoding: "utf8", ...opts });
  if (result.error) return { ok: false, output: String(result.error.message) };
  return { ok: result.status === 0, output: `${result.stdout ?? ""}${result.stderr ?? ""}` };
}

function jupyterReady() {
  if (![PYTHON, JUPYTER, "/usr/bin/jupyter-nbconvert"].every((f) => fs.existsSync(f))) return false;
  return run(PYTHON, ["-c", "import nbconvert, nbclient, jupyter_client, IPython"]).ok;
}

function chromiumReady() {
  return fs.existsSync(CHROMIUM);
}

function expectedKernelSpec() {
  return ["tslab", "kernel", "--config-path", "{connection_file}"].map((a, i) => (i === 0 ? tslabBinary : a));
}

function kernelSpecCurrent() {
  try {
    const spec = JSON.parse(fs.readFileSync(kernelSpecFile, "utf8"));
    return JSON.stringify(spec.argv) === JSON.stringify(expectedKernelSpec()) && spec.language === "typescript";
  } catch {
    return false;
  }
}

function aptInstall(packages, what) {
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  const isDebian = fs.existsSync("/etc/debian_version");
  if (checkOnly || !isRoot || !isDebian) {
    const sudo = isRoot ? "" : "sudo ";
    const how = isDebian
      ? `run:\n  ${sudo}apt-get update && ${sudo}env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${packages.join(" ")}`
      : `install the equivalent of Debian's ${packages.join(", ")} (this setup automates Debian only)`;
    fail(`${what} is missing. To install it, ${how}\nthen run this setup again (npm run setup).`);
  }
  console.error(`setup-jupyter: installing ${what} with apt: ${packages.join(" ")}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  for (const args of [["update"], ["install", "-y", "--no-install-recommends", ...packages]]) {
    const result = spawnSync("apt-get", args, { stdio: "inherit", env });
    if (result.status !== 0) fail(`"apt-get ${args.join(" ")}" failed (exit ${result.status}); see its output above.`);
  }
}

const fastPath =
  kernelSpecCurrent() && chromiumReady() && fs.existsSync(JUPYTER) && fs.existsSync("/usr/bin/jupyter-nbconvert");
if (!fastPath) {
  if (!jupyterReady()) aptInstall(JUPYTER_PACKAGES, "Jupyter (nbconvert, jupyter-client, IPython for /usr/bin/python3)");
  if (!jupyterReady()) fail(`after installing, "${PYTHON} -c 'import nbconvert, nbclient, jupyter_client, IPython'" still fails`);
  // fonts-liberation: Chromium's recommended fonts, so figure text renders in the static images.
  if (!chromiumReady()) aptInstall([...CHROMIUM_PACKAGES, "fonts-liberation"], "Chromium (static figure images, HTML report checks)");
  if (!fs.existsSync(tslabBinary)) fail(`${tslabBinary} not found: run "npm ci" in ${repo} first`);
  if (!kernelSpecCurrent()) {
    if (checkOnly) fail(`the tslab kernel is not registered in ${kernelPrefix}: run "npm run setup"`);
    const result = run(tslabBinary, ["install", `--python=${PYTHON}`, `--prefix=${kernelPrefix}`, `--binary=${tslabBinary}`]);
    if (!result.ok || !kernelSpecCurrent()) fail(`"tslab install" failed:\n${result.output}`);
  }
}
console.error(`setup-jupyter: ready (tslab kernel in ${path.relative(repo, path.dirname(kernelSpecFile))}, Chromium ${CHROMIUM})`);
