import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { startStack, type TestStack } from '../support/stack.js';

// POST /v2.1/os-server-external-events as Neutron's nova notifier calls it.

let stack: TestStack;
before(async () => {
  stack = await startStack();
});
after(async () => {
  await stack?.stop();
});

async function instance(host?: string): Promise<string> {
  const id = randomUUID();
  await stack.store.createInstance({
    uuid: id,
    name: 'ev',
    host: host ?? stack.config.host,
    flavor: { vcpus: 1, ramMb: 64, diskGb: 1 },
    imageRef: stack.imageId,
    ports: [],
  });
  return id;
}

test('a mixed batch is answered 207 with a code per event', async () => {
  const known = await instance();
  const hostless = await instance('');
  const unknown = randomUUID();
  const port = randomUUID();
  const res = await stack.api('POST', '/os-server-external-events', {
    events: [
      { server_uuid: known, name: 'network-vif-plugged', status: 'completed', tag: port },
      { server_uuid: unknown, name: 'network-vif-plugged', tag: port },
      { server_uuid: hostless, name: 'network-changed', tag: port },
      { server_uuid: known, name: 'network-vif-unplugged' },
    ],
  });
  assert.equal(res.status, 207);
  assert.deepEqual(
    res.body.events.map((e: { code: number; status: string }) => [e.code, e.status]),
    [
      [200, 'completed'],
      [404, 'failed'],
      [422, 'failed'],
      [400, 'failed'],
    ],
  );
  assert.equal(res.body.events[1].status, 'failed');
  assert.equal(res.body.events[0].tag, port);

  // The event for an instance with no power-on running is recorded, not lost.
  const actions = await stack.api('GET', `/servers/${known}/os-instance-actions`);
  const action = actions.body.instanceActions.find((a: { action: string }) => a.action === 'external_event');
  assert.ok(action, JSON.stringify(actions.body));
  const detail = await stack.api('GET', `/servers/${known}/os-instance-actions/${action.request_id}`);
  assert.deepEqual(
    detail.body.instanceAction.events.map((e: { event: string }) => e.event),
    [`network-vif-plugged:${port}`],
  );
});

test('a batch whose events all land is answered 200, status defaulting to completed', async () => {
  const known = await instance();
  const res = await stack.api('POST', '/os-server-external-events', {
    events: [{ server_uuid: known, name: 'network-vif-plugged', tag: randomUUID() }],
  });
  assert.equal(res.status, 200);
  assert.equal(res.body.events[0].status, 'completed');
  assert.equal(res.body.events[0].code, 200);
});

test('a malformed body is a 400 for the whole request, naming the field', async () => {
  const known = await instance();
  const cases: [unknown, RegExp][] = [
    [{ events: [] }, /events/],
    [{ events: [{ server_uuid: known, name: 'network-vif-exploded', tag: 'x' }] }, /events\.0\.name/],
    [{ events: [{ server_uuid: 'not-a-uuid', name: 'network-changed' }] }, /events\.0\.server_uuid/],
    [{ events: [{ server_uuid: known, name: 'network-changed', extra: 1 }] }, /events\.0/],
    [{ events: [{ server_uuid: known, name: 'network-changed', tag: 'x'.repeat(256) }] }, /events\.0\.tag/],
    [{ events: [{ server_uuid: known, name: 'network-changed', status: 'done' }] }, /events\.0\.status/],
  ];
  for (const [body, field] of cases) {
    const res = await stack.api('POST', '/os-server-external-events', body);
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.match(res.body.badRequest.message, field);
  }
  const actions = await stack.api('GET', `/servers/${known}/os-instance-actions`);
  assert.equal(actions.body.instanceActions.length, 0, 'nothing was recorded for a rejected batch');
});

test('without a valid token the API answers 401 with a request id', async () => {
  const res = await fetch(`${stack.apiUrl}/os-server-external-events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-auth-token': 'wrong-token' },
    body: JSON.stringify({ events: [] }),
  });
  assert.equal(res.status, 401);
  assert.match(res.headers.get('x-openstack-request-id') ?? '', /^req-/);
});

test('the OpenAPI document is served and describes every endpoint', async () => {
  const res = await stack.api('GET', '/openapi.json');
  assert.equal(res.status, 200);
  assert.equal(res.body.openapi, '3.1.0');
  for (const p of ['/servers', '/servers/{server_id}/action', '/os-server-external-events']) {
    assert.ok(res.body.paths[p], p);
  }
  const events = res.body.paths['/os-server-external-events'].post.requestBody.content['application/json'].schema;
  assert.deepEqual(events.properties.events.items.properties.name.enum.sort(), [
    'network-changed',
    'network-vif-deleted',
    'network-vif-plugged',
    'network-vif-unplugged',
  ]);
});
