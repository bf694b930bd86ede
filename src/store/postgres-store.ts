import pg from 'pg';
import { applyTransition, type PowerOnTransition, type TaskState, type VmState } from '../domain/instance-state.js';
import {
  InstanceExists,
  alreadyApplied,
  InstanceNotFound,
  statusOf,
  type InstanceAction,
  type InstanceActionEvent,
  type InstanceRecord,
  type InstanceStore,
  type NewInstance,
  type TransitionOptions,
} from './instance-store.js';

// The PostgreSQL instance store: the same semantics as SqliteInstanceStore
// (docs/decisions/0006-postgres-store.md). Columns keep SQLite's
// representation on purpose: timestamps are the callers' ISO-8601 strings and
// sort as text in the "C" collation (byte order, like SQLite's BINARY),
// JSON columns are `json` (kept verbatim, so key order survives as in SQLite).

/** Applied in order, each once; the version is the 1-based index. Append only. */
const MIGRATIONS: string[] = [
  `CREATE TABLE instances (
     uuid TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     host TEXT NOT NULL,
     flavor JSON NOT NULL,
     image_ref TEXT NOT NULL,
     ports JSON NOT NULL,
     vm_state TEXT NOT NULL,
     task_state TEXT,
     power_state INTEGER NOT NULL,
     fault JSON,
     task_request_id TEXT,
     created_at TEXT COLLATE "C" NOT NULL,
     updated_at TEXT COLLATE "C" NOT NULL
   );
   CREATE TABLE instance_actions (
     instance_uuid TEXT NOT NULL REFERENCES instances(uuid),
     request_id TEXT NOT NULL,
     action TEXT NOT NULL,
     start_time TEXT COLLATE "C" NOT NULL,
     message TEXT,
     PRIMARY KEY (instance_uuid, request_id)
   );
   CREATE TABLE instance_action_events (
     instance_uuid TEXT NOT NULL,
     request_id TEXT NOT NULL,
     event TEXT COLLATE "C" NOT NULL,
     start_time TEXT COLLATE "C" NOT NULL,
     finish_time TEXT,
     result TEXT,
     details TEXT,
     PRIMARY KEY (instance_uuid, request_id, event)
   );`,
];

/** pg_advisory_xact_lock key serialising migrations (per database): "nt-schema". */
const MIGRATION_LOCK_KEY = 0x6e742d736368656dn;

const PG_UNIQUE_VIOLATION = '23505';

interface InstanceRow {
  uuid: string;
  name: string;
  host: string;
  flavor: InstanceRecord['flavor'];
  image_ref: string;
  ports: string[];
  vm_state: string;
  task_state: string | null;
  power_state: number;
  fault: InstanceRecord['fault'];
  task_request_id: string | null;
  created_at: string;
  updated_at: string;
}

interface ActionRow {
  instance_uuid: string;
  request_id: string;
  action: string;
  start_time: string;
  message: string | null;
}

interface EventRow {
  request_id: string;
  event: string;
  start_time: string;
  finish_time: string | null;
  result: string | null;
  details: string | null;
}

function fromRow(r: InstanceRow): InstanceRecord {
  return {
    uuid: r.uuid,
    name: r.name,
    host: r.host,
    flavor: r.flavor,
    imageRef: r.image_ref,
    ports: r.ports,
    vmState: r.vm_state as VmState,
    taskState: r.task_state as TaskState,
    powerState: r.power_state,
    fault: r.fault ?? null,
    taskRequestId: r.task_request_id,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function toEvent(e: EventRow): InstanceActionEvent {
  return {
    event: e.event,
    startTime: e.start_time,
    finishTime: e.finish_time,
    result: e.result as InstanceActionEvent['result'],
    details: e.details,
  };
}

/** The URL with its password replaced, for messages and logs. */
export function redactDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable database URL)';
  }
}

export interface PostgresStoreOptions {
  /** Pool size (default 10). */
  max?: number;
  /** Called for errors of idle pooled connections (e.g. the server restarted); default: ignored. */
  onIdleError?: (err: Error) => void;
}

export class PostgresInstanceStore implements InstanceStore {
  private constructor(private readonly pool: pg.Pool) {}

