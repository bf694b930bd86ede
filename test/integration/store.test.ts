import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../../src/config.js';
import { InstanceInvalidState, type InstanceStatus } from '../../src/domain/instance-state.js';
import {
  InstanceExists,
  InstanceNotFound,
  type InstanceFault,
  type InstanceStore,
  type NewInstance,
} from '../../src/store/instance-store.js';
import { openInstanceStore } from '../../src/store/open-store.js';
import { PostgresInstanceStore } from '../../src/store/postgres-store.js';
import { SqliteInstanceStore } from '../../src/store/sqlite-store.js';

// One contract, two stores: every test here runs against SQLite (a temp file)
// and PostgreSQL (scripts/postgres.sh, a fresh database per run), so the two
// InstanceStore implementations cannot drift apart.

const repoRoot = path.resolve(import.meta.dirname, '../../..');
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

function newInstance(overrides: Partial<NewInstance> = {}): NewInstance {
  return {
    uuid: randomUUID(),
    name: 'contract-server',
    host: 'compute-1',
    flavor: { vcpus: 2, ramMb: 512, diskGb: 1 },
    imageRef: 'cirros',
    ports: [randomUUID(), randomUUID()],
    ...overrides,
  };
}

const fault = (message: string): InstanceFault => ({
  code: 500,
  message,
  details: `details of ${message}`,
  created: new Date().toISOString(),
});

/** Asserts InstanceInvalidState for that instance in that state. */
async function rejectsInvalidState(p: Promise<unknown>, uuid: string, status: InstanceStatus): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof InstanceInvalidState, `expected InstanceInvalidState, got ${String(err)}`);
    assert.equal(err.instanceUuid, uuid);
    assert.deepEqual(err.status, status);
    return true;
  });
}

/**
 * The InstanceStore contract. `open` returns a new store on the same database
 * each time it is called (so two stores model two processes).
 */
