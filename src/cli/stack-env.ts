import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** Reads `KEY=value` lines of state/stack.env (never evaluates them). */
export function readStackEnv(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!existsSync(file)) return out;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^(NT_[A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/** The stack env of this checkout, overridden by the process environment. */
export function stackSettings(): Record<string, string> {
  const stateDir = process.env.NT_STATE_DIR ?? path.resolve(import.meta.dirname, '../../../state');
  const fromFile = readStackEnv(path.join(stateDir, 'stack.env'));
  const fromEnv = Object.fromEntries(
    Object.entries(process.env).filter((e): e is [string, string] => e[0].startsWith('NT_') && !!e[1]),
  );
  return { ...fromFile, ...fromEnv };
}
