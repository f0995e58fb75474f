import * as vm from "vm";

/**
 * A custom schedule is identified by its source text (its run key hashes it) and travels to worker processes as that
 * text, rebuilt there in a fresh context that holds only JavaScript's standard globals (Math, Number, …). So a schedule
 * must be self-contained: a name it uses from outside its own body would be missing in the worker, and its value would
 * be missing from the run key (change it, and the cache would hand back the old result). Such names are found
 * statically, before anything runs: TypeScript's checker resolves every name of the source, on its own, with no other
 * file and no standard library; each name it cannot resolve must be one of the fresh context's globals.
 */

/** The names a function rebuilt by `rebuildFunction` can reach besides its own: the standard globals of a fresh context. */
const STANDARD_GLOBALS = new Set<string>([...(vm.runInNewContext("Object.getOwnPropertyNames(globalThis)") as string[]), "__name"]);

/**
 * What a rebuilt function's context holds besides the standard globals: esbuild's `__name(fn, name)` (tsx, which runs
 * the tests and scripts, compiles named inner functions to a call of it; it only sets the function's name).
 */
const rebuildContext = () => ({ __name: (fn: object, name: string) => Object.defineProperty(fn, "name", { value: name, configurable: true }) });

/** TypeScript's "Cannot find name 'x'" diagnostics (and their "Did you mean …" forms; 18004: a shorthand property `{ x }`). */
const UNRESOLVED_NAME_CODES = new Set([2304, 2552, 2662, 2663, 2580, 2581, 2582, 2583, 2584, 2591, 2592, 2593, 18004]);

/**
 * An expression whose value is the function `source` is the text of: `String(fn)` of an arrow function or function
 * expression is one already; a method (`fn(t) { … }`, from an object literal) is one once put back in an object.
 */
function functionExpression(source: string): string | undefined {
  for (const expression of [`(${source}\n)`, `Object.values({ ${source}\n })[0]`]) {
    try {
      new vm.Script(expression);
      return expression;
    } catch {
      // not this form
    }
  }
  return undefined;
}

const freeNameCache = new Map<string, string[]>();

/** The names `expression` uses without declaring them, in order of first use (TypeScript's checker; see the top). */
function unresolvedNames(expression: string): string[] {
  const cached = freeNameCache.get(expression);
  if (cached) return cached;
  // Loaded only when a custom schedule is checked: the compiler is a large module.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ts = require("typescript") as typeof import("typescript");
  const fileName = "schedule.ts";
  const text = `const schedule = ${expression};\n`;
  const options = { noLib: true, noResolve: true, types: [], noEmit: true, target: ts.ScriptTarget.ES2022 };
  const file = ts.createSourceFile(fileName, text, ts.ScriptTarget.ES2022, true);
  const host = ts.createCompilerHost(options);
  host.getSourceFile = (name) => (name === fileName ? file : undefined);
  host.fileExists = (name) => name === fileName;
  const program = ts.createProgram([fileName], options, host);
  const names: string[] = [];
  for (const d of program.getSemanticDiagnostics(file)) {
    if (!UNRESOLVED_NAME_CODES.has(d.code) || d.start === undefined || d.length === undefined) continue;
    const name = text.slice(d.start, d.start + d.length);
    if (!names.includes(name)) names.push(name);
  }
  freeNameCache.set(expression, names);
  return names;
}

/** The names `fn` uses from outside its own body that a rebuilt copy could not reach (empty: self-contained). */
export function outsideNames(fn: (...args: never[]) => unknown): string[] {
  const expression = functionExpression(String(fn));
  if (expression === undefined) return [];
  return unresolvedNames(expression).filter((name) => !STANDARD_GLOBALS.has(name));
}

/** Throws, naming `where` and the variable, unless `fn` can be rebuilt from its source alone (see the top of this file). */
export function assertSelfContained(fn: (...args: never[]) => unknown, where: string): void {
  const source = String(fn);
  if (functionExpression(source) === undefined) {
    throw new Error(
      `${where}: its source is not JavaScript that can be rebuilt (${JSON.stringify(source.slice(0, 80))}: a built-in or bound function?); write it as a function, e.g. (t) => 0.02`,
    );
  }
  const outside = outsideNames(fn);
  if (outside.length) {
    const list = outside.map((n) => `"${n}"`).join(", ");
    throw new Error(
      `${where}: the function uses ${list}, defined outside its own body; a schedule is identified by its source text and runs in ` +
        `worker processes rebuilt from it, so it must be self-contained (only its parameters, its own variables and standard ` +
        `globals such as Math): write the value of ${list} into the body`,
    );
  }
}

/** A function rebuilt from its source text in a fresh context (standard globals only). */
export function rebuildFunction(source: string): (...args: unknown[]) => unknown {
  const expression = functionExpression(source);
  if (expression === undefined) throw new Error(`rebuildFunction: not the source of a function: ${JSON.stringify(source.slice(0, 80))}`);
  const fn = vm.runInNewContext(expression, rebuildContext()) as unknown;
  if (typeof fn !== "function") throw new Error(`rebuildFunction: ${JSON.stringify(source.slice(0, 80))} is not a function`);
  return fn as (...args: unknown[]) => unknown;
}

/** How a function crosses to a worker process (messages are JSON): its source text under this key. */
const FUNCTION_KEY = "$functionSource";

/** `value` with every function replaced by its source text (tagged), to send to a worker process. */
export function encodeFunctions<T>(value: T): T {
  return mapDeep(value, (v) => (typeof v === "function" ? { [FUNCTION_KEY]: String(v) } : undefined)) as T;
}

/** The inverse of encodeFunctions, in the worker: each tagged source rebuilt as a function. */
export function decodeFunctions<T>(value: T): T {
  return mapDeep(value, (v) => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) return undefined;
    const keys = Object.keys(v);
    return keys.length === 1 && keys[0] === FUNCTION_KEY ? rebuildFunction((v as Record<string, string>)[FUNCTION_KEY]) : undefined;
  }) as T;
}

/** Whether `value` holds a function anywhere. */
export function hasFunction(value: unknown): boolean {
  if (typeof value === "function") return true;
  if (value === null || typeof value !== "object") return false;
  return Object.values(value).some(hasFunction);
}

/** A deep copy of plain data in which `replace` substitutes any value it returns something for. */
function mapDeep(value: unknown, replace: (v: unknown) => unknown): unknown {
  const replaced = replace(value);
  if (replaced !== undefined) return replaced;
  if (Array.isArray(value)) return value.map((v) => mapDeep(v, replace));
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapDeep(v, replace)]));
}
