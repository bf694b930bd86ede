import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { startNeutronDevServer, type NeutronDevServer } from '../../dev/neutron/server.js';
import { createComputeWorker } from '../../src/compute-worker.js';
import type { Config } from '../../src/config.js';
import { tokenChecker } from '../../src/control-plane/auth.js';
import { logger } from '../../src/log.js';
import { NeutronClient } from '../../src/neutron/client.js';
import { NeutronNetworkInfoSource, NeutronPortBinder } from '../../src/neutron/source.js';
import { powerOnWorkflowId } from '../../src/workflows/definitions.js';
import { repoRoot } from '../support/temporal-cli.js';

// Security of the control plane (issue: "Crash safety, bad input and security", 5):
//  - every endpoint, as listed in our OpenAPI document, answers 401 without a
//    valid X-Auth-Token (none, wrong, or wrong in its last character only), with
//    a request id, and changes nothing; the compare is constant-time;
//  - request bodies are size-limited;
//  - after a real power-on with a Neutron port (dev Neutron, OVS, nftables,
//    libvirt), no token or password is in any workflow history (inputs, results,
//    signals, memo, search attributes, metadata) or in any log line;
//  - the compute worker is built without reading the control plane's secrets.
//
// Logs: every pino line (the stack's loggers are children of src/log.ts's root,
// whose destination this file swaps for a buffer, keeping its redaction) and
// everything written to stderr (the Temporal SDK's logger) is captured.

const API_TOKEN = `api-${randomBytes(16).toString('hex')}`;
const NEUTRON_TOKEN = `neutron-${randomBytes(16).toString('hex')}`;
const DB_PASSWORD = `dbpw-${randomBytes(16).toString('hex')}`;
const SECRETS: Record<string, string> = {
  'API token': API_TOKEN,
  'Neutron token': NEUTRON_TOKEN,
  'database password': DB_PASSWORD,
};

// Loud loggers while this file runs, so that the scan sees as much as can be logged.
process.env.NT_TEST_LOG_LEVEL = 'trace';
process.env.NT_TEST_SDK_LOG_LEVEL ??= 'DEBUG';

const captured: string[] = [];
const streamSym: symbol = pino.symbols.streamSym;
const rootLogger = logger as unknown as Record<symbol, unknown>;
const originalStream = rootLogger[streamSym];
rootLogger[streamSym] = { write: (line: string) => captured.push(line) };
const originalStderrWrite = process.stderr.write.bind(process.stderr);
process.stderr.write = ((chunk: string | Uint8Array) => {
  captured.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
  return true;
}) as typeof process.stderr.write;
const testLog = logger.child({ component: 'security-test' });
testLog.level = 'trace';

// Imported after the log level is set: the stack installs the SDK's logger on import.
const { freePort, startStack } = await import('../support/stack.js');
type Stack = Awaited<ReturnType<typeof startStack>>;

let stack: Stack;
let neutron: NeutronDevServer;
let client: NeutronClient;
let dbDir: string;
let known: string;
const powered: string[] = [];

before(async () => {
  const apiPort = await freePort();
  neutron = await startNeutronDevServer({
    port: 0,
    token: NEUTRON_TOKEN,
    apiUrl: `http://127.0.0.1:${apiPort}/v2.1`,
    apiToken: API_TOKEN,
    pollIntervalMs: 50,
    logger: testLog,
  });
  client = new NeutronClient({ url: neutron.url, auth: { token: NEUTRON_TOKEN }, logger: testLog });
  dbDir = mkdtempSync('/var/tmp/nt-sec-');
  stack = await startStack({
    apiPort,
    token: API_TOKEN,
    network: new NeutronNetworkInfoSource(client, { integrationBridge: 'br-int', logger: testLog }),
    ports: new NeutronPortBinder(client, { logger: testLog }),
    config: {
      vif_plugging_timeout: 30,
      neutron: { url: neutron.url, token: NEUTRON_TOKEN },
      // Never opened (the stack's store is SQLite); here so that a leak of it would show.
      database: {
        path: path.join(dbDir, 'nova-temporal.sqlite'),
        url: `postgresql://nova:${DB_PASSWORD}@127.0.0.1:1/nova`,
      },
    },
  });
  known = randomUUID();
  await stack.store.createInstance({
    uuid: known,
    name: 'sec-known',
    host: stack.config.host,
    flavor: { vcpus: 1, ramMb: 64, diskGb: 1 },
    imageRef: stack.imageId,
    ports: [],
  });
  await stack.store.startAction({
    action: 'start',
    instanceUuid: known,
    requestId: 'req-sec-seed',
    startTime: new Date().toISOString(),
    message: null,
  });
});

