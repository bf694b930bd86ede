import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { buildDomainXml } from '../../src/domain/domain-xml.js';
import type { InstanceRecord } from '../../src/store/instance-store.js';
import { startStack, type TestStack } from '../support/stack.js';
import { repoRoot } from '../support/temporal-cli.js';

// Bad input at the control-plane API (DESIGN.md section 5), on a real stack:
//  1. schemathesis (PyPI, in the project venv) fuzzes every operation of our own
//     OpenAPI document on loopback, bounded in examples and time: no answer may
//     be a 5xx, invalid data must get a 4xx, and the store may change only by
//     what a 2xx answer accepted;
//  2. hand-written hostile requests: oversized and streamed bodies, wrong content
//     types, malformed JSON, `../` ids, wrong types, XML metacharacters and
//     unicode in names (registered only, never powered on), hostile event tags.
// Each rejected request gets a clear 4xx and changes nothing.
//
// Knobs: NT_FUZZ_SEED (schemathesis --seed, default fixed), NT_FUZZ_MAX_EXAMPLES
// (per operation, default 25), NT_FUZZ_MAX_TIME (seconds, default 40).

const SEED = process.env.NT_FUZZ_SEED ?? '20261127';
const MAX_EXAMPLES = process.env.NT_FUZZ_MAX_EXAMPLES ?? '25';
const MAX_TIME = process.env.NT_FUZZ_MAX_TIME ?? '40';
const BODY_LIMIT = 256 * 1024;

let stack: TestStack;
/** stopped with a power-on in progress (os-start answers 409, nothing starts) */
let busy: string;
/** registered without a host (events answer 422) */
let hostless: string;
let work: string;

before(async () => {
  stack = await startStack();
  work = mkdtempSync(path.join(tmpdir(), 'nt-fuzz-'));
  busy = randomUUID();
  hostless = randomUUID();
  const base = { flavor: { vcpus: 1, ramMb: 64, diskGb: 1 }, imageRef: stack.imageId, ports: [] };
  await stack.store.createInstance({ uuid: busy, name: 'fuzz-busy', host: stack.config.host, ...base });
  await stack.store.transition(busy, 'begin', { requestId: 'req-fuzz-seed' });
  await stack.store.createInstance({ uuid: hostless, name: 'fuzz-hostless', host: '', ...base });
});

after(async () => {
  await stack?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

// ------------------------------------------------------------ helpers

interface Snapshot {
  instances: Map<string, InstanceRecord>;
  actions: Map<string, string>;
}

/** Every instance and every action (with its events) in the store. */
async function snapshot(): Promise<Snapshot> {
  const instances = new Map<string, InstanceRecord>();
  const actions = new Map<string, string>();
  for (const i of await stack.store.listInstances()) {
    instances.set(i.uuid, i);
    for (const a of await stack.store.listActions(i.uuid)) {
      const full = await stack.store.getAction(i.uuid, a.requestId);
      actions.set(`${i.uuid} ${a.requestId}`, JSON.stringify(full));
    }
  }
  return { instances, actions };
}

function assertUnchanged(before: Snapshot, after: Snapshot, what: string): void {
  assert.deepEqual([...after.instances.entries()], [...before.instances.entries()], `${what}: instances changed`);
  assert.deepEqual([...after.actions.entries()], [...before.actions.entries()], `${what}: instance actions changed`);
}

/** Files under the stack's root, except the store's own (to see nothing was written by a hostile id). */
function files(dir = stack.root): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(`${p}/`, ...files(p));
    else if (!name.startsWith('nova-temporal.sqlite')) out.push(p);
  }
  return out.sort();
}

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

