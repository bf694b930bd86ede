import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
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

const MIGRATIONS: string[] = [
  `CREATE TABLE instances (
     uuid TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     host TEXT NOT NULL,
     flavor TEXT NOT NULL,
     image_ref TEXT NOT NULL,
     ports TEXT NOT NULL,
     vm_state TEXT NOT NULL,
     task_state TEXT,
     power_state INTEGER NOT NULL,
     fault TEXT,
     task_request_id TEXT,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL
   );
   CREATE TABLE instance_actions (
     instance_uuid TEXT NOT NULL REFERENCES instances(uuid),
     request_id TEXT NOT NULL,
     action TEXT NOT NULL,
     start_time TEXT NOT NULL,
     message TEXT,
     PRIMARY KEY (instance_uuid, request_id)
   );
   CREATE TABLE instance_action_events (
     instance_uuid TEXT NOT NULL,
     request_id TEXT NOT NULL,
     event TEXT NOT NULL,
     start_time TEXT NOT NULL,
     finish_time TEXT,
     result TEXT,
     details TEXT,
     PRIMARY KEY (instance_uuid, request_id, event)
   );`,
];

interface InstanceRow {
  uuid: string;
  name: string;
  host: string;
  flavor: string;
  image_ref: string;
  ports: string;
  vm_state: string;
  task_state: string | null;
  power_state: number;
  fault: string | null;
  task_request_id: string | null;
  created_at: string;
  updated_at: string;
}

function fromRow(r: InstanceRow): InstanceRecord {
  return {
    uuid: r.uuid,
    name: r.name,
    host: r.host,
    flavor: JSON.parse(r.flavor),
    imageRef: r.image_ref,
    ports: JSON.parse(r.ports),
    vmState: r.vm_state as VmState,
    taskState: r.task_state as TaskState,
    powerState: r.power_state,
    fault: r.fault ? JSON.parse(r.fault) : null,
    taskRequestId: r.task_request_id,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export class SqliteInstanceStore implements InstanceStore {
  private readonly db: Database.Database;

  constructor(file: string) {
    if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('foreign_keys = ON');
    this.migrate();
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  async createInstance(i: NewInstance): Promise<InstanceRecord> {
    const now = new Date().toISOString();
    try {
      this.db
        .prepare(
          `INSERT INTO instances (uuid, name, host, flavor, image_ref, ports, vm_state, task_state,
             power_state, fault, task_request_id, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, 'stopped', NULL, 4, NULL, NULL, ?, ?)`,
        )
        .run(i.uuid, i.name, i.host, JSON.stringify(i.flavor), i.imageRef, JSON.stringify(i.ports), now, now);
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw new InstanceExists(i.uuid);
      throw err;
    }
    return (await this.getInstance(i.uuid))!;
  }

  async getInstance(uuid: string): Promise<InstanceRecord | null> {
    const row = this.db.prepare('SELECT * FROM instances WHERE uuid = ?').get(uuid) as InstanceRow | undefined;
    return row ? fromRow(row) : null;
  }

  async listInstances(): Promise<InstanceRecord[]> {
    const rows = this.db.prepare('SELECT * FROM instances ORDER BY created_at').all() as InstanceRow[];
    return rows.map(fromRow);
  }

  async transition(uuid: string, t: PowerOnTransition, opts: TransitionOptions): Promise<InstanceRecord> {
    return this.db.transaction(() => {
      const row = this.db.prepare('SELECT * FROM instances WHERE uuid = ?').get(uuid) as InstanceRow | undefined;
      if (!row) throw new InstanceNotFound(uuid);
      const current = fromRow(row);
      if (alreadyApplied(current, t, opts.requestId)) return current;
      const next = applyTransition(uuid, statusOf(current), t);
      this.db
        .prepare(
          `UPDATE instances SET vm_state = ?, task_state = ?, power_state = ?, fault = ?,
             task_request_id = ?, updated_at = ?
           WHERE uuid = ? AND vm_state = ? AND task_state IS ?`,
        )
        .run(
          next.vmState,
          next.taskState,
          opts.powerState ?? current.powerState,
          t === 'begin' ? null : opts.fault ? JSON.stringify(opts.fault) : row.fault,
          opts.requestId,
          new Date().toISOString(),
          uuid,
          current.vmState,
          current.taskState,
        );
      return fromRow(this.db.prepare('SELECT * FROM instances WHERE uuid = ?').get(uuid) as InstanceRow);
    })();
  }

  async startAction(a: Omit<InstanceAction, 'events'>): Promise<void> {
    this.db
      .prepare(
        `INSERT OR IGNORE INTO instance_actions (instance_uuid, request_id, action, start_time, message)
         VALUES (?, ?, ?, ?, ?)`,
      )
      .run(a.instanceUuid, a.requestId, a.action, a.startTime, a.message);
  }

  async recordActionEvent(instanceUuid: string, requestId: string, e: InstanceActionEvent): Promise<void> {
    this.db
      .prepare(
        `INSERT OR REPLACE INTO instance_action_events
           (instance_uuid, request_id, event, start_time, finish_time, result, details)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(instanceUuid, requestId, e.event, e.startTime, e.finishTime, e.result, e.details);
  }

  async listActions(instanceUuid: string): Promise<InstanceAction[]> {
    const rows = this.db
      .prepare('SELECT * FROM instance_actions WHERE instance_uuid = ? ORDER BY start_time DESC')
      .all(instanceUuid) as ActionRow[];
    return rows.map((r) => this.withEvents(r));
  }

  async getAction(instanceUuid: string, requestId: string): Promise<InstanceAction | null> {
    const row = this.db
      .prepare('SELECT * FROM instance_actions WHERE instance_uuid = ? AND request_id = ?')
      .get(instanceUuid, requestId) as ActionRow | undefined;
    return row ? this.withEvents(row) : null;
  }

  private withEvents(r: ActionRow): InstanceAction {
    const events = this.db
      .prepare(
        'SELECT * FROM instance_action_events WHERE instance_uuid = ? AND request_id = ? ORDER BY start_time, event',
      )
      .all(r.instance_uuid, r.request_id) as EventRow[];
    return {
      action: r.action,
      instanceUuid: r.instance_uuid,
      requestId: r.request_id,
      startTime: r.start_time,
      message: r.message,
      events: events.map((e) => ({
        event: e.event,
        startTime: e.start_time,
        finishTime: e.finish_time,
        result: e.result as InstanceActionEvent['result'],
        details: e.details,
      })),
    };
  }

  async deleteInstance(uuid: string): Promise<boolean> {
    return this.db.transaction(() => {
      this.db.prepare('DELETE FROM instance_action_events WHERE instance_uuid = ?').run(uuid);
      this.db.prepare('DELETE FROM instance_actions WHERE instance_uuid = ?').run(uuid);
      return this.db.prepare('DELETE FROM instances WHERE uuid = ?').run(uuid).changes > 0;
    })();
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

interface ActionRow {
  instance_uuid: string;
  request_id: string;
  action: string;
  start_time: string;
  message: string | null;
}

interface EventRow {
  event: string;
  start_time: string;
  finish_time: string | null;
  result: string | null;
  details: string | null;
}
