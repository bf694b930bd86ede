import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { repoRoot } from './temporal-cli.js';

// A throwaway PostgreSQL database on the server scripts/postgres.sh runs
// (started here if needed, stopped again only if it was started here).

function pgScript(command: 'start' | 'stop' | 'url'): string {
  return execFileSync('bash', [path.join(repoRoot, 'scripts/postgres.sh'), command], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export async function tempPostgresDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const startedHere = /^NT_PG_STARTED=1$/m.test(pgScript('start'));
  const base = pgScript('url').trim();
  const name = `nt_test_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
      if (startedHere) pgScript('stop');
    },
  };
}
