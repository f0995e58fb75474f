import { ChildProcess, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";

/**
 * A real one-node Slurm cluster on this machine, without systemd (Debian's slurm-wlm and munge): munged as the munge
 * user (or one already running), slurmctld and slurmd in the foreground as our children, a slurm.conf of their own in a
 * temporary folder (reached through SLURM_CONF), free ports, pid files and spool folders under that folder. stop()
 * cancels the cluster's jobs and ends the daemons it started by their PIDs.
 */

const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
const BINARIES = ["slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol", "sinfo", "munged", "munge", "unmunge"];

/** Why no cluster can be started here (after trying apt when root and the packages are missing), or undefined. */
export function slurmSkipReason(): string | undefined {
  if (process.platform !== "linux") return `Slurm test: needs Linux (this is ${process.platform})`;
  if (BINARIES.every(has)) return process.getuid?.() === 0 ? undefined : "Slurm test: needs root (to start munged as the munge user and slurmd)";
  if (process.getuid?.() !== 0)
    return `Slurm test: slurm-wlm and munge are not installed and this is not root (missing: ${BINARIES.filter((b) => !has(b)).join(", ")})`;
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = () => spawnSync("apt-get", ["install", "-y", "--no-install-recommends", "slurm-wlm", "munge"], { env, encoding: "utf8", timeout: 600_000 });
  let r = install();
  if (r.status !== 0) {
    spawnSync("apt-get", ["update"], { env, stdio: "ignore", timeout: 300_000 });
    r = install();
  }
  if (r.status !== 0 || !BINARIES.every(has)) {
    const last = `${r.stderr ?? ""}`.trim().split("\n").pop();
    return `Slurm test: could not install slurm-wlm and munge with apt-get (${last || `exit ${r.status}`})`;
  }
  return undefined;
}

export interface JobInfo {
  state: string;
  exitCode: string;
}

export interface SlurmCluster {
  /** The environment Slurm's commands need (SLURM_CONF). */
  env: NodeJS.ProcessEnv;
  dir: string;
  /** Runs a Slurm command against this cluster; throws with its stderr on failure. */
  command(cmd: string, args: string[]): string;
  /** Resolves when none of the jobs is pending or running any more. */
  waitForJobs(ids: string[], timeoutMs: number): Promise<void>;
  job(id: string): JobInfo;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function stopPid(pid: number, what: string): Promise<void> {
  if (!alive(pid)) return;
  process.kill(pid, "SIGTERM");
  for (let i = 0; i < 100 && alive(pid); i++) await sleep(100);
  if (alive(pid)) {
    console.error(`slurm-cluster: ${what} (pid ${pid}) ignored SIGTERM for 10 s; SIGKILL`);
    process.kill(pid, "SIGKILL");
  }
}

function mungeWorks(): boolean {
  const cred = spawnSync("munge", ["-n"], { encoding: "utf8" });
  return cred.status === 0 && spawnSync("unmunge", [], { input: cred.stdout, stdio: ["pipe", "ignore", "ignore"] }).status === 0;
}

export async function startCluster(): Promise<SlurmCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwprune-slurm-"));
  const host = os.hostname().split(".")[0];
  const conf = path.join(dir, "slurm.conf");
  const env = { ...process.env, SLURM_CONF: conf };
  const children: { child: ChildProcess; what: string }[] = [];
  let mungedPid: number | undefined;

  const command = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { env, encoding: "utf8", timeout: 30_000 });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: exit ${r.status}: ${r.stderr || r.error?.message}`);
    return r.stdout;
  };
  const queued = (ids: string[]) => {
    const r = spawnSync("squeue", ["-h", "-o", "%i %T", "-j", ids.join(",")], { env, encoding: "utf8", timeout: 30_000 });
    // A job the controller has forgotten makes squeue fail ("Invalid job id"): it is not queued.
    return r.status === 0
      ? r.stdout
          .trim()
          .split("\n")
          .filter((l) => l.trim() !== "")
      : [];
  };

  const stop = async () => {
    try {
      const ours = spawnSync("squeue", ["-h", "-o", "%i"], { env, encoding: "utf8", timeout: 10_000 });
      const ids =
        ours.status === 0
          ? ours.stdout
              .split("\n")
              .map((s) => s.trim())
              .filter(Boolean)
          : [];
      if (ids.length) {
        spawnSync("scancel", ids, { env, stdio: "ignore", timeout: 10_000 });
        for (let i = 0; i < 100 && queued(ids).length; i++) await sleep(100);
      }
    } finally {
      for (const { child, what } of [...children].reverse()) if (child.pid !== undefined) await stopPid(child.pid, what);
      if (mungedPid !== undefined) await stopPid(mungedPid, "munged");
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };

  try {
    if (!mungeWorks()) {
      // munged wants its socket folder to belong to the munge user; it daemonizes and writes its pid file there.
      fs.mkdirSync("/run/munge", { recursive: true });
      spawnSync("chown", ["munge:munge", "/run/munge"]);
      fs.chmodSync("/run/munge", 0o755);
      const r = spawnSync("runuser", ["-u", "munge", "--", "/usr/sbin/munged"], { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`munged did not start: ${r.stderr}`);
      mungedPid = Number(fs.readFileSync("/run/munge/munged.pid", "utf8").trim());
      for (let i = 0; i < 50 && !mungeWorks(); i++) await sleep(100);
      if (!mungeWorks()) throw new Error("munged started but munge -n | unmunge fails");
    }
    for (const sub of ["ctld", "d"]) fs.mkdirSync(path.join(dir, sub));
    const [ctldPort, dPort] = [await freePort(), await freePort()];
    fs.writeFileSync(
      conf,
      [
        "ClusterName=fwprune-test",
        `SlurmctldHost=${host}`,
        `SlurmctldPort=${ctldPort}`,
        `SlurmdPort=${dPort}`,
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        `StateSaveLocation=${dir}/ctld`,
        `SlurmdSpoolDir=${dir}/d`,
        `SlurmctldPidFile=${dir}/slurmctld.pid`,
        `SlurmdPidFile=${dir}/slurmd.pid`,
        `SlurmctldLogFile=${dir}/slurmctld.log`,
        `SlurmdLogFile=${dir}/slurmd.log`,
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_CPU",
        "MailProg=/bin/true",
        "ReturnToService=2",
        "SlurmdParameters=config_overrides",
        `NodeName=${host} NodeAddr=127.0.0.1 CPUs=${os.cpus().length} RealMemory=1000 State=UNKNOWN`,
        `PartitionName=test Nodes=${host} Default=YES MaxTime=INFINITE State=UP`,
        "",
      ].join("\n"),
    );
    for (const [daemon, what] of [
      ["slurmctld", "slurmctld"],
      ["slurmd", "slurmd"],
    ]) {
      const log = fs.openSync(path.join(dir, `${what}.stderr`), "w");
      const child = spawn(daemon, ["-D", "-f", conf], { env, stdio: ["ignore", log, log] });
      fs.closeSync(log);
      children.push({ child, what });
      if (daemon === "slurmctld") {
        for (let i = 0; i < 100 && spawnSync("scontrol", ["ping"], { env, stdio: "ignore" }).status !== 0; i++) await sleep(100);
      }
    }
    for (let i = 0; ; i++) {
      const state = spawnSync("sinfo", ["-h", "-o", "%T"], { env, encoding: "utf8" }).stdout?.trim();
      if (state === "idle") break;
      const dead = children.find(({ child }) => child.exitCode !== null);
      if (dead || i > 300) {
        const logs = ["slurmctld.log", "slurmd.log", "slurmctld.stderr", "slurmd.stderr"].map((f) => {
          const file = path.join(dir, f);
          return fs.existsSync(file) ? `--- ${f}\n${fs.readFileSync(file, "utf8").slice(-2000)}` : "";
        });
        throw new Error(`the Slurm node did not become idle (state ${JSON.stringify(state)}${dead ? `; ${dead.what} exited` : ""}):\n${logs.join("\n")}`);
      }
      await sleep(100);
    }
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    env,
    dir,
    command,
    async waitForJobs(ids, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (queued(ids).length) {
        if (Date.now() > deadline) throw new Error(`jobs ${ids.join(",")} still queued after ${timeoutMs / 1000} s: ${queued(ids).join("; ")}`);
        await sleep(250);
      }
    },
    job(id) {
      const text = command("scontrol", ["show", "job", "-o", id]);
      return { state: /JobState=(\S+)/.exec(text)?.[1] ?? "?", exitCode: /ExitCode=(\S+)/.exec(text)?.[1] ?? "?" };
    },
    stop,
  };
}
