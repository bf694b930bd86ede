import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

export const repoRoot = path.resolve(import.meta.dirname, '../../..');

/** The Temporal CLI the project uses: what scripts/temporal-cli.sh finds or installs. */
export function temporalCli(): string {
  if (process.env.NT_TEMPORAL_CLI) return process.env.NT_TEMPORAL_CLI;
  const script = path.join(repoRoot, 'scripts/temporal-cli.sh');
  if (existsSync(script)) return execFileSync('bash', [script], { encoding: 'utf8' }).trim();
  return path.join(repoRoot, '.venv/bin/temporal');
}