after(async () => {
  try {
    if (stack) {
      const { createHostActivities } = await import('../../src/activities/index.js');
      const { ImageSource } = await import('../../src/host/image-source.js');
      const host = createHostActivities({
        host: stack.host,
        instancesPath: stack.config.instances_path,
        virtType: 'kvm',
        images: new ImageSource(stack.config.images_path),
        integrationBridge: 'br-int',
        firewallDriver: 'nftables',
      });
      for (const id of powered) await host.cleanupInstance({ instanceUuid: id, portIds: [] });
      await stack.stop();
    }
    await neutron?.close();
    if (dbDir) rmSync(dbDir, { recursive: true, force: true });
  } finally {
    process.stderr.write = originalStderrWrite;
    rootLogger[streamSym] = originalStream;
  }
});

// ------------------------------------------------------------ helpers

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** One request with exactly these headers (repeated ones as arrays). */
function send(
  method: string,
  target: string,
  headers: Record<string, string | string[]>,
  body?: string | Buffer,
): Promise<Res> {
  const u = new URL(stack.apiUrl);
  const all: Record<string, string | string[]> = { ...headers };
  if (body !== undefined) all['content-length'] = String(Buffer.byteLength(body));
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = httpRequest({ host: u.hostname, port: u.port, path: target, method, headers: all }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }),
      );
    });
    req.on('error', (err) => setTimeout(() => answered || reject(err), 2000));
    req.setTimeout(20_000, () => req.destroy(new Error(`${method} ${target}: no answer`)));
    req.end(body);
  });
}

async function storeSnapshot(): Promise<string> {
  const out: unknown[] = [];
  for (const i of await stack.store.listInstances()) {
    const actions = [];
    for (const a of await stack.store.listActions(i.uuid))
      actions.push(await stack.store.getAction(i.uuid, a.requestId));
    out.push({ i, actions });
  }
  return JSON.stringify(out);
}

/** Every string in a value, with byte arrays decoded as UTF-8 (payloads are JSON in bytes). */
function strings(value: unknown, out: string[] = [], seen = new Set<unknown>()): string[] {
  if (typeof value === 'string') out.push(value);
  else if (value instanceof Uint8Array) {
    const b = Buffer.from(value);
    out.push(b.toString('utf8'), b.toString('latin1'));
  } else if (value && typeof value === 'object' && !seen.has(value)) {
    seen.add(value);
    for (const [k, v] of Object.entries(value)) {
      out.push(k);
      strings(v, out, seen);
    }
  }
  return out;
}

/** Which secrets (or their base64, or all but their last character) occur in the text. */
function leaks(text: string): string[] {
  const found: string[] = [];
  for (const [name, secret] of Object.entries(SECRETS)) {
    const forms = [secret, secret.slice(0, -1), Buffer.from(secret).toString('base64').slice(0, -4)];
    if (forms.some((f) => text.includes(f))) found.push(name);
  }
  return found;
}

const faultOf = (text: string) => {
  try {
    return JSON.parse(text) as Record<string, { code?: number; message?: string }>;
  } catch {
    return null;
  }
};

// ------------------------------------------------------------ authentication