/** A request with exactly these headers and body bytes (fetch would add a content type). */
function raw(
  method: string,
  url: string,
  opts: { headers?: Record<string, string>; body?: string | Buffer | Readable; token?: string | null } = {},
): Promise<Raw> {
  // No URL object: it would normalize `%2e%2e` segments before they are sent.
  const u = new URL(stack.apiUrl);
  const target = `${u.pathname}${url}`;
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token !== null) headers['x-auth-token'] = opts.token ?? stack.token;
  if (typeof opts.body === 'string' || Buffer.isBuffer(opts.body))
    headers['content-length'] = String(Buffer.byteLength(opts.body));
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = httpRequest({ host: u.hostname, port: u.port, path: target, method, headers }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown = null;
        try {
          json = text ? JSON.parse(text) : null;
        } catch {
          json = null;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    // A server may answer (413) and close before it read all we send: wait for
    // that answer a little, else fail.
    req.on('error', (err) => setTimeout(() => answered || reject(err), 2000));
    req.setTimeout(20_000, () => req.destroy(new Error(`${method} ${url}: no answer in 20 s`)));
    if (opts.body instanceof Readable) opts.body.pipe(req);
    else req.end(opts.body);
  });
}

const postJson = (url: string, body: unknown) =>
  raw('POST', url, {
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

/** A Nova-style 4xx: the status, a JSON fault body `{kind: {code, message}}` and a request id. */
function assertClear4xx(res: Raw, status: number, what: string, message?: RegExp): void {
  assert.equal(res.status, status, `${what}: ${res.status} ${res.text.slice(0, 300)}`);
  assert.match(String(res.headers['x-openstack-request-id'] ?? ''), /^req-[0-9a-f-]{36}$/, `${what}: request id`);
  const fault = res.json && typeof res.json === 'object' ? Object.values(res.json as object)[0] : undefined;
  assert.ok(
    fault && fault.code === status && typeof fault.message === 'string',
    `${what}: fault body ${res.text.slice(0, 200)}`,
  );
  if (message) assert.match(fault.message, message, what);
}

const server = (over: Record<string, unknown> = {}) => ({
  server: { name: 'fuzz', flavor: { vcpus: 1, ram: 64, disk: 1 }, imageRef: stack.imageId, ...over },
});

/** XML 1.0 Char production: what libvirt's parser (libxml2) accepts. */
function xmlCharsOk(s: string): boolean {
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (!(
      c === 0x9 ||
      c === 0xa ||
      c === 0xd ||
      (c >= 0x20 && c <= 0xd7ff) ||
      (c >= 0xe000 && c <= 0xfffd) ||
      c >= 0x10000
    )) {
      return false;
    }
  }
  return true;
}

/**
 * The text of <nova:name>, decoded exactly once as an XML parser would (xmlbuilder2's
 * own parser decodes `&amp;#60;` twice, so it cannot judge this). Throws when the
 * element holds markup, a bare `&` or an entity XML does not predefine.
 */
function novaNameText(xml: string): string {
  const m = /<nova:name>([^<]*)<\/nova:name>/.exec(xml);
  if (!m) throw new Error('no <nova:name> element holding text only');
  const predefined: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
  return m[1]!.replace(
    /&(?:(lt|gt|amp|quot|apos)|#(\d+)|#x([0-9a-fA-F]+));|&/g,
    (all, named?: string, dec?: string, hex?: string) => {
      if (named) return predefined[named]!;
      if (dec === undefined && hex === undefined)
        throw new Error(`not well-formed: ${JSON.stringify(m[1])} has a bare & or an undefined entity`);
      const c = dec !== undefined ? Number(dec) : parseInt(hex!, 16);
      const ch = c <= 0x10ffff ? String.fromCodePoint(c) : '';
      if (!ch || !xmlCharsOk(ch)) throw new Error(`not well-formed: ${all} is not an XML character`);
      return ch;
    },
  );
}

/** The domain XML the compute host would write for this record, and what a strict parser says of it. */
function domainXmlProblems(record: InstanceRecord, submittedName: string): string[] {
  const xml = buildDomainXml({
    instance: record,
    virtType: 'kvm',
    diskPath: path.join(stack.config.instances_path, record.uuid, 'disk'),
    consoleLogPath: path.join(stack.config.instances_path, record.uuid, 'console.log'),
    networkInfo: [],
  });
  const problems: string[] = [];
  if (!xmlCharsOk(xml)) problems.push('has characters outside XML 1.0 Char');
  try {
    const text = novaNameText(xml);
    if (text !== submittedName) problems.push(`nova:name reads back as ${JSON.stringify(text)}`);
  } catch (err) {
    problems.push(String((err as Error).message));
  }
  if (spawnSync('xmllint', ['--version'], { stdio: 'ignore' }).status === 0) {
    const f = path.join(work, `${record.uuid}.xml`);
    writeFileSync(f, xml, 'utf8');
    const r = spawnSync('xmllint', ['--noout', '--nonet', f], { encoding: 'utf8' });
    if (r.status !== 0) problems.push(`xmllint: ${r.stderr.split('\n')[0]}`);
  }
  return problems;
}

// ------------------------------------------------------------ schemathesis

interface HarEntry {
  request: { method: string; url: string; postData?: { text?: string } };
  response: { status: number; headers: { name: string; value: string }[]; content: { text?: string } };
}

/** A TOML basic string (JSON's escapes are TOML's for scalar values). */
const toml = (s: string) => JSON.stringify(s);

test('schemathesis over the OpenAPI document: no 5xx, invalid data gets a 4xx, the store changes only by accepted requests', async (t) => {
  const bin = execFileSync('bash', [path.join(repoRoot, 'scripts/schemathesis.sh')], { encoding: 'utf8' }).trim();
  const unknown = randomUUID();
  // The hostless instance is left out of path ids: os-start on it would start a
  // power-on (see the report); registrations only reuse seeded ids (409), so no
  // fuzzed instance is ever the target of an os-start.
  const ids = [
    busy,
    unknown,
    busy.toUpperCase(),
    `${busy}/`,
    '../../etc/passwd',
    '..',
    '%2e%2e%2f',
    '<x>&amp;',
    'req-../x',
  ];
  const names = [
    '<evil/>',
    '</nova:name><x>',
    'a&b',
    '&amp;',
    ']]>',
    '"\'',
    'ＡＢＣ 日本 ☃ \u{1F600}',
    '\u202eevil',
    'x\uFFFEy',
  ];
  const config = [
    `[dictionaries.server_ids]`,
    `values = [${ids.map(toml).join(', ')}]`,
    `[dictionaries.event_servers]`,
    `values = [${[busy, hostless, unknown].map(toml).join(', ')}]`,
    `[dictionaries.seeded]`,
    `values = [${[busy, hostless].map(toml).join(', ')}]`,
    `[dictionaries.names]`,
    `values = [${names.map(toml).join(', ')}]`,
    `[parameters]`,
    `"path.server_id" = { dictionary = "server_ids", probability = 0.6 }`,
    `"path.request_id" = { dictionary = "server_ids", probability = 0.3 }`,
    `"body.events[*].server_uuid" = { dictionary = "event_servers", probability = 0.6 }`,
    `"body.server.id" = { dictionary = "seeded", probability = 0.2 }`,
    `"body.server.name" = { dictionary = "names", probability = 0.3 }`,
    '',
  ].join('\n');
  const configFile = path.join(work, 'schemathesis.toml');
  writeFileSync(configFile, config);
  const har = path.join(work, 'fuzz.har');
  const before = await snapshot();

  const args = [
    '--config-file',
    configFile,
    'run',
    `${stack.apiUrl}/openapi.json`,
    '--header',
    `X-Auth-Token: ${stack.token}`,
    '--checks',
    'not_a_server_error,negative_data_rejection',
    // No stateful phase: it would chain registerServer into os-start and power on
    // fuzzed instances on the real host.
    '--phases',
    'examples,coverage,fuzzing',
    '--max-examples',
    MAX_EXAMPLES,
    '--max-time',
    MAX_TIME,
    '--workers',
    '2',
    '--seed',
    SEED,
    '--request-timeout',
    '10',
    '--generation-database',
    'none',
    '--suppress-health-check',
    'all',
    '--report',
    'har',
    '--report-har-path',
    har,
    '--no-color',
  ];
  const started = Date.now();
  const run = await new Promise<{ code: number | null; out: string }>((resolve) => {
    execFile(
      bin,
      args,
      {
        // Its cache (.schemathesis/) goes to the scratch directory, not the work tree.
        cwd: work,
        encoding: 'utf8',
        timeout: (Number(MAX_TIME) + 35) * 1000,
        maxBuffer: 16 * 1024 * 1024,
        env: { ...process.env, NO_COLOR: '1' },
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, out: `${stdout}\n${stderr}` }),
    );
  });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const summary = run.out.slice(run.out.lastIndexOf('SUMMARY'));
  t.diagnostic(`schemathesis ${seconds}s, exit ${run.code}, seed ${SEED}\n${summary}`);
  assert.equal(run.code, 0, `schemathesis found failures:\n${run.out.slice(-6000)}`);

  const entries = (JSON.parse(readFileSync(har, 'utf8')) as { log: { entries: HarEntry[] } }).log.entries;
  const byStatus = new Map<number, number>();
  for (const e of entries) byStatus.set(e.response.status, (byStatus.get(e.response.status) ?? 0) + 1);
  t.diagnostic(`${entries.length} requests; statuses ${JSON.stringify(Object.fromEntries([...byStatus].sort()))}`);
  assert.ok(entries.length >= 6 * Number(MAX_EXAMPLES), `a real run (${entries.length} requests)`);

  const serverErrors = entries.filter((e) => e.response.status >= 500);
  assert.deepEqual(
    serverErrors.map(
      (e) => `${e.request.method} ${e.request.url} ${e.request.postData?.text ?? ''} -> ${e.response.status}`,
    ),
    [],
    'no request is answered with a 5xx',
  );
  const reached = (id: string) =>
    entries.some((e) => e.request.url.includes(id) || (e.request.postData?.text ?? '').includes(id));
  assert.ok(reached(busy) && reached(hostless), 'the fuzzer reached the seeded instances');

  // The store after the run is the store before it plus exactly what 2xx answers accepted.
  const after = await snapshot();
  const requestId = (e: HarEntry) =>
    e.response.headers.find((h) => h.name.toLowerCase() === 'x-openstack-request-id')?.value;
  const accepted = entries.filter((e) => e.response.status >= 200 && e.response.status < 300);
  const rejected = new Set(
    entries
      .filter((e) => e.response.status >= 400)
      .map(requestId)
      .filter(Boolean),
  );
  const registered = new Set(
    accepted
      .filter(
        (e) =>
          e.request.method === 'POST' &&
          /\/servers$/.test(new URL(e.request.url).pathname) &&
          e.response.status === 201,
      )
      .map((e) => (JSON.parse(e.response.content.text ?? '{}') as { server: { id: string } }).server.id),
  );
  const added = [...after.instances.keys()].filter((id) => !before.instances.has(id));
  assert.deepEqual(added.sort(), [...registered].sort(), 'new instances are exactly those answered 201');
  for (const [id, record] of before.instances)
    assert.deepEqual(after.instances.get(id), record, `instance ${id} unchanged`);
  const acceptedIds = new Set(accepted.map(requestId));
  for (const key of after.actions.keys()) {
    if (before.actions.has(key)) continue;
    const rid = key.split(' ')[1]!;
    assert.ok(acceptedIds.has(rid), `action ${key} was recorded by an accepted request`);
    assert.ok(!rejected.has(rid), `action ${key} was recorded by a rejected request`);
  }
  for (const [key, value] of before.actions) assert.equal(after.actions.get(key), value, `action ${key} unchanged`);
  const registrations = accepted.filter((e) => e.response.status === 201);
  for (const id of registered) {
    const body = registrations.find((e) => e.response.content.text?.includes(`"id":"${id}"`))!;
    const sent = JSON.parse(body.request.postData?.text ?? '{}') as { server: { name: string } };
    assert.equal(
      after.instances.get(id)!.name,
      sent.server.name,
      `instance ${id} keeps the name it was registered with`,
    );
  }
});

// ------------------------------------------------------------ hand-written hostile requests

const POST_ROUTES = () => ['/servers', `/servers/${busy}/action`, '/os-server-external-events'];

test('a body over the limit is a 413, also when streamed without a length, and changes nothing', async () => {
  const before = await snapshot();
  const huge = JSON.stringify(server({ name: 'x'.repeat(BODY_LIMIT + 10) }));
  for (const url of POST_ROUTES()) {
    assertClear4xx(await postJson(url, huge), 413, `POST ${url} ${huge.length} bytes`);
    const chunked = Readable.from(
      (function* () {
        for (let i = 0; i < 40; i++) yield Buffer.alloc(16 * 1024, 0x20);
      })(),
    );
    const res = await raw('POST', url, {
      headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      body: chunked,
    });
    assertClear4xx(res, 413, `POST ${url} chunked 640 KiB`);
  }
  assertUnchanged(before, await snapshot(), 'oversized bodies');
});

test('a wrong or missing content type is a 415 (text/plain: a 400) and changes nothing', async () => {
  const before = await snapshot();
  const bodies = [JSON.stringify(server()), JSON.stringify({ 'os-start': null }), '<server><name>x</name></server>'];
  for (const url of POST_ROUTES()) {
    for (const body of bodies) {
      for (const type of [
        'application/xml',
        'multipart/form-data; boundary=x',
        'application/x-www-form-urlencoded',
        'application/jsonx',
      ]) {
        assertClear4xx(
          await raw('POST', url, { headers: { 'content-type': type }, body }),
          415,
          `POST ${url} as ${type}`,
        );
      }
      assertClear4xx(await raw('POST', url, { body }), 415, `POST ${url} without a content type`);
      // Fastify parses text/plain as a string; the body schema then refuses it.
      assertClear4xx(
        await raw('POST', url, { headers: { 'content-type': 'text/plain' }, body }),
        400,
        `POST ${url} as text/plain`,
        /body/,
      );
    }
  }
  assertUnchanged(before, await snapshot(), 'wrong content types');
});

test('malformed JSON, wrong types and unknown fields are a 400 naming the field, and change nothing', async () => {
  const before = await snapshot();
  const malformed = ['', '{', '{"server":', 'nul', '\u0000', '"server"', '[]', 'null', '1e999', '{"server":{}}garbage'];
  for (const url of POST_ROUTES()) {
    for (const body of malformed) assertClear4xx(await postJson(url, body), 400, `POST ${url} ${JSON.stringify(body)}`);
    // Prototype poisoning is refused before it reaches a handler.
    assertClear4xx(await postJson(url, '{"__proto__":{"admin":true},"os-start":null}'), 400, `POST ${url} __proto__`);
    assertClear4xx(
      await postJson(url, '{"constructor":{"prototype":{"admin":true}}}'),
      400,
      `POST ${url} constructor.prototype`,
    );
    assertClear4xx(await postJson(url, '['.repeat(100_000) + ']'.repeat(100_000)), 400, `POST ${url} deeply nested`);
  }
  const cases: [unknown, RegExp][] = [
    [server({ flavor: { vcpus: '1', ram: 64, disk: 1 } }), /server\.flavor\.vcpus/],
    [server({ flavor: { vcpus: 1.5, ram: 64, disk: 1 } }), /server\.flavor\.vcpus/],
    [JSON.stringify(server()).replace('"vcpus":1,', '"vcpus":1e999,'), /server\.flavor\.vcpus/],
    [server({ flavor: { vcpus: -1, ram: 64, disk: 1 } }), /server\.flavor\.vcpus/],
    [server({ flavor: { vcpus: 1, ram: 64, disk: 1, swap: 1 } }), /server\.flavor/],
    [server({ name: 123 }), /server\.name/],
    [server({ name: ['a'] }), /server\.name/],
    [server({ name: null }), /server\.name/],
    [server({ networks: 'x' }), /server\.networks/],
    [server({ networks: [{ port: randomUUID(), fixed_ip: '10.0.0.300' }] }), /server\.networks\.0/],
    [server({ networks: [{ port: 'fa:16:3e:00:00:01' }] }), /server\.networks\.0\.port/],
    [server({ networks: Array.from({ length: 17 }, () => ({ port: randomUUID() })) }), /server\.networks/],
    [server({ imageRef: { id: 'x' } }), /server\.imageRef/],
    [server({ adminPass: 'secret' }), /server/],
    [{ ...server(), extra: 1 }, /body/],
  ];
  for (const [body, field] of cases) {
    assertClear4xx(await postJson('/servers', body), 400, `register ${JSON.stringify(body).slice(0, 120)}`, field);
  }
  for (const body of [
    { 'os-start': {} },
    { 'os-start': 1 },
    { 'os-start': null, 'os-stop': null },
    { reboot: null },
    {},
  ]) {
    const res = await postJson(`/servers/${busy}/action`, body);
    assertClear4xx(res, 400, `action ${JSON.stringify(body)}`);
  }
  for (const body of [
    { events: [{ name: 'network-vif-plugged', server_uuid: busy, tag: 42 }] },
    { events: [{ name: 'network-vif-plugged', server_uuid: busy, status: null }] },
    { events: { name: 'network-changed', server_uuid: busy } },
    { events: [null] },
  ]) {
    assertClear4xx(await postJson('/os-server-external-events', body), 400, `events ${JSON.stringify(body)}`, /events/);
  }
  assertUnchanged(before, await snapshot(), 'malformed bodies');
});

test('`../` and other hostile ids are a 404 or a 400, reach no file, and change nothing', async () => {
  const before = await snapshot();
  const filesBefore = files();
  for (const id of [
    '..%2F..%2Fetc%2Fpasswd',
    '%2e%2e',
    '..%5C..%5Cwindows',
    '%00',
    'x%0d%0aSet-Cookie:%20a=b',
    `${busy}%2F..`,
    busy.toUpperCase(),
  ]) {
    assertClear4xx(await raw('GET', `/servers/${id}`), 404, `GET /servers/${id}`);
    assertClear4xx(
      await raw('GET', `/servers/${id}/os-instance-actions`),
      404,
      `GET /servers/${id}/os-instance-actions`,
    );
    assertClear4xx(await postJson(`/servers/${id}/action`, { 'os-start': null }), 404, `POST /servers/${id}/action`);
  }
  for (const rid of ['..%2F..%2Fetc%2Fpasswd', 'req-..', '%27%20OR%201=1--']) {
    assertClear4xx(await raw('GET', `/servers/${busy}/os-instance-actions/${rid}`), 404, `GET action ${rid}`);
  }
  const fields: [Record<string, unknown>, RegExp][] = [
    [{ id: '../../etc/passwd' }, /server\.id/],
    [{ id: `${randomUUID()}/..` }, /server\.id/],
    [{ imageRef: '../../etc/passwd' }, /server\.imageRef/],
    [{ imageRef: '/etc/shadow' }, /server\.imageRef/],
    [{ 'OS-EXT-SRV-ATTR:host': '../compute' }, /OS-EXT-SRV-ATTR:host/],
    [{ 'OS-EXT-SRV-ATTR:host': 'compute\n1' }, /OS-EXT-SRV-ATTR:host/],
    [{ networks: [{ port: '../x' }] }, /server\.networks\.0\.port/],
  ];
  for (const [over, field] of fields) {
    assertClear4xx(await postJson('/servers', server(over)), 400, `register ${JSON.stringify(over)}`, field);
  }
  assertClear4xx(
    await postJson('/os-server-external-events', { events: [{ name: 'network-changed', server_uuid: '../x' }] }),
    400,
    'event for ../x',
    /events\.0\.server_uuid/,
  );
  assert.deepEqual(files(), filesBefore, 'no file appeared or vanished under the stack root');
  assertUnchanged(before, await snapshot(), 'hostile ids');
});

test('names: XML metacharacters and unicode are stored verbatim and stay text in the domain XML; the rest is a 400', async () => {
  const verbatim = [
    '<script>alert(1)</script>',
    '</nova:name><nova:flavor>',
    'a & b',
    '"double" \'single\'',
    ']]>',
    '<!--comment-->',
    '<![CDATA[x]]>',
    'Ünïcødé ☃ 日本語の名前',
    '\u202eexe.txt',
    'e\u0301',
    '\u{1F469}\u200d\u{1F469}\u200d\u{1F467}',
    'x'.repeat(255),
  ];
  // Accepted today, but not stored or not written as the text they are (see the report).
  const safeOrRefused = ['&e;', 'AT&amp;T', '&#60;b&#62;', 'x&#0;', 'x\uFFFEy', 'x\uFFFFy'];
  const refused: unknown[] = [
    '',
    ' lead',
    'trail ',
    'a\u0000b',
    'a\nb',
    'a\tb',
    'a\u0085b',
    'a\u2028b',
    'x'.repeat(256),
  ];

  const problems: string[] = [];
  for (const name of [...verbatim, ...safeOrRefused]) {
    const id = randomUUID();
    const res = await postJson('/servers', server({ id, name }));
    if (res.status === 400 && safeOrRefused.includes(name)) {
      assertClear4xx(res, 400, `name ${JSON.stringify(name)}`, /server\.name/);
      assert.equal(await stack.store.getInstance(id), null);
      continue;
    }
    assert.equal(res.status, 201, `name ${JSON.stringify(name)}: ${res.text}`);
    const shown = await raw('GET', `/servers/${id}`);
    const record = (await stack.store.getInstance(id))!;
    if (shown.json?.server?.name !== name || record.name !== name) {
      problems.push(`${JSON.stringify(name)} is shown as ${JSON.stringify(shown.json?.server?.name)}`);
      continue;
    }
    for (const p of domainXmlProblems(record, name)) problems.push(`${JSON.stringify(name)}: domain XML ${p}`);
  }

  // A lone surrogate in the JSON text: valid JSON, not a Unicode string.
  {
    const id = randomUUID();
    const body = JSON.stringify(server({ id, name: 'x' })).replace('"name":"x"', '"name":"x\\ud800y"');
    const res = await postJson('/servers', body);
    if (res.status !== 400) {
      const record = await stack.store.getInstance(id);
      if (record?.name !== 'x\ud800y')
        problems.push(`"x\\ud800y" answered ${res.status} and is stored as ${JSON.stringify(record?.name)}`);
    }
  }

  const before = await snapshot();
  for (const name of refused) {
    const id = randomUUID();
    assertClear4xx(
      await postJson('/servers', server({ id, name })),
      400,
      `name ${JSON.stringify(name)}`,
      /server\.name/,
    );
  }
  assertUnchanged(before, await snapshot(), 'refused names');
  assert.deepEqual(problems, [], 'a name the API accepts must be stored as sent and be text in well-formed domain XML');
});

test('external events: hostile tags are kept as sent, bad ones are a 400, and a large batch is answered without a 5xx', async () => {
  const tags = [
    '<tag>&amp;</tag>',
    'line\r\nX-Injected: 1',
    '../../etc/passwd',
    '☃ \u{1F600}',
    '"\'`',
    't'.repeat(255),
  ];
  const res = await postJson('/os-server-external-events', {
    events: tags.map((tag) => ({ name: 'network-vif-plugged', server_uuid: busy, tag })),
  });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(
    res.json.events.map((e: { tag: string; code: number }) => [e.tag, e.code]),
    tags.map((t) => [t, 200]),
  );
  const rid = String(res.headers['x-openstack-request-id']);
  const action = await raw('GET', `/servers/${busy}/os-instance-actions/${rid}`);
  assert.equal(action.status, 200, action.text);
  assert.deepEqual(
    action.json.instanceAction.events.map((e: { event: string }) => e.event).sort(),
    tags.map((t) => `network-vif-plugged:${t}`).sort(),
  );
  assert.ok(!('x-injected' in res.headers), 'no header injection');

  const before = await snapshot();
  assertClear4xx(
    await postJson('/os-server-external-events', {
      events: [{ name: 'network-vif-plugged', server_uuid: busy, tag: 't'.repeat(256) }],
    }),
    400,
    'tag of 256',
    /events\.0\.tag/,
  );
  assertUnchanged(before, await snapshot(), 'refused tag');

  // As many events as fit under the body limit, for unknown servers: one answer, each 404.
  const many = Array.from({ length: 2000 }, () => ({
    name: 'network-vif-plugged',
    server_uuid: randomUUID(),
    tag: 'x',
  }));
  const started = Date.now();
  const big = await postJson('/os-server-external-events', { events: many });
  assert.equal(big.status, 207, big.text.slice(0, 300));
  assert.equal(big.json.events.length, many.length);
  assert.ok(big.json.events.every((e: { code: number }) => e.code === 404));
  assert.ok(Date.now() - started < 15_000, `answered in ${Date.now() - started} ms`);
  assertUnchanged(before, await snapshot(), 'events for unknown servers');
});
