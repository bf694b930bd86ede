import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { startNeutronDevServer, type NeutronDevServer } from '../../dev/neutron/server.js';
import { BadRequest } from '../../src/control-plane/api.js';
import { tapName } from '../../src/domain/network-model.js';
import { NeutronClient } from '../../src/neutron/client.js';
import { NeutronNotFound } from '../../src/neutron/errors.js';
import { NeutronNetworkInfoSource, NeutronPortBinder } from '../../src/neutron/source.js';

// The dev Neutron with our client, binder and NetworkInfo source, and its L2 agent
// on the real br-int: a tap with the port's iface-id makes it POST exactly what
// Neutron's nova notifier posts to a stand-in for the control plane.

const BRIDGE = 'br-int';
const NEUTRON_TOKEN = 'neutron-dev-token';
const API_TOKEN = 'control-plane-token';
const silent = pino({ level: 'silent' });

interface Received {
  headers: Record<string, string | string[] | undefined>;
  raw: string;
  body: { events: Record<string, unknown>[] };
}

let receiver: FastifyInstance;
let received: Received[] = [];
let neutron: NeutronDevServer;
let client: NeutronClient;
const taps: string[] = [];
const stateDir = mkdtempSync(join(tmpdir(), 'neutron-dev-'));

function sh(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function plugTap(portId: string): string {
  const tap = tapName(portId);
  if (!taps.includes(tap)) taps.push(tap);
  if (!existsSync(`/sys/class/net/${tap}`)) sh('ip', ['tuntap', 'add', 'dev', tap, 'mode', 'tap', 'vnet_hdr']);
  sh('ovs-vsctl', [
    '--may-exist',
    'add-port',
    BRIDGE,
    tap,
    '--',
    'set',
    'Interface',
    tap,
    `external_ids:iface-id=${portId}`,
  ]);
  return tap;
}

function unplugTap(tap: string): void {
  sh('ovs-vsctl', ['--if-exists', 'del-port', BRIDGE, tap]);
}

async function waitFor<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function dev(method: string, path: string, body?: unknown) {
  const res = await fetch(`${neutron.url}${path}`, {
    method,
    headers: { 'x-auth-token': NEUTRON_TOKEN, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: res.status === 204 ? null : ((await res.json()) as any) };
}

before(async () => {
  const bridgeOk = (() => {
    try {
      return execFileSync('ovs-vsctl', ['get', 'Bridge', BRIDGE, 'datapath_type'], { encoding: 'utf8' }).trim();
    } catch {
      return null;
    }
  })();
  if (bridgeOk === null) throw new Error(`OVS bridge ${BRIDGE} is missing: run bash scripts/host-setup.sh`);

  receiver = Fastify({ logger: false });
  receiver.removeAllContentTypeParsers();
  receiver.addContentTypeParser('*', { parseAs: 'string' }, (_req, raw, done) => done(null, raw));
  receiver.post('/v2.1/os-server-external-events', async (req, reply) => {
    const raw = req.body as string;
    const body = JSON.parse(raw) as Received['body'];
    received.push({ headers: req.headers, raw, body });
    // Nova's answer shape: each event echoed with code and status.
    return reply
      .code(200)
      .send({ events: body.events.map((e) => ({ ...e, code: 200, status: e.status ?? 'completed' })) });
  });
  await receiver.listen({ host: '127.0.0.1', port: 0 });
  const addr = receiver.server.address() as { port: number };

  neutron = await startNeutronDevServer({
    port: 0,
    token: NEUTRON_TOKEN,
    apiUrl: `http://127.0.0.1:${addr.port}/v2.1`,
    apiToken: API_TOKEN,
    integrationBridge: BRIDGE,
    pollIntervalMs: 100,
    logger: silent,
  });
  client = new NeutronClient({ url: neutron.url, auth: { token: NEUTRON_TOKEN } });
});

after(async () => {
  for (const tap of taps) {
    try {
      unplugTap(tap);
    } catch {
      // keep cleaning
    }
    if (existsSync(`/sys/class/net/${tap}`)) sh('ip', ['link', 'del', 'dev', tap]);
  }
  await neutron?.close();
  await receiver?.close();
  rmSync(stateDir, { recursive: true, force: true });
});

test('wrong or missing token is 401; unknown port is NeutronError PortNotFound', async () => {
  const res = await fetch(`${neutron.url}/v2.0/ports`, { headers: { 'x-auth-token': 'nope' } });
  assert.equal(res.status, 401);
  const missing = await dev('GET', `/v2.0/ports/${randomUUID()}`);
  assert.equal(missing.status, 404);
  assert.equal(missing.body.NeutronError.type, 'PortNotFound');
  assert.equal(missing.body.NeutronError.detail, '');
  await assert.rejects(client.showPort(randomUUID()), NeutronNotFound);
});

test("bind, NetworkInfo, plug: Neutron's vif-plugged request; failed mode; unplug", async () => {
  const instance = randomUUID();
  const network = await client.createNetwork({ name: 'test-net', mtu: 1450 });
  const subnet = await client.createSubnet({ network_id: network.id, cidr: '10.77.0.0/24', ip_version: 4 });
  const port = await client.createPort({ network_id: network.id, name: 'test-port' });
  assert.equal(port.status, 'DOWN');
  assert.deepEqual(port.fixed_ips, [{ subnet_id: subnet.id, ip_address: '10.77.0.2' }]);

  // Binding: a missing port or one of another device is refused before anything changes.
  const binder = new NeutronPortBinder(client, { logger: silent });
  const ghost = randomUUID();
  await assert.rejects(binder.bindPorts(instance, 'compute-1', [port.id, ghost]), (err: unknown) => {
    assert.ok(err instanceof BadRequest);
    assert.match(err.message, new RegExp(`Port ${ghost} could not be found`));
    return true;
  });
  assert.equal((await client.showPort(port.id)).device_id, '', 'nothing was bound');
  await binder.bindPorts(instance, 'compute-1', [port.id]);
  const bound = await client.showPort(port.id);
  assert.equal(bound.device_id, instance);
  assert.equal(bound.device_owner, 'compute:nova');
  assert.equal(bound['binding:host_id'], 'compute-1');
  await binder.bindPorts(instance, 'compute-1', [port.id]); // idempotent
  await assert.rejects(binder.bindPorts(randomUUID(), 'compute-1', [port.id]), (err: unknown) => {
    assert.ok(err instanceof BadRequest);
    assert.match(err.message, new RegExp(`Port ${port.id} is still in use`));
    return true;
  });

  const source = new NeutronNetworkInfoSource(client, { integrationBridge: BRIDGE, logger: silent });
  const spec = {
    uuid: instance,
    name: 'vm',
    host: 'compute-1',
    flavor: { vcpus: 1, ramMb: 64, diskGb: 1 },
    imageRef: 'img',
    ports: [port.id],
  };
  const [vif, ...none] = await source.getNetworkInfo(spec);
  assert.equal(none.length, 0);
  assert.equal(vif!.id, port.id);
  assert.equal(vif!.address, port.mac_address);
  assert.equal(vif!.devname, tapName(port.id));
  assert.equal(vif!.type, 'ovs');
  assert.equal(vif!.active, false);
  assert.deepEqual(vif!.network, {
    id: network.id,
    label: 'test-net',
    bridge: BRIDGE,
    mtu: 1450,
    subnets: [
      { id: subnet.id, cidr: '10.77.0.0/24', gateway: '10.77.0.1', ips: [{ address: '10.77.0.2', version: 4 }] },
    ],
  });
  assert.ok(vif!.securityGroupRules.some((r) => r.direction === 'ingress' && r.remoteIpPrefix === '10.77.0.0/24'));

  // Plug: the agent sees the iface-id on br-int and notifies like Neutron.
  received = [];
  const tap = plugTap(port.id);
  const first = await waitFor('network-vif-plugged', () => received[0]);
  assert.equal(first.headers['x-auth-token'], API_TOKEN);
  assert.equal(first.headers['x-openstack-nova-api-version'], '2.1');
  assert.match(
    String(first.headers['x-openstack-request-id']),
    /^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
  );
  assert.equal(first.headers['user-agent'], 'python-novaclient');
  assert.equal(first.headers['content-type'], 'application/json');
  assert.equal(
    first.raw,
    `{"events": [{"server_uuid": "${instance}", "name": "network-vif-plugged", "status": "completed", "tag": "${port.id}"}]}`,
  );
  assert.equal((await client.showPort(port.id)).status, 'ACTIVE');
  assert.equal((await source.getNetworkInfo(spec))[0]!.active, true);
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(received.length, 1, 'exactly one request, no version discovery, no repeat');
  const log = await dev('GET', '/dev/events');
  const sent = log.body.events.at(-1);
  assert.equal(sent.statusCode, 200);
  assert.equal(sent.requestId, first.headers['x-openstack-request-id']);

  // Unplug: port DOWN, network-vif-unplugged.
  unplugTap(tap);
  const second = await waitFor('network-vif-unplugged', () => received[1]);
  assert.deepEqual(second.body, {
    events: [{ server_uuid: instance, name: 'network-vif-unplugged', status: 'completed', tag: port.id }],
  });
  assert.equal((await client.showPort(port.id)).status, 'DOWN');

  // failed mode: the port goes ERROR and the plugged event says failed.
  const set = await dev('PUT', `/dev/ports/${port.id}/behaviour`, { mode: 'failed' });
  assert.equal(set.status, 200);
  plugTap(port.id);
  const third = await waitFor('failed network-vif-plugged', () => received[2]);
  assert.deepEqual(third.body, {
    events: [{ server_uuid: instance, name: 'network-vif-plugged', status: 'failed', tag: port.id }],
  });
  assert.equal((await client.showPort(port.id)).status, 'ERROR');
  // ERROR -> DOWN is of no interest to Nova (Neutron's rule): no event.
  unplugTap(tap);
  await waitFor('port DOWN', async () => ((await client.showPort(port.id)).status === 'DOWN' ? true : undefined));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(received.length, 3);

  // Deleting the port: network-vif-deleted (no status), and NetworkInfo names the missing port.
  await client.deletePort(port.id);
  const fourth = await waitFor('network-vif-deleted', () => received[3]);
  assert.deepEqual(fourth.body, { events: [{ server_uuid: instance, name: 'network-vif-deleted', tag: port.id }] });
  await assert.rejects(
    source.getNetworkInfo(spec),
    new RegExp(`port ${port.id} of instance ${instance} no longer exists`),
  );
});

test('early mode sends the plugged event at binding, before any tap; late mode after delayMs', async () => {
  const instance = randomUUID();
  const network = await client.createNetwork({ name: 'modes' });
  await client.createSubnet({ network_id: network.id, cidr: '10.78.0.0/24', ip_version: 4 });
  const early = await client.createPort({ network_id: network.id });
  const late = await client.createPort({ network_id: network.id });
  await dev('PUT', `/dev/ports/${early.id}/behaviour`, { mode: 'early' });
  await dev('PUT', `/dev/ports/${late.id}/behaviour`, { mode: 'late', delayMs: 600 });
  received = [];
  await new NeutronPortBinder(client).bindPorts(instance, 'compute-1', [early.id, late.id]);
  const ev = await waitFor('early event', () => received[0]);
  assert.deepEqual(ev.body.events, [
    { server_uuid: instance, name: 'network-vif-plugged', status: 'completed', tag: early.id },
  ]);
  assert.equal((await client.showPort(early.id)).status, 'DOWN', 'no tap yet');

  plugTap(early.id);
  const t0 = Date.now();
  plugTap(late.id);
  await waitFor('early port ACTIVE', async () =>
    (await client.showPort(early.id)).status === 'ACTIVE' ? true : undefined,
  );
  const lateEv = await waitFor('late event', () => received[1], 5000);
  assert.ok(Date.now() - t0 >= 550, `late event after ${Date.now() - t0} ms`);
  assert.deepEqual(lateEv.body.events, [
    { server_uuid: instance, name: 'network-vif-plugged', status: 'completed', tag: late.id },
  ]);
  assert.equal(received.length, 2, 'the early port sent no second event when its tap appeared');
  unplugTap(tapName(early.id));
  unplugTap(tapName(late.id));
});

test('state survives a restart when NT_NEUTRON_STATE is set', async () => {
  const statePath = join(stateDir, 'state.json');
  const first = await startNeutronDevServer({ port: 0, token: 't', statePath, watchOvs: false, logger: silent });
  const c1 = new NeutronClient({ url: first.url, auth: { token: 't' } });
  const net = await c1.createNetwork({ name: 'kept' });
  await c1.createSubnet({ network_id: net.id, cidr: '10.79.0.0/24', ip_version: 4 });
  const port = await c1.createPort({ network_id: net.id });
  await first.close();

  const second = await startNeutronDevServer({ port: 0, token: 't', statePath, watchOvs: false, logger: silent });
  try {
    const c2 = new NeutronClient({ url: second.url, auth: { token: 't' } });
    const again = await c2.showPort(port.id);
    assert.equal(again.mac_address, port.mac_address);
    assert.equal((await c2.createPort({ network_id: net.id })).fixed_ips[0]!.ip_address, '10.79.0.3');
  } finally {
    await second.close();
  }
});