test('every route in the OpenAPI document answers 401 without a valid token, with a request id, and changes nothing', async () => {
  const doc = JSON.parse((await send('GET', '/v2.1/openapi.json', { 'x-auth-token': API_TOKEN })).text) as {
    servers: { url: string }[];
    paths: Record<string, Record<string, unknown>>;
  };
  const base = doc.servers[0]!.url;
  const bodies: Record<string, string> = {
    '/servers': JSON.stringify({
      server: { id: randomUUID(), name: 'x', flavor: { vcpus: 1, ram: 64, disk: 1 }, imageRef: stack.imageId },
    }),
    '/servers/{server_id}/action': JSON.stringify({ 'os-start': null }),
    '/os-server-external-events': JSON.stringify({
      events: [{ name: 'network-vif-plugged', server_uuid: known, tag: randomUUID() }],
    }),
  };
  const last = API_TOKEN.at(-1)!;
  const badAuth: [string, Record<string, string | string[]>][] = [
    ['no token', {}],
    ['an empty token', { 'x-auth-token': '' }],
    ['a wrong token', { 'x-auth-token': 'wrong-token-wrong-token' }],
    ['the token but its last character', { 'x-auth-token': API_TOKEN.slice(0, -1) + (last === 'a' ? 'b' : 'a') }],
    ['the token without its last character', { 'x-auth-token': API_TOKEN.slice(0, -1) }],
    ['the token and one more character', { 'x-auth-token': `${API_TOKEN}0` }],
    ['the token upper-cased', { 'x-auth-token': API_TOKEN.toUpperCase() }],
    ['the token twice', { 'x-auth-token': [API_TOKEN, API_TOKEN] }],
    ['the token as a bearer token', { authorization: `Bearer ${API_TOKEN}` }],
    ['the token in another header', { 'x-auth-token-x': API_TOKEN, 'x-subject-token': API_TOKEN }],
  ];
  // (The token in the query string is probed, and its logging checked, in a test of its own.)
  const before = await storeSnapshot();
  const ids = new Set<string>();
  let checked = 0;
  for (const [route, ops] of Object.entries(doc.paths)) {
    const target = `${base}${route}`.replace('{server_id}', known).replace('{request_id}', 'req-sec-seed');
    for (const method of Object.keys(ops)) {
      const verb = method.toUpperCase();
      const body = bodies[route];
      for (const [what, auth] of badAuth) {
        const headers = { ...auth, ...(body ? { 'content-type': 'application/json' } : {}) };
        for (const [m, t] of [
          [verb, target],
          ...(verb === 'GET' ? [['HEAD', target]] : []),
          [verb, `${target}?x=1`],
        ] as const) {
          const res = await send(m, t, headers, body);
          const label = `${m} ${t} with ${what}`;
          assert.equal(res.status, 401, `${label}: ${res.status} ${res.text.slice(0, 200)}`);
          const rid = String(res.headers['x-openstack-request-id'] ?? '');
          assert.match(rid, /^req-[0-9a-f-]{36}$/, `${label}: request id`);
          ids.add(rid);
          if (m !== 'HEAD') assert.equal(faultOf(res.text)?.unauthorized?.code, 401, `${label}: Nova fault body`);
          checked++;
        }
      }
      // The same request with the token is served (so the 401s above were about the token).
      const ok = await send(
        verb,
        target,
        { 'x-auth-token': API_TOKEN, ...(body ? { 'content-type': 'application/json' } : {}) },
        route === '/servers' ? body : undefined,
      );
      assert.notEqual(ok.status, 401, `${verb} ${route} with the token`);
    }
  }
  assert.ok(checked >= 7 * badAuth.length * 2, `${checked} refused requests`);
  assert.equal(ids.size, checked, 'every answer has its own request id');
  // Neither the os-start nor the registration nor the event of the refused requests happened.
  const after = JSON.parse(await storeSnapshot()) as { i: { uuid: string } }[];
  const registered = JSON.parse(bodies['/servers']!).server.id as string;
  assert.deepEqual(
    JSON.stringify(after.filter((x) => x.i.uuid !== registered)),
    before,
    'refused requests changed the store',
  );
});

