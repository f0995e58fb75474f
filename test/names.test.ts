import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { loadConfig, resolveConfig } from "../src/experiment/config";
import { SHIPPED_DIR } from "../src/experiment/shipped";
import { shellQuote, slurmScripts } from "../src/experiment/slurm";
import { fileInside } from "../src/paths";

// Names are data: a config's name, and every string written into a file name or a script, is refused or quoted.
const HOSTILE = [
  "a\nrm -rf /tmp/x",
  "it's",
  'say "hi"',
  "$(touch /tmp/fwprune-pwned)",
  "`id`",
  "..",
  "../../../x",
  "/etc/passwd",
  "a b",
  "x;y",
  "",
  "-rf",
  "\x1b[31m",
];
const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `fwprune-names-${name}-`));

test("hostile config names are refused, naming the field; plain ones pass", () => {
  for (const name of HOSTILE) {
    assert.throws(
      () => resolveConfig({ preset: "quick", name }),
      /name: expected 1 to 64 letters, digits, _ \. -, starting with a letter or digit/,
      JSON.stringify(name),
    );
  }
  for (const name of ["quick", "tiny-test_2", "v1.2"]) assert.equal(resolveConfig({ preset: "quick", name }).name, name);
  assert.throws(
    () => resolveConfig({ preset: "quick", methods: [{ name: "fw\nx", method: "fw" }] }),
    /methods\.0\.name: expected a name without control characters/,
  );
  assert.equal(
    resolveConfig({ preset: "quick", methods: [{ name: "fw (β = 0.9)", method: "fw" }] }).methods[0].name,
    "fw (β = 0.9)",
    "a label for tables may hold spaces",
  );
});

test("a config file's name defaults to its file name made plain", () => {
  const dir = tmp("file");
  const file = path.join(dir, "my config $(x).json");
  fs.writeFileSync(file, JSON.stringify({ preset: "quick" }));
  assert.equal(loadConfig(file).name, "my-config-x-");
});

test("fileInside never leaves its folder", () => {
  assert.equal(fileInside(SHIPPED_DIR, "paper", ".jsonl.gz"), path.join(SHIPPED_DIR, "paper.jsonl.gz"));
  for (const name of ["../../../x", "/tmp/x", "..", "a/b", "a\nb"]) assert.throws(() => fileInside(SHIPPED_DIR, name, ".jsonl.gz"), /expected 1 to 64 letters/);
});

test("shellQuote: bash gives back every hostile word exactly", () => {
  const words = [...HOSTILE.filter((w) => w !== ""), "tab\there", "back\\slash", "mixed '$x' \"y\" `z`\n\\n", "unicode é ✓ \u0085"];
  for (const word of words) {
    const r = spawnSync("bash", ["-c", `printf %s ${shellQuote(word)}`], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, word, `${JSON.stringify(word)} quoted as ${shellQuote(word)}`);
  }
});

const shellcheck = spawnSync("shellcheck", ["--version"]).status === 0;
test(
  "fwprune slurm scripts pass shellcheck with a hostile config path; hostile names and paths are refused",
  { skip: !shellcheck && "shellcheck not installed" },
  () => {
    const dir = tmp("slurm");
    const base = {
      name: "tiny",
      shards: 3,
      dataDir: path.join(dir, "data"),
      scriptDir: path.join(dir, "s"),
      cpusPerTask: 2,
      node: "/usr/bin/node",
      cli: "/opt/fwprune/dist/cli.js",
    };
    for (const preset of ['/tmp/a b/it\'s $(touch /tmp/fwprune-pwned) `id` "q"\nnext line.json', "quick"]) {
      for (const taskDirs of [undefined, path.join(dir, "tasks")]) {
        const s = slurmScripts({ ...base, preset, taskDirs, partition: "p1", time: "1:00:00", mem: "4G" });
        for (const [what, text] of [
          ["array", s.array],
          ["report", s.report],
        ]) {
          const file = path.join(dir, `${what}.sh`);
          fs.writeFileSync(file, text);
          const r = spawnSync("shellcheck", ["--shell=bash", file], { encoding: "utf8" });
          assert.equal(r.status, 0, `${what} script, preset ${JSON.stringify(preset)}:\n${r.stdout}\n${text}`);
          assert.ok(
            text.split("\n").every((line) => !line.startsWith("next line")),
            "the newline stays inside the quoted word",
          );
        }
      }
    }
    for (const name of HOSTILE) assert.throws(() => slurmScripts({ ...base, preset: "quick", name }), /config name .*: expected 1 to 64/);
    for (const bad of [path.join(dir, "a b"), path.join(dir, "x\n#SBATCH --x"), path.join(dir, "$(id)")]) {
      assert.throws(() => slurmScripts({ ...base, preset: "quick", scriptDir: bad }), /--script-dir: .*expected a plain path/);
      assert.throws(() => slurmScripts({ ...base, preset: "quick", dataDir: bad }), /--data-dir: .*expected a plain path/);
    }
    assert.throws(() => slurmScripts({ ...base, preset: "quick", partition: "p\n#SBATCH --x" }), /--partition: expected a plain Slurm value/);
  },
);

const CLI = path.join(__dirname, "..", "dist", "cli.js");
test("fwprune ship refuses a config named to escape data/shipped/, and writes nothing", { skip: !fs.existsSync(CLI) && "dist/cli.js not built" }, () => {
  const dir = tmp("ship");
  const before = fs.readdirSync(SHIPPED_DIR).sort();
  for (const name of ["../../../x", "/tmp/fwprune-ship-x", "..", "a\nb"]) {
    const file = path.join(dir, "c.json");
    fs.writeFileSync(file, JSON.stringify({ preset: "quick", name }));
    const r = spawnSync(process.execPath, [CLI, "ship", "--preset", file, "--data-dir", dir], {
      encoding: "utf8",
      env: { ...process.env, FWPRUNE_QUIET: "1" },
    });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /^fwprune: .*c\.json is invalid:\n {2}name: expected 1 to 64 letters/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  }
  assert.deepEqual(fs.readdirSync(SHIPPED_DIR).sort(), before);
  assert.ok(!fs.existsSync(path.join(__dirname, "..", "..", "x.jsonl.gz")) && !fs.existsSync("/tmp/fwprune-ship-x.jsonl.gz"));
});