  /** Connects, applies pending migrations and returns the store. */
  static async open(url: string, opts: PostgresStoreOptions = {}): Promise<PostgresInstanceStore> {
    const pool = new pg.Pool({ connectionString: url, max: opts.max ?? 10, application_name: 'nova-temporal' });
    // An idle client's error is emitted on the pool; without a listener it would kill the process.
    pool.on('error', (err) => opts.onIdleError?.(err));
    const store = new PostgresInstanceStore(pool);
    try {
      await store.migrate();
    } catch (err) {
      await pool.end().catch(() => undefined);
      const reason = err instanceof Error ? err.message : String(err);
      throw new Error(`PostgreSQL instance store at ${redactDatabaseUrl(url)}: ${reason}`, { cause: err });
    }
    return store;
  }

  /** Schema version: the number of applied migrations. */
  async schemaVersion(): Promise<number> {
    const { rows } = await this.pool.query<{ v: number }>(
      'SELECT COALESCE(MAX(version), 0)::int AS v FROM schema_migrations',
    );
    return rows[0]!.v;
  }

  // Two processes starting at once: the advisory lock makes the second wait for
  // the first's commit, then it finds nothing left to apply.
  private async migrate(): Promise<void> {
    await this.tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY.toString()]);
      await c.query(
        `CREATE TABLE IF NOT EXISTS schema_migrations (
           version INTEGER PRIMARY KEY,
           applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )`,
      );
      const { rows } = await c.query<{ v: number }>(
        'SELECT COALESCE(MAX(version), 0)::int AS v FROM schema_migrations',
      );
      const current = rows[0]!.v;
      if (current > MIGRATIONS.length) {
        throw new Error(`database schema version ${current} is newer than this program's (${MIGRATIONS.length})`);
      }
      for (let v = current; v < MIGRATIONS.length; v++) {
        await c.query(MIGRATIONS[v]!);
        await c.query('INSERT INTO schema_migrations (version) VALUES ($1)', [v + 1]);
      }
    });
  }

  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query('COMMIT');
      c.release();
      return out;
    } catch (err) {
      try {
        await c.query('ROLLBACK');
        c.release();
      } catch (rollbackErr) {
        // The connection is broken: drop it from the pool instead of reusing it.
        c.release(rollbackErr as Error);
      }
      throw err;
    }
  }

  async createInstance(i: NewInstance): Promise<InstanceRecord> {
    const now = new Date().toISOString();
    try {
      const { rows } = await this.pool.query<InstanceRow>(
        `INSERT INTO instances (uuid, name, host, flavor, image_ref, ports, vm_state, task_state,
           power_state, fault, task_request_id, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'stopped', NULL, 4, NULL, NULL, $7, $7)
         RETURNING *`,
        [i.uuid, i.name, i.host, JSON.stringify(i.flavor), i.imageRef, JSON.stringify(i.ports), now],
      );
      return fromRow(rows[0]!);
    } catch (err) {
      if (err instanceof pg.DatabaseError && err.code === PG_UNIQUE_VIOLATION && err.table === 'instances') {
        throw new InstanceExists(i.uuid);
      }
      throw err;
    }
  }

  async getInstance(uuid: string): Promise<InstanceRecord | null> {
    const { rows } = await this.pool.query<InstanceRow>('SELECT * FROM instances WHERE uuid = $1', [uuid]);
    return rows[0] ? fromRow(rows[0]) : null;
  }

  async listInstances(): Promise<InstanceRecord[]> {
    const { rows } = await this.pool.query<InstanceRow>('SELECT * FROM instances ORDER BY created_at');
    return rows.map(fromRow);
  }

  // Compare-and-swap: the row lock serialises concurrent transitions of one
  // instance; each sees the state its predecessor committed (READ COMMITTED
  // re-reads the row after the lock), so exactly one `begin` wins.
  async transition(uuid: string, t: PowerOnTransition, opts: TransitionOptions): Promise<InstanceRecord> {
    return this.tx(async (c) => {
      const found = await c.query<InstanceRow>('SELECT * FROM instances WHERE uuid = $1 FOR UPDATE', [uuid]);
      const row = found.rows[0];
      if (!row) throw new InstanceNotFound(uuid);
      const current = fromRow(row);
      if (alreadyApplied(current, t, opts.requestId)) return current;
      const next = applyTransition(uuid, statusOf(current), t);
      const fault = t === 'begin' ? null : (opts.fault ?? row.fault);
      const updated = await c.query<InstanceRow>(
        `UPDATE instances SET vm_state = $1, task_state = $2, power_state = $3, fault = $4,
           task_request_id = $5, updated_at = $6
         WHERE uuid = $7 AND vm_state = $8 AND task_state IS NOT DISTINCT FROM $9
         RETURNING *`,
        [
          next.vmState,
          next.taskState,
          opts.powerState ?? current.powerState,
          fault === null ? null : JSON.stringify(fault),
          opts.requestId,
          new Date().toISOString(),
          uuid,
          current.vmState,
          current.taskState,
        ],
      );
      // Cannot happen while we hold the row lock; a guard, not a code path.
      if (updated.rowCount !== 1) throw new Error(`instance ${uuid} changed during its transition`);
      return fromRow(updated.rows[0]!);
    });
  }

  async startAction(a: Omit<InstanceAction, 'events'>): Promise<void> {
    await this.pool.query(
      `INSERT INTO instance_actions (instance_uuid, request_id, action, start_time, message)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (instance_uuid, request_id) DO NOTHING`,
      [a.instanceUuid, a.requestId, a.action, a.startTime, a.message],
    );
  }

  async recordActionEvent(instanceUuid: string, requestId: string, e: InstanceActionEvent): Promise<void> {
    await this.pool.query(
      `INSERT INTO instance_action_events
         (instance_uuid, request_id, event, start_time, finish_time, result, details)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (instance_uuid, request_id, event) DO UPDATE SET
         start_time = EXCLUDED.start_time, finish_time = EXCLUDED.finish_time,
         result = EXCLUDED.result, details = EXCLUDED.details`,
      [instanceUuid, requestId, e.event, e.startTime, e.finishTime, e.result, e.details],
    );
  }

  async listActions(instanceUuid: string): Promise<InstanceAction[]> {
    const actions = await this.pool.query<ActionRow>(
      'SELECT * FROM instance_actions WHERE instance_uuid = $1 ORDER BY start_time DESC',
      [instanceUuid],
    );
    if (actions.rows.length === 0) return [];
    const events = await this.pool.query<EventRow>(
      `SELECT * FROM instance_action_events WHERE instance_uuid = $1 AND request_id = ANY($2::text[])
       ORDER BY start_time, event`,
      [instanceUuid, actions.rows.map((r) => r.request_id)],
    );
    return actions.rows.map((r) => withEvents(r, events.rows));
  }

  async getAction(instanceUuid: string, requestId: string): Promise<InstanceAction | null> {
    const action = await this.pool.query<ActionRow>(
      'SELECT * FROM instance_actions WHERE instance_uuid = $1 AND request_id = $2',
      [instanceUuid, requestId],
    );
    const row = action.rows[0];
    if (!row) return null;
    const events = await this.pool.query<EventRow>(
      `SELECT * FROM instance_action_events WHERE instance_uuid = $1 AND request_id = $2
       ORDER BY start_time, event`,
      [instanceUuid, requestId],
    );
    return withEvents(row, events.rows);
  }

  async deleteInstance(uuid: string): Promise<boolean> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('DELETE FROM instance_action_events WHERE instance_uuid = $1', [uuid]);
      await client.query('DELETE FROM instance_actions WHERE instance_uuid = $1', [uuid]);
      const res = await client.query('DELETE FROM instances WHERE uuid = $1', [uuid]);
      await client.query('COMMIT');
      return (res.rowCount ?? 0) > 0;
    } catch (err) {
      await client.query('ROLLBACK');
      throw err;
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

function withEvents(r: ActionRow, events: EventRow[]): InstanceAction {
  return {
    action: r.action,
    instanceUuid: r.instance_uuid,
    requestId: r.request_id,
    startTime: r.start_time,
    message: r.message,
    events: events.filter((e) => e.request_id === r.request_id).map(toEvent),
  };
}