test('paths outside the document and framework-level errors answer 401 without a token too', async () => {
  const long = 'a'.repeat(150);
  const cases: [string, string][] = [
    ['GET', '/'],
    ['GET', '/v2.1'],
    ['GET', '/v2.1/'],
    ['GET', '/v2.1/servers'],
    ['DELETE', `/v2.1/servers/${known}`],
    ['PUT', `/v2.1/servers/${known}`],
    ['OPTIONS', '/v2.1/servers'],
    ['GET', '/v2.1/../v2.1/openapi.json'],
    ['GET', '/metrics'],
    // Fastify answers these from its router, before any hook: an over-long path
    // parameter (> maxParamLength, 100) and a malformed percent-encoding.
    ['GET', `/v2.1/servers/${long}`],
    ['POST', `/v2.1/servers/${long}/action`],
    ['GET', `/v2.1/servers/${known}/os-instance-actions/${long}`],
    ['GET', '/v2.1/servers/%E0%A4%A'],
    ['GET', '/v2.1/servers/%'],
  ];
  const problems: string[] = [];
  for (const [method, target] of cases) {
    const res = await send(method, target, {});
    const rid = res.headers['x-openstack-request-id'];
    if (res.status !== 401 || !/^req-/.test(String(rid ?? ''))) {
      problems.push(
        `${method} ${target.slice(0, 60)} -> ${res.status}, request id ${rid ?? 'missing'}: ${res.text.slice(0, 120)}`,
      );
    }
  }
  assert.deepEqual(problems, [], 'answered without authentication (src/control-plane/api.ts: Fastify frameworkErrors)');
  // /metrics takes Prometheus' bearer token, and only the right one.
  assert.equal((await send('GET', '/metrics', { authorization: `Bearer ${API_TOKEN.slice(0, -1)}x` })).status, 401);
  assert.equal((await send('GET', '/metrics', { authorization: `Bearer ${API_TOKEN}` })).status, 200);
});