function storeContract(name: string, open: () => Promise<InstanceStore>): void {
  describe(name, () => {
    let store: InstanceStore;
    const extra: InstanceStore[] = [];
    const openAnother = async () => {
      const s = await open();
      extra.push(s);
      return s;
    };

    before(async () => {
      store = await open();
    });
    after(async () => {
      for (const s of extra) await s.close();
      await store?.close();
    });

    test('deletes an instance with its actions, once', async () => {
      const i = newInstance({ ports: [] });
      await store.createInstance(i);
      await store.startAction({
        action: 'start',
        instanceUuid: i.uuid,
        requestId: 'req-del',
        startTime: '2026-01-01T00:00:00.000Z',
        message: null,
      });
      assert.equal(await store.deleteInstance(i.uuid), true);
      assert.equal(await store.getInstance(i.uuid), null);
      assert.deepEqual(await store.listActions(i.uuid), []);
      assert.equal(await store.deleteInstance(i.uuid), false);
    });

    test('creates, gets and lists instances', async () => {
      const a = newInstance({ name: 'a', ports: [] });
      const created = await store.createInstance(a);
      assert.deepEqual(created, {
        ...a,
        vmState: 'stopped',
        taskState: null,
        powerState: 4,
        fault: null,
        taskRequestId: null,
        createdAt: created.createdAt,
        updatedAt: created.createdAt,
      });
      assert.match(created.createdAt, ISO);
      assert.deepEqual(await store.getInstance(a.uuid), created);
      assert.equal(await store.getInstance(randomUUID()), null);

      await sleep(5);
      const b = await store.createInstance(newInstance({ name: 'b' }));
      const listed = (await store.listInstances()).filter((r) => r.uuid === a.uuid || r.uuid === b.uuid);
      assert.deepEqual(listed, [created, b], 'in creation order');
    });

    test('a duplicate create is InstanceExists and leaves the first untouched', async () => {
      const a = newInstance();
      const first = await store.createInstance(a);
      await assert.rejects(store.createInstance({ ...a, name: 'other' }), (err: unknown) => {
        assert.ok(err instanceof InstanceExists);
        assert.equal(err.instanceUuid, a.uuid);
        return true;
      });
      assert.deepEqual(await store.getInstance(a.uuid), first);
    });

    test('begin then finish: stopped -> powering-on -> active', async () => {
      const { uuid } = await store.createInstance(newInstance());
      const begun = await store.transition(uuid, 'begin', { requestId: 'req-1' });
      assert.equal(begun.vmState, 'stopped');
      assert.equal(begun.taskState, 'powering-on');
      assert.equal(begun.taskRequestId, 'req-1');
      assert.equal(begun.powerState, 4);
      assert.match(begun.updatedAt, ISO);
      assert.deepEqual(await store.getInstance(uuid), begun);

      const done = await store.transition(uuid, 'finish', { requestId: 'req-1', powerState: 1 });
      assert.equal(done.vmState, 'active');
      assert.equal(done.taskState, null);
      assert.equal(done.powerState, 1);
      assert.equal(done.fault, null);
      assert.ok(done.updatedAt >= begun.updatedAt);
      assert.deepEqual(await store.getInstance(uuid), done);
    });

    test('begin then revert records the fault; the next begin clears it', async () => {
      const { uuid } = await store.createInstance(newInstance());
      await store.transition(uuid, 'begin', { requestId: 'req-1' });
      const f = fault('LibvirtError: boom');
      const reverted = await store.transition(uuid, 'revert', { requestId: 'req-1', powerState: 4, fault: f });
      assert.equal(reverted.vmState, 'stopped');
      assert.equal(reverted.taskState, null);
      assert.equal(reverted.powerState, 4);
      assert.deepEqual(reverted.fault, f);
      assert.deepEqual(await store.getInstance(uuid), reverted);

      const again = await store.transition(uuid, 'begin', { requestId: 'req-2' });
      assert.equal(again.fault, null, 'a new task starts without the old fault');
      // A revert without a fault keeps whatever fault is stored (none here).
      const reverted2 = await store.transition(uuid, 'revert', { requestId: 'req-2' });
      assert.equal(reverted2.fault, null);
      assert.equal(reverted2.powerState, 4);
    });

    test('compare-and-swap refuses begin on an active instance and on one powering on', async () => {
      const { uuid } = await store.createInstance(newInstance());
      await store.transition(uuid, 'begin', { requestId: 'req-1' });
      await rejectsInvalidState(store.transition(uuid, 'begin', { requestId: 'req-2' }), uuid, {
        vmState: 'stopped',
        taskState: 'powering-on',
      });
      await store.transition(uuid, 'finish', { requestId: 'req-1', powerState: 1 });
      await rejectsInvalidState(store.transition(uuid, 'begin', { requestId: 'req-3' }), uuid, {
        vmState: 'active',
        taskState: null,
      });
      // Same request id, but its begin is over: not "already applied", refused.
      await rejectsInvalidState(store.transition(uuid, 'begin', { requestId: 'req-1' }), uuid, {
        vmState: 'active',
        taskState: null,
      });
      const stored = await store.getInstance(uuid);
      assert.equal(stored?.vmState, 'active');
      assert.equal(stored?.taskRequestId, 'req-1');
    });

    test('finish or revert with no task in progress is refused', async () => {
      const { uuid } = await store.createInstance(newInstance());
      await rejectsInvalidState(store.transition(uuid, 'finish', { requestId: 'req-1' }), uuid, {
        vmState: 'stopped',
        taskState: null,
      });
      await rejectsInvalidState(store.transition(uuid, 'revert', { requestId: 'req-1', fault: fault('x') }), uuid, {
        vmState: 'stopped',
        taskState: null,
      });
      const stored = await store.getInstance(uuid);
      assert.equal(stored?.fault, null, 'a refused transition writes nothing');
      assert.equal(stored?.taskRequestId, null);
    });

    test('each transition repeated with the same request id is a no-op returning the record', async () => {
      const { uuid } = await store.createInstance(newInstance());
      const begun = await store.transition(uuid, 'begin', { requestId: 'req-1' });
      await sleep(3);
      assert.deepEqual(await store.transition(uuid, 'begin', { requestId: 'req-1' }), begun);
      const done = await store.transition(uuid, 'finish', { requestId: 'req-1', powerState: 1 });
      await sleep(3);
      assert.deepEqual(await store.transition(uuid, 'finish', { requestId: 'req-1', powerState: 7 }), done);
      assert.deepEqual(await store.getInstance(uuid), done);

      const other = await store.createInstance(newInstance());
      await store.transition(other.uuid, 'begin', { requestId: 'req-9' });
      const f = fault('first');
      const reverted = await store.transition(other.uuid, 'revert', { requestId: 'req-9', fault: f });
      await sleep(3);
      assert.deepEqual(
        await store.transition(other.uuid, 'revert', { requestId: 'req-9', fault: fault('second') }),
        reverted,
        'the retry does not overwrite the fault',
      );
      assert.deepEqual((await store.getInstance(other.uuid))?.fault, f);
    });

    test('a different request id is refused once the state moved on', async () => {
      const { uuid } = await store.createInstance(newInstance());
      await store.transition(uuid, 'begin', { requestId: 'req-1' });
      await store.transition(uuid, 'finish', { requestId: 'req-1', powerState: 1 });
      await rejectsInvalidState(store.transition(uuid, 'finish', { requestId: 'req-2' }), uuid, {
        vmState: 'active',
        taskState: null,
      });

      const other = await store.createInstance(newInstance());
      await store.transition(other.uuid, 'begin', { requestId: 'req-1' });
      await store.transition(other.uuid, 'revert', { requestId: 'req-1', fault: fault('f') });
      await rejectsInvalidState(store.transition(other.uuid, 'revert', { requestId: 'req-2' }), other.uuid, {
        vmState: 'stopped',
        taskState: null,
      });
    });

    test('the swap compares states, not request ids: finish under another id while powering on succeeds', async () => {
      // Like Nova's expected_task_state: whoever finishes a powering-on task wins.
      const { uuid } = await store.createInstance(newInstance());
      await store.transition(uuid, 'begin', { requestId: 'req-1' });
      const done = await store.transition(uuid, 'finish', { requestId: 'req-2', powerState: 1 });
      assert.equal(done.vmState, 'active');
      assert.equal(done.taskRequestId, 'req-2');
    });

    test('a transition of an unknown instance is InstanceNotFound', async () => {
      const uuid = randomUUID();
      await assert.rejects(store.transition(uuid, 'begin', { requestId: 'req-1' }), (err: unknown) => {
        assert.ok(err instanceof InstanceNotFound);
        assert.equal(err.instanceUuid, uuid);
        return true;
      });
    });

    test('actions: recorded once per request id, newest first, with their events', async () => {
      const { uuid } = await store.createInstance(newInstance());
      await store.startAction({
        action: 'start',
        instanceUuid: uuid,
        requestId: 'req-1',
        startTime: '2025-01-01T10:00:00.000Z',
        message: null,
      });
      // Idempotent: the second call for the same request id changes nothing.
      await store.startAction({
        action: 'other',
        instanceUuid: uuid,
        requestId: 'req-1',
        startTime: '2025-01-01T11:00:00.000Z',
        message: 'ignored',
      });
      await store.startAction({
        action: 'external_event',
        instanceUuid: uuid,
        requestId: 'req-2',
        startTime: '2025-01-01T12:00:00.000Z',
        message: 'dropped',
      });

      // Out of order on purpose; ties on start_time are ordered by event name.
      const ev = (event: string, start: string, result: 'Success' | 'Error' | null = null) => ({
        event,
        startTime: start,
        finishTime: result ? '2025-01-01T10:00:09.000Z' : null,
        result,
        details: null,
      });
      await store.recordActionEvent(uuid, 'req-1', ev('compute_plug_vifs', '2025-01-01T10:00:02.000Z'));
      await store.recordActionEvent(uuid, 'req-1', ev('compute_start_domain', '2025-01-01T10:00:01.000Z', 'Success'));
      await store.recordActionEvent(uuid, 'req-1', ev('compute_define_domain', '2025-01-01T10:00:01.000Z', 'Success'));
      // Upsert: the plug_vifs event finishes with an error.
      const failed = { ...ev('compute_plug_vifs', '2025-01-01T10:00:02.500Z', 'Error'), details: 'vif timeout' };
      await store.recordActionEvent(uuid, 'req-1', failed);
      await store.recordActionEvent(uuid, 'req-2', ev('network-vif-plugged', '2025-01-01T12:00:00.000Z', 'Success'));

      const one = await store.getAction(uuid, 'req-1');
      assert.deepEqual(one, {
        action: 'start',
        instanceUuid: uuid,
        requestId: 'req-1',
        startTime: '2025-01-01T10:00:00.000Z',
        message: null,
        events: [
          ev('compute_define_domain', '2025-01-01T10:00:01.000Z', 'Success'),
          ev('compute_start_domain', '2025-01-01T10:00:01.000Z', 'Success'),
          failed,
        ],
      });
      const all = await store.listActions(uuid);
      assert.deepEqual(
        all.map((a) => [a.requestId, a.action, a.message, a.events.map((e) => e.event)]),
        [
          ['req-2', 'external_event', 'dropped', ['network-vif-plugged']],
          ['req-1', 'start', null, ['compute_define_domain', 'compute_start_domain', 'compute_plug_vifs']],
        ],
      );
      assert.deepEqual(all[1], one);
    });

    test('getAction is null for an unknown request or instance; listActions is empty', async () => {
      const { uuid } = await store.createInstance(newInstance());
      assert.equal(await store.getAction(uuid, 'req-none'), null);
      assert.equal(await store.getAction(randomUUID(), 'req-none'), null);
      assert.deepEqual(await store.listActions(uuid), []);
      assert.deepEqual(await store.listActions(randomUUID()), []);
    });

    test('an action of an unknown instance is refused (foreign key)', async () => {
      await assert.rejects(
        store.startAction({
          action: 'start',
          instanceUuid: randomUUID(),
          requestId: 'req-1',
          startTime: new Date().toISOString(),
          message: null,
        }),
      );
    });

    test('20 parallel begins with different request ids: exactly one wins', async () => {
      const { uuid } = await store.createInstance(newInstance());
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) => store.transition(uuid, 'begin', { requestId: `req-${i}` })),
      );
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r) => r.status === 'rejected');
      assert.equal(won.length, 1);
      assert.equal(lost.length, 19);
      for (const r of lost) assert.ok(r.reason instanceof InstanceInvalidState, String(r.reason));
      const winner = won[0]!.value;
      assert.equal(winner.taskState, 'powering-on');
      assert.deepEqual(await store.getInstance(uuid), winner);
    });

    test('two stores on one database (two processes): 20 parallel begins, exactly one wins', async () => {
      const second = await openAnother();
      const { uuid } = await store.createInstance(newInstance());
      assert.ok(await second.getInstance(uuid), 'the second store sees the first one’s write');
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 ? second : store).transition(uuid, 'begin', { requestId: `req-${i}` }),
        ),
      );
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      const lost = results.filter((r) => r.status === 'rejected');
      assert.equal(lost.length, 19);
      for (const r of lost) assert.ok(r.reason instanceof InstanceInvalidState, String(r.reason));
    });
  });
}

