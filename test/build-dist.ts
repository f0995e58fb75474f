import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { REPO_ROOT } from "../src/report/notebooks";

/** Notebooks import ../dist: build it when a source file is newer (npm test has built it already). */
export function ensureBuilt(): void {
  const built = path.join(REPO_ROOT, "dist", "index.js");
  const newest = (dir: string): number =>
    Math.max(
      0,
      ...fs.readdirSync(dir, { withFileTypes: true }).map((e) => {
        const p = path.join(dir, e.name);
        return e.isDirectory() ? newest(p) : e.name.endsWith(".ts") ? fs.statSync(p).mtimeMs : 0;
      }),
    );
  if (!fs.existsSync(built) || fs.statSync(built).mtimeMs < newest(path.join(REPO_ROOT, "src"))) {
    try {
      execFileSync(path.join(REPO_ROOT, "node_modules", ".bin", "tsc"), ["-p", path.join(REPO_ROOT, "tsconfig.json")], { stdio: "pipe" });
    } catch (err) {
      // tsc emits despite type errors (npm test's own build step reports those); only a missing build is fatal here.
      if (!fs.existsSync(built)) throw err;
    }
  }
}
