/**
 * How an error reaches a user: one line, its message; the stack trace only with FWPRUNE_DEBUG=1 (for a bug report).
 */
export function describeError(err: unknown, env: Record<string, string | undefined> = process.env): string {
  if (!(err instanceof Error)) return String(err);
  return env.FWPRUNE_DEBUG === "1" && err.stack ? err.stack : err.message;
}
