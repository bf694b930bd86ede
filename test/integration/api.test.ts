import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { PostgresInstanceStore } from '../../src/store/postgres-store.js';
import { powerOnWorkflowId } from '../../src/workflows/definitions.js';
import { tempPostgresDatabase } from '../support/postgres.js';
import { startStack, type StackOptions, type TestStack } from '../support/stack.js';

// Every endpoint and its error cases, run once on SQLite and once on PostgreSQL.

function apiContract(name: string, options: () => Promise<{ opts: StackOptions; cleanup(): Promise<void> }>): void {
  describe(`API on ${name}`, () => {
    let stack: TestStack;
    let cleanup: () => Promise<void> = async () => undefined;
    const created: string[] = [];

    before(async () => {
      const o = await options();
      cleanup = o.cleanup;
      stack = await startStack(o.opts);
    });
    after(async () => {
      if (stack) {
        for (const id of created) {
          const guest = await stack.host.getGuest(id);
          if (guest) {
            await guest.poweroff();
            await guest.deleteConfiguration();
          }
        }
        await stack.stop();
      }
      await cleanup();
    });

    const server = (over: Record<string, unknown> = {}) => ({
      server: { name: 'api-test', flavor: { vcpus: 1, ram: 64, disk: 1 }, imageRef: stack.imageId, ...over },
    });

    test('register: 201 SHUTOFF with the host defaulting to this one', async () => {
      const id = randomUUID();
      const res = await stack.api('POST', '/servers', server({ id }));
      assert.equal(res.status, 201);
      assert.equal(res.body.server.id, id);
      assert.equal(res.body.server.status, 'SHUTOFF');
      assert.equal(res.body.server['OS-EXT-STS:vm_state'], 'stopped');
      assert.equal(res.body.server['OS-EXT-STS:task_state'], null);
      assert.equal(res.body.server['OS-EXT-SRV-ATTR:host'], stack.config.host);
      const again = await stack.api('POST', '/servers', server({ id }));
      assert.equal(again.status, 409);
      assert.match(again.body.conflictingRequest.message, /already exists/);
    });

    test('register: bad bodies are 400 naming the field, and nothing is stored', async () => {
      const before = (await stack.store.listInstances()).length;
      const cases: [unknown, RegExp][] = [
        [{}, /server/],
        [server({ name: '' }), /server\.name/],
        [server({ name: ' padded' }), /server\.name/],
        [server({ flavor: { vcpus: 0, ram: 64, disk: 1 } }), /server\.flavor\.vcpus/],
        [server({ flavor: { vcpus: 1, ram: '64', disk: 1 } }), /server\.flavor\.ram/],
        [server({ imageRef: '../etc/passwd' }), /server\.imageRef/],
        [server({ id: 'not-a-uuid' }), /server\.id/],
        [server({ networks: [{ port: 'x' }] }), /server\.networks\.0\.port/],
        [server({ 'OS-EXT-SRV-ATTR:host': 'a b' }), /OS-EXT-SRV-ATTR:host/],
        [server({ extra: true }), /server/],
        [server({ networks: [{ port: randomUUID() }] }), /networks: no Neutron/],
      ];
      for (const [body, field] of cases) {
        const res = await stack.api('POST', '/servers', body);
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.match(res.body.badRequest.message, field);
        assert.equal(res.body.badRequest.code, 400);
      }
      assert.equal((await stack.store.listInstances()).length, before);
    });

    test('show: 200, and 404 itemNotFound for unknown or malformed ids', async () => {
      const id = randomUUID();
      await stack.api('POST', '/servers', server({ id }));
      const ok = await stack.api('GET', `/servers/${id}`);
      assert.equal(ok.status, 200);
      assert.equal(ok.body.server.flavor.ram, 64);
      for (const bad of [randomUUID(), 'nope', '..%2F..%2Fetc']) {
        const res = await stack.api('GET', `/servers/${bad}`);
        assert.equal(res.status, 404);
        assert.equal(res.body.itemNotFound.code, 404);
      }
    });

    test('os-start: 202 then ACTIVE; 409 when active; 404 unknown; 400 bad body', async () => {
      const id = randomUUID();
      created.push(id);
      await stack.api('POST', '/servers', server({ id }));
      assert.equal((await stack.api('POST', `/servers/${id}/action`, { 'os-start': 'now' })).status, 400);
      assert.equal((await stack.api('POST', `/servers/${id}/action`, { reboot: null })).status, 400);
      assert.equal((await stack.api('POST', `/servers/${randomUUID()}/action`, { 'os-start': null })).status, 404);
      const res = await stack.api('POST', `/servers/${id}/action`, { 'os-start': null });
      assert.equal(res.status, 202);
      await stack.env.client.workflow.getHandle(powerOnWorkflowId(id)).result();
      const shown = await stack.api('GET', `/servers/${id}`);
      assert.equal(shown.body.server.status, 'ACTIVE');
      assert.equal(shown.body.server['OS-EXT-STS:power_state'], 1);
      const again = await stack.api('POST', `/servers/${id}/action`, { 'os-start': null });
      assert.equal(again.status, 409);
      assert.equal(again.body.conflictingRequest.code, 409);

      // The action log in Nova's shape, with one event per step and the notifications.
      const list = await stack.api('GET', `/servers/${id}/os-instance-actions`);
      assert.equal(list.status, 200);
      const [action] = list.body.instanceActions;
      assert.equal(action.action, 'start');
      assert.equal(action.instance_uuid, id);
      assert.match(action.request_id, /^req-/);
      const detail = await stack.api('GET', `/servers/${id}/os-instance-actions/${action.request_id}`);
      const events = detail.body.instanceAction.events as { event: string; result: string; finish_time: string }[];
      for (const step of ['compute_beginPowerOn', 'compute_createDomain', 'compute_resumeDomain']) {
        const e = events.find((x) => x.event === step);
        assert.equal(e?.result, 'Success', step);
        assert.ok(e?.finish_time, step);
      }
      assert.ok(events.some((e) => e.event === 'notification:instance.power_on.start'));
      assert.ok(events.some((e) => e.event === 'notification:instance.power_on.end'));
      const missing = await stack.api('GET', `/servers/${id}/os-instance-actions/req-${randomUUID()}`);
      assert.equal(missing.status, 404);
      assert.equal((await stack.api('GET', `/servers/${randomUUID()}/os-instance-actions`)).status, 404);
    });

    test('every response carries x-openstack-request-id, errors included', async () => {
      for (const [method, url] of [
        ['GET', `/servers/${randomUUID()}`],
        ['GET', '/openapi.json'],
        ['GET', '/no-such-thing'],
      ]) {
        const res = await stack.api(method!, url!);
        assert.match(res.headers.get('x-openstack-request-id') ?? '', /^req-[0-9a-f-]{36}$/, url);
      }
      const unknownRoute = await stack.api('GET', '/no-such-thing');
      assert.equal(unknownRoute.status, 404);
      assert.equal(unknownRoute.body.itemNotFound.code, 404);
    });
  });
}

apiContract('SQLite', async () => ({ opts: {}, cleanup: async () => undefined }));

apiContract('PostgreSQL', async () => {
  const db = await tempPostgresDatabase();
  return {
    opts: { openStore: () => PostgresInstanceStore.open(db.url) },
    cleanup: () => db.drop(),
  };
});
