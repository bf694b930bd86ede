import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, beforeEach, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { NeutronClient } from '../../src/neutron/client.js';
import {
  NeutronNotFound,
  NeutronRequestFailed,
  NeutronResponseInvalid,
  NeutronUnavailable,
} from '../../src/neutron/errors.js';

// The client against a scripted stand-in server: auth, retries, error types, size cap.

const PORT_ID = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d';
const PORT = {
  id: PORT_ID,
  name: 'p1',
  network_id: '0b5e1c5e-6b1f-4f57-9a57-8f3a1c2d3e40',
  mac_address: 'fa:16:3e:00:00:01',
  admin_state_up: true,
  status: 'DOWN',
  device_id: '',
  device_owner: '',
  fixed_ips: [],
  'binding:vif_type': 'ovs',
};

let app: FastifyInstance;
let url: string;
let seen: { method: string; url: string; token: string | undefined; ifMatch?: string; body?: unknown }[] = [];
let script: ((req: { method: string; url: string }) => { code: number; body: unknown } | 'hang' | 'huge') | null;
let logins = 0;
let validToken = 'tok-1';

before(async () => {
  app = Fastify({ logger: false });
  app.post('/v3/auth/tokens', async (req, reply) => {
    logins++;
    const body = req.body as { auth: { identity: { password: { user: { password: string } } } } };
    if (body.auth.identity.password.user.password !== 'secret') return reply.code(401).send({ error: { code: 401 } });
    return reply.code(201).header('x-subject-token', validToken).send({ token: {} });
  });
  app.all('/v2.0/*', async (req, reply) => {
    const token = req.headers['x-auth-token'] as string | undefined;
    seen.push({ method: req.method, url: req.url, token, ifMatch: req.headers['if-match'] as string, body: req.body });
    if (token !== validToken && token !== 'static-token') {
      return reply.code(401).send({ error: { code: 401, title: 'Unauthorized' } });
    }
    const answer = script?.(req) ?? { code: 200, body: { ports: [PORT] } };
    if (answer === 'hang') return new Promise(() => {});
    if (answer === 'huge') {
      return reply
        .header('content-type', 'application/json')
        .send(`{"ports": [], "pad": "${'x'.repeat(10 * 1024 * 1024)}"}`);
    }
    return reply.code(answer.code).send(answer.body);
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
});

after(async () => {
  await app.close();
});

beforeEach(() => {
  seen = [];
  script = null;
  logins = 0;
  validToken = 'tok-1';
});

const fast = { retryLimit: 2, backoffLimitMs: 10, timeoutMs: 2000 };
const client = () => new NeutronClient({ url, auth: { token: 'static-token' }, ...fast });

test('listPorts sends X-Auth-Token and the device_id filter, and validates the answer', async () => {
  const ports = await client().listPorts({ device_id: 'abc', id: ['x', 'y'] });
  assert.equal(ports[0]!.id, PORT_ID);
  assert.equal(seen[0]!.token, 'static-token');
  assert.equal(seen[0]!.url, '/v2.0/ports?device_id=abc&id=x&id=y');
});

test('a trailing /v2.0 in the endpoint is accepted', async () => {
  await new NeutronClient({ url: `${url}/v2.0/`, auth: { token: 'static-token' } }).listPorts({});
  assert.equal(seen[0]!.url, '/v2.0/ports');
});

test('503 and 502 are retried with backoff, then succeed', async () => {
  let n = 0;
  script = () => (++n <= 2 ? { code: n === 1 ? 503 : 502, body: 'busy' } : { code: 200, body: { port: PORT } });
  const port = await client().showPort(PORT_ID);
  assert.equal(port.id, PORT_ID);
  assert.equal(seen.length, 3);
});

test('a persistent 503 becomes NeutronUnavailable after the retry limit', async () => {
  script = () => ({ code: 503, body: { NeutronError: { type: 'ServiceUnavailable', message: 'later' } } });
  await assert.rejects(client().showPort(PORT_ID), NeutronUnavailable);
  assert.equal(seen.length, 3);
});

test('4xx is not retried: 400 -> NeutronRequestFailed, 404 -> NeutronNotFound with Neutron type', async () => {
  script = () => ({ code: 400, body: { NeutronError: { type: 'HTTPBadRequest', message: 'no', detail: '' } } });
  await assert.rejects(client().updatePort(PORT_ID, { device_id: 'x' }), (err: unknown) => {
    assert.ok(err instanceof NeutronRequestFailed);
    assert.equal(err.statusCode, 400);
    assert.equal(err.neutronType, 'HTTPBadRequest');
    return true;
  });
  assert.equal(seen.length, 1);

  seen = [];
  script = () => ({
    code: 404,
    body: { NeutronError: { type: 'PortNotFound', message: `Port ${PORT_ID} could not be found.`, detail: '' } },
  });
  await assert.rejects(client().showPort(PORT_ID), (err: unknown) => {
    assert.ok(err instanceof NeutronNotFound);
    assert.equal(err.neutronType, 'PortNotFound');
    assert.match(err.message, /could not be found/);
    return true;
  });
  assert.equal(seen.length, 1);
});

test('a POST is not repeated after a 503 (it may have been done)', async () => {
  script = () => ({ code: 503, body: '' });
  await assert.rejects(client().createPort({ network_id: PORT.network_id }), NeutronUnavailable);
  assert.equal(seen.length, 1);
});

test('updatePort sends {"port": fields} and If-Match revision_number', async () => {
  script = () => ({ code: 200, body: { port: PORT } });
  await client().updatePort(PORT_ID, { device_id: 'd', device_owner: 'compute:nova' }, { ifRevision: 7 });
  assert.equal(seen[0]!.method, 'PUT');
  assert.equal(seen[0]!.ifMatch, 'revision_number=7');
  assert.deepEqual(seen[0]!.body, { port: { device_id: 'd', device_owner: 'compute:nova' } });
});

test('a refused connection is NeutronUnavailable after retries', async () => {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as { port: number }).port;
  await new Promise((r) => probe.close(r));
  const c = new NeutronClient({ url: `http://127.0.0.1:${port}`, auth: { token: 't' }, ...fast });
  await assert.rejects(
    c.listPorts({}),
    (err: unknown) => err instanceof NeutronUnavailable && /ECONNREFUSED/.test(err.message),
  );
});

test('a request that hangs times out as NeutronUnavailable', async () => {
  script = () => 'hang';
  const c = new NeutronClient({
    url,
    auth: { token: 'static-token' },
    retryLimit: 1,
    backoffLimitMs: 10,
    timeoutMs: 200,
  });
  const t0 = Date.now();
  await assert.rejects(c.listPorts({}), NeutronUnavailable);
  assert.equal(seen.length, 2);
  assert.ok(Date.now() - t0 < 2000);
});

test('a 10 MB answer is refused without being buffered', async () => {
  script = () => 'huge';
  const c = new NeutronClient({ url, auth: { token: 'static-token' }, maxResponseBytes: 1024 * 1024 });
  await assert.rejects(c.listPorts({}), (err: unknown) => {
    assert.ok(err instanceof NeutronResponseInvalid);
    assert.equal(err.field, '(body)');
    assert.match(err.message, /larger than 1048576 bytes/);
    return true;
  });
});

test('a hostile value in an answer is NeutronResponseInvalid naming the field', async () => {
  script = () => ({ code: 200, body: { ports: [{ ...PORT, mac_address: 'fa:16:3e:00:00:01; reboot' }] } });
  await assert.rejects(client().listPorts({}), (err: unknown) => {
    assert.ok(err instanceof NeutronResponseInvalid);
    assert.equal(err.field, 'ports[0].mac_address');
    assert.doesNotMatch(err.message, /reboot/);
    return true;
  });
});

test('a path id that is not a UUID never reaches the URL', async () => {
  await assert.rejects(client().showPort('../networks'), TypeError);
  assert.equal(seen.length, 0);
});

const keystone = (password = 'secret') =>
  new NeutronClient({
    url,
    auth: { keystone: { authUrl: `${url}/v3`, username: 'nova', password, projectName: 'service' } },
    ...fast,
  });

test('keystone: logs in once, uses X-Subject-Token, logs in again once on 401', async () => {
  const c = keystone();
  await c.listPorts({});
  await c.listPorts({});
  assert.equal(logins, 1);
  assert.equal(seen[0]!.token, 'tok-1');

  validToken = 'tok-2'; // tok-1 expired; the next login hands out tok-2
  await c.listPorts({});
  assert.equal(logins, 2);
  assert.deepEqual(
    seen.slice(2).map((r) => r.token),
    ['tok-1', 'tok-2'],
  );
});

test('keystone: refused credentials, and a 401 that persists, are NeutronRequestFailed 401', async () => {
  await assert.rejects(keystone('wrong').listPorts({}), (err: unknown) => {
    assert.ok(err instanceof NeutronRequestFailed);
    assert.equal(err.statusCode, 401);
    return true;
  });
  const c = new NeutronClient({ url, auth: { token: 'bad' }, ...fast });
  await assert.rejects(
    c.listPorts({}),
    (err: unknown) => err instanceof NeutronRequestFailed && err.statusCode === 401,
  );
});