test('the token compare is constant-time: SHA-256 digests through timingSafeEqual, every accepted token tried', () => {
  const check = tokenChecker([API_TOKEN, 'second-token-0001']);
  assert.equal(check(API_TOKEN), true);
  assert.equal(check('second-token-0001'), true);
  for (const t of [
    undefined,
    '',
    API_TOKEN.slice(0, -1),
    `${API_TOKEN}x`,
    API_TOKEN.toUpperCase(),
    'x'.repeat(100_000),
    '\u{1F600}',
    '\0',
  ]) {
    assert.equal(check(t), false, JSON.stringify(t?.slice(0, 20)));
  }
  // Regression guard on the source: digests of equal length compared with
  // crypto.timingSafeEqual, no early exit, and the API uses this checker.
  const auth = readFileSync(path.join(repoRoot, 'src/control-plane/auth.ts'), 'utf8');
  assert.match(auth, /timingSafeEqual\(/);
  assert.match(auth, /createHash\('sha256'\)/);
  assert.doesNotMatch(
    auth,
    /===|!==|\.includes\(|\.indexOf\(|\bbreak\b|return true/,
    'no short-circuit compare in auth.ts',
  );
  const api = readFileSync(path.join(repoRoot, 'src/control-plane/api.ts'), 'utf8');
  assert.match(api, /tokenChecker\(config\.api\.tokens\)/);
});

test('request bodies are size-limited: refused before reading without a token, 413 over 256 KiB with one', async () => {
  const huge = Buffer.alloc(1024 * 1024 + 1, 0x20);
  for (const target of ['/v2.1/servers', `/v2.1/servers/${known}/action`, '/v2.1/os-server-external-events']) {
    const anon = await send('POST', target, { 'content-type': 'application/json' }, huge);
    assert.equal(anon.status, 401, `anonymous 1 MiB to ${target}`);
    const authed = await send(
      'POST',
      target,
      { 'content-type': 'application/json', 'x-auth-token': API_TOKEN },
      Buffer.alloc(256 * 1024 + 1, 0x20),
    );
    assert.equal(authed.status, 413, `256 KiB + 1 to ${target}: ${authed.text.slice(0, 200)}`);
    assert.match(String(authed.headers['x-openstack-request-id']), /^req-/);
  }
});

// ------------------------------------------------------------ secrets in histories and logs

test('a token sent where it is not accepted (the query string) is refused and not written to the logs', async () => {
  const from = captured.length;
  const res = await send('GET', `/v2.1/servers/${known}?X-Auth-Token=${API_TOKEN}&token=${API_TOKEN}`, {});
  assert.equal(res.status, 401);
  const leaking = captured.slice(from).filter((line) => leaks(line).length > 0);
  assert.deepEqual(
    leaking.map((l) => l.slice(0, 300)),
    [],
    'the request log writes req.url with its query string (src/control-plane/api.ts / src/log.ts: log the path only)',
  );
});

test('after a power-on with a Neutron port, no token or password is in any workflow history or log line', async (t) => {
  const from = captured.length;
  const net = await client.createNetwork({ name: `nt-sec-${randomUUID().slice(0, 6)}` });
  await client.createSubnet({ network_id: net.id, cidr: '10.78.0.0/24', ip_version: 4 });
  const port = await client.createPort({ network_id: net.id });
  const id = randomUUID();
  powered.push(id);
  const reg = await stack.api('POST', '/servers', {
    server: {
      id,
      name: 'sec-test',
      flavor: { vcpus: 1, ram: 64, disk: 1 },
      imageRef: stack.imageId,
      networks: [{ port: port.id }],
    },
  });
  assert.equal(reg.status, 201, JSON.stringify(reg.body));
  const start = await stack.api('POST', `/servers/${id}/action`, { 'os-start': null });
  assert.equal(start.status, 202, JSON.stringify(start.body));
  const handle = stack.env.client.workflow.getHandle(powerOnWorkflowId(id));
  await handle.result();
  const server = (await stack.api('GET', `/servers/${id}`)).body.server;
  assert.equal(server['OS-EXT-STS:vm_state'], 'active');

  // Every workflow of the namespace: its history, description and progress query.
  const texts: string[] = [];
  let histories = 0;
  for await (const wf of stack.env.client.workflow.list()) {
    const h = stack.env.client.workflow.getHandle(wf.workflowId, wf.runId);
    const history = await h.fetchHistory();
    strings(history, texts);
    strings(await h.describe(), texts);
    histories++;
  }
  strings(await handle.query('progress'), texts);
  assert.ok(histories >= 1, 'a history was scanned');
  const historyText = texts.join('\n');
  assert.ok(historyText.includes(id) && historyText.includes(port.id), 'the scan sees the instance and its port');
  assert.deepEqual(leaks(historyText), [], 'secrets in a workflow history');

  // Logs: a line through the real logger's redaction, then every line captured.
  testLog.info(
    {
      token: API_TOKEN,
      neutron: { token: NEUTRON_TOKEN },
      password: DB_PASSWORD,
      headers: { 'x-auth-token': API_TOKEN },
    },
    'redaction probe',
  );
  const logText = captured.slice(from).join('');
  // NT_SEC_LOG_DUMP=<file>: keep what was scanned, to see what the scan saw.
  if (process.env.NT_SEC_LOG_DUMP)
    writeFileSync(process.env.NT_SEC_LOG_DUMP, `${logText}\n----- histories -----\n${historyText}`);
  t.diagnostic(
    `${captured.length} log writes, ${logText.length} characters; ${histories} histories, ${historyText.length} characters`,
  );
  assert.ok(logText.includes('redaction probe') && logText.includes('[redacted]'), 'the capture sees pino lines');
  assert.ok(logText.includes(id), 'the capture sees the power-on');
  assert.ok(/external event|neutron request/.test(logText), 'the capture sees the API and Neutron lines');
  const leaking = logText.split('\n').filter((line) => leaks(line).length > 0);
  assert.deepEqual(
    leaking.map((l) => l.slice(0, 300)),
    [],
    'secrets in log lines',
  );
});

test('the compute worker is built without reading the control plane secrets (API tokens, database, Neutron)', async () => {
  const config = { ...stack.config, host: `sec-probe-${randomBytes(3).toString('hex')}` } as Config;
  for (const key of ['api', 'database', 'neutron', 'notifications'] as const) {
    Object.defineProperty(config, key, {
      enumerable: true,
      get() {
        throw new Error(`the compute worker read config.${key}`);
      },
    });
  }
  const { worker, host } = await createComputeWorker(config, stack.env.nativeConnection);
  const running = worker.run();
  worker.shutdown();
  await running;
  await host.close();
});