// ---- SQLite: a temp file ---------------------------------------------------

describe('SQLite backend', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nt-store-'));
  const file = path.join(dir, 'store.sqlite');
  after(() => rmSync(dir, { recursive: true, force: true }));

  storeContract('SqliteInstanceStore', async () => new SqliteInstanceStore(file));

  test('openInstanceStore opens SQLite when no database URL is set', async () => {
    const config = loadConfig({ NT_API_TOKENS: 'test-token-0001', NT_DATABASE_PATH: file });
    assert.equal(config.database.url, null);
    const store = await openInstanceStore(config);
    try {
      assert.ok(store instanceof SqliteInstanceStore);
    } finally {
      await store.close();
    }
  });
});

// ---- PostgreSQL: scripts/postgres.sh, one fresh database per run -----------

const pgScript = path.join(repoRoot, 'scripts/postgres.sh');

function pgScriptRun(command: 'start' | 'stop' | 'url'): string {
  try {
    return execFileSync('bash', [pgScript, command], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; status?: number };
    throw new Error(`scripts/postgres.sh ${command} failed (exit ${e.status}): ${e.stderr ?? ''}`);
  }
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

describe('PostgreSQL backend', () => {
  const run = randomBytes(4).toString('hex');
  const database = `nt_test_${run}`;
  const raceDatabase = `nt_test_${run}_race`;
  let startedHere = false;
  let baseUrl = '';
  let url = '';
  let admin: pg.Client | undefined;

  before(async () => {
    const out = pgScriptRun('start');
    startedHere = /^NT_PG_STARTED=1$/m.test(out);
    baseUrl = pgScriptRun('url').trim();
    admin = new pg.Client({ connectionString: baseUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    await admin.query(`CREATE DATABASE ${raceDatabase}`);
    url = withDatabase(baseUrl, database);
  });

  after(async () => {
    try {
      if (admin) {
        await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
        await admin.query(`DROP DATABASE IF EXISTS ${raceDatabase} WITH (FORCE)`);
        await admin.end();
      }
    } finally {
      // Only a server this test started; one that was already running stays up.
      if (startedHere) pgScriptRun('stop');
    }
  });

  storeContract('PostgresInstanceStore', () => PostgresInstanceStore.open(url));

  test('migrations: recorded in schema_migrations; five stores opening a fresh database at once apply them once', async () => {
    const raceUrl = withDatabase(baseUrl, raceDatabase);
    const stores = await Promise.all(Array.from({ length: 5 }, () => PostgresInstanceStore.open(raceUrl)));
    try {
      const versions = await Promise.all(stores.map((s) => s.schemaVersion()));
      assert.deepEqual(versions, [1, 1, 1, 1, 1]);
      const c = new pg.Client({ connectionString: raceUrl });
      await c.connect();
      try {
        const { rows } = await c.query('SELECT version FROM schema_migrations ORDER BY version');
        assert.deepEqual(
          rows.map((r) => r.version),
          [1],
        );
      } finally {
        await c.end();
      }
      const { uuid } = await stores[0]!.createInstance(newInstance());
      assert.ok(await stores[4]!.getInstance(uuid));
    } finally {
      for (const s of stores) await s.close();
    }
  });

  test('a connection failure names the server without the password', async () => {
    const u = new URL(url);
    const password = 'Wrong-Secret-' + run;
    u.password = password;
    await assert.rejects(PostgresInstanceStore.open(u.toString()), (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.ok(!err.message.includes(password), err.message);
      assert.ok(!err.message.includes(new URL(baseUrl).password), 'nor the real one');
      assert.match(err.message, /nova_temporal:\*\*\*@127\.0\.0\.1/);
      assert.match(err.message, /password authentication failed/);
      return true;
    });
  });

  test('openInstanceStore opens PostgreSQL when NT_DATABASE_URL is set', async () => {
    const config = loadConfig({ NT_API_TOKENS: 'test-token-0001', NT_DATABASE_URL: url });
    assert.equal(config.database.url, url);
    const store = await openInstanceStore(config);
    try {
      assert.ok(store instanceof PostgresInstanceStore);
    } finally {
      await store.close();
    }
  });
});
