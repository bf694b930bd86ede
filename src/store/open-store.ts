import type { Config } from '../config.js';
import { logger } from '../log.js';
import type { InstanceStore } from './instance-store.js';
import { PostgresInstanceStore } from './postgres-store.js';
import { SqliteInstanceStore } from './sqlite-store.js';

// DESIGN.md section 4: SQLite file by default; PostgreSQL when a database URL is given.
export async function openInstanceStore(config: Config): Promise<InstanceStore> {
  const url = config.database.url;
  if (url) {
    return PostgresInstanceStore.open(url, {
      onIdleError: (err) => logger.warn({ err }, 'instance store: idle PostgreSQL connection failed'),
    });
  }
  return new SqliteInstanceStore(config.database.path);
}
