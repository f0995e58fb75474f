import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { freePort } from "./free-port";

// `npm run notebook` stops its Jupyter server when its wrapper dies, whatever the signal: kill -9 included, which no
// handler sees (a watchdog holding a pipe from the wrapper stops the server's process group when the pipe ends).
const REPO = path.join(__dirname, "..");
const JUPYTER_NOTEBOOK = "/usr/bin/jupyter-notebook";
const skip = !fs.existsSync(JUPYTER_NOTEBOOK) && `${JUPYTER_NOTEBOOK} not installed ("npm run setup" installs it as root on Debian)`;

/** PIDs of processes whose command line holds every one of `needles`. */
function processesWith(...needles: string[]): number[] {
  return fs
    .readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((pid) => {
      try {
        const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
        return needles.every((n) => cmd.includes(n));
      } catch {
        return false;
      }
    })
    .map(Number);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test("kill -9 of npm run notebook's wrapper stops its Jupyter server", { skip, timeout: 180_000 }, async () => {
  const port = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-watchdog-"));
  const wrapper = spawn(process.execPath, [path.join(REPO, "scripts", "notebook.mjs"), "--", "--port", String(port), "--no-browser"], {
    cwd: REPO,
    env: { ...process.env, FWPRUNE_DATA_DIR: dataDir },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  wrapper.stderr.on("data", (d: Buffer) => (output += d.toString()));
  const started = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 120_000);
    wrapper.stdout.on("data", (d: Buffer) => {
      output += d.toString();
      if (/fwprune notebooks: http/.test(output)) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    wrapper.once("exit", () => resolve(false));
  });
  const servers = processesWith("jupyter-notebook", `--port ${port}`);
  try {
    assert.ok(started, `the server started and its address was printed:\n${output}`);
    assert.equal(servers.length, 1, `one server on port ${port}`);
    wrapper.kill("SIGKILL");
    const deadline = Date.now() + 30_000;
    while (processesWith("jupyter-notebook", `--port ${port}`).length > 0 && Date.now() < deadline) await sleep(250);
    assert.deepEqual(processesWith("jupyter-notebook", `--port ${port}`), [], "the server is gone within 30 s of kill -9 of its wrapper");
  } finally {
    for (const pid of processesWith("jupyter-notebook", `--port ${port}`)) process.kill(pid, "SIGKILL");
    wrapper.kill("SIGKILL");
  }
});
