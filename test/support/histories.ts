import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot, temporalCli } from './temporal-cli.js';

export const historiesDir = path.join(repoRoot, 'test/histories');

/**
 * With NT_RECORD_HISTORIES=1, keeps the history of a finished power-on as
 * test/histories/<name>.json (the CLI's JSON, as `temporal workflow show` writes
 * it), for the replay test to run against every later version of the workflow.
 */
export function recordHistory(address: string, workflowId: string, name: string): void {
  if (!process.env.NT_RECORD_HISTORIES) return;
  const json = execFileSync(
    temporalCli(),
    ['workflow', 'show', '--workflow-id', workflowId, '--address', address, '--output', 'json'],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  writeFileSync(path.join(historiesDir, `${name}.json`), json);
}
