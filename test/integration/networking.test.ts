import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { instanceDiskPath } from '../../src/domain/image-cache.js';
import { hybridDeviceNames, tapName } from '../../src/domain/network-model.js';
import { powerOnWorkflowId, type PowerOnProgress } from '../../src/workflows/definitions.js';
import { recordHistory } from '../support/histories.js';
import { startNetworkedStack, type NetworkedStack } from '../support/networked-stack.js';
import type { TestStack } from '../support/stack.js';

// _create_domain_and_network on real parts: the Neutron dev server plays the L2
// agent and nova notifier, OVS and nftables plug and filter, libvirt starts the
// guest paused until network-vif-plugged arrives as a signal.

const VIR_DOMAIN_RUNNING = 1;
const VIR_DOMAIN_PAUSED = 3;

let ns: NetworkedStack;
let stack: TestStack;

before(async () => {
  ns = await startNetworkedStack();
  stack = ns.stack;
});

after(async () => {
  await ns?.stop();
});

const behaviour = (portId: string, mode: string, delayMs?: number) => ns.behaviour(portId, mode, delayMs);
const registerWithPorts = (count: number, mode = 'normal', delayMs?: number) => ns.register(count, { mode, delayMs });

const handle = (id: string) => stack.env.client.workflow.getHandle(powerOnWorkflowId(id));

async function start(id: string): Promise<void> {
  const res = await stack.api('POST', `/servers/${id}/action`, { 'os-start': null });
  assert.equal(res.status, 202, JSON.stringify(res.body));
}

function ovsInterface(name: string): Record<string, string> | null {
  try {
    const out = execFileSync('ovs-vsctl', ['--format=json', '--columns=external_ids', 'list', 'Interface', name], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const [[, pairs]] = JSON.parse(out).data[0] as [[string, [string, string][]]];
    return Object.fromEntries(pairs);
  } catch {
    return null;
  }
}

const nftTables = (): string => execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' });
const deviceExists = (dev: string) => existsSync(`/sys/class/net/${dev}`);
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 15000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The host holds nothing of this instance: no running guest, tap, bridge, OVS port or nft table. */
async function assertNothingLeft(id: string, portIds: string[]): Promise<void> {
  const guest = await stack.host.getGuest(id);
  assert.ok(!guest || !(await guest.isActive()), 'no guest is running');
  for (const p of portIds) {
    const { qbr, qvb, qvo } = hybridDeviceNames(p);
    for (const dev of [tapName(p), qbr, qvb, qvo]) assert.equal(deviceExists(dev), false, `${dev} is gone`);
    assert.equal(ovsInterface(qvo), null, `OVS port ${qvo} is gone`);
  }
  assert.ok(!nftTables().includes(`nt-${id}`), 'the nft tables are gone');
}

test('two ports: started paused, resumed when both vifs are plugged', async () => {
  // The agent reports the ports 1.5 s after their taps appear, so the paused guest can be seen.
  const { id, ports } = await registerWithPorts(2, 'late', 1500);
  await start(id);

  const waiting = await until('the wait for vif events', async () => {
    const p = await handle(id).query<PowerOnProgress>('progress');
    return p.step === 'waitForVifPlugged' ? p : undefined;
  });
  assert.deepEqual([...waiting.portsAwaited].sort(), ports.map((p) => p.id).sort());
  assert.equal(await (await stack.host.getGuest(id))!.getState(), VIR_DOMAIN_PAUSED, 'guest waits paused');
  const desc = await handle(id).describe();
  assert.equal(desc.searchAttributes.PowerOnStep?.[0], 'waitForVifPlugged');

  await handle(id).result();
  assert.equal(await (await stack.host.getGuest(id))!.getState(), VIR_DOMAIN_RUNNING);
  const server = (await stack.api('GET', `/servers/${id}`)).body.server;
  assert.equal(server['OS-EXT-STS:vm_state'], 'active');
  assert.equal(server['OS-EXT-STS:task_state'], null);

  const tables = execFileSync('nft', ['list', 'table', 'bridge', `nt-${id}`], { encoding: 'utf8' });
  for (const port of ports) {
    const { qvo } = hybridDeviceNames(port.id);
    assert.deepEqual(
      { ...ovsInterface(qvo) },
      {
        'attached-mac': port.mac_address,
        'iface-id': port.id,
        'iface-status': 'active',
        'vm-uuid': id,
      },
    );
    assert.ok(deviceExists(tapName(port.id)));
    // Anti-spoofing: only the port's MAC and fixed IP pass; everything else hits the counted drop.
    assert.match(
      tables,
      new RegExp(`ether saddr ${port.mac_address} ip saddr ${port.fixed_ips[0]!.ip_address} accept`),
    );
    assert.match(
      tables,
      new RegExp(`counter packets \\d+ bytes \\d+ drop comment "${tapName(port.id)}: spoofed source"`),
    );
  }
  const progress = await handle(id).query<PowerOnProgress>('progress');
  assert.deepEqual([...progress.portsReceived].sort(), ports.map((p) => p.id).sort());
  assert.equal(progress.compensations.length, 0);
  recordHistory(stack.env.address, powerOnWorkflowId(id), 'two-ports-happy-path');
});

test('an event sent before the workflow reaches the wait is not lost', async () => {
  const { id, ports } = await registerWithPorts(1, 'silent');
  await start(id);
  // Sent by hand right after os-start, long before plugVifs or the wait.
  const sent = await stack.api('POST', '/os-server-external-events', {
    events: [{ server_uuid: id, name: 'network-vif-plugged', status: 'completed', tag: ports[0]!.id }],
  });
  assert.equal(sent.status, 200);
  assert.equal(sent.body.events[0].code, 200);
  await handle(id).result();
  recordHistory(stack.env.address, powerOnWorkflowId(id), 'event-before-wait');
  const progress = await handle(id).query<PowerOnProgress>('progress');
  const wait = progress.steps.find((s) => s.name === 'waitForVifPlugged')!;
  assert.ok(Date.parse(progress.events[0]!.receivedAt) < Date.parse(wait.startedAt), 'event came first');
  assert.ok(wait.durationMs! < 1000, `no timeout was waited for (${wait.durationMs} ms)`);
  assert.equal(await (await stack.host.getGuest(id))!.getState(), VIR_DOMAIN_RUNNING);
});

async function expectCleanFailure(id: string, portIds: string[], type: string): Promise<void> {
  const disk = instanceDiskPath(stack.config.instances_path, id);
  await assert.rejects(handle(id).result(), (err: unknown) => {
    assert.ok(err instanceof WorkflowFailedError);
    assert.ok(err.cause instanceof ApplicationFailure);
    assert.equal(err.cause.type, type);
    return true;
  });
  await assertNothingLeft(id, portIds);
  const record = (await stack.store.getInstance(id))!;
  assert.equal(record.vmState, 'stopped');
  assert.equal(record.taskState, null);
  assert.match(record.fault?.message ?? '', new RegExp(type));
  assert.ok(existsSync(disk), 'the disk is kept');
  const progress = await handle(id).query<PowerOnProgress>('progress');
  assert.deepEqual(
    progress.compensations.map((c) => [c.name, c.result]),
    [
      ['powerOffDomain', 'Success'],
      ['removeFirewall', 'Success'],
      ['unplugVifs', 'Success'],
    ],
  );
}

test('a failed vif event compensates and leaves nothing behind but the disk', async () => {
  const { id, ports } = await registerWithPorts(2, 'normal');
  await behaviour(ports[1]!.id, 'failed');
  await start(id);
  const disk = instanceDiskPath(stack.config.instances_path, id);
  await until('the disk', async () => (existsSync(disk) ? true : undefined));
  await until('the wait', async () => {
    const p = await handle(id).query<PowerOnProgress>('progress');
    return p.steps.some((s) => s.name === 'createDomain' && s.result) ? true : undefined;
  });
  const checksum = sha256(disk);
  await expectCleanFailure(
    id,
    ports.map((p) => p.id),
    'VirtualInterfaceCreateException',
  );
  assert.equal(sha256(disk), checksum, 'the disk is byte for byte what it was');
  recordHistory(stack.env.address, powerOnWorkflowId(id), 'failed-vif-event');
});

test('a plugging timeout with vif_plugging_is_fatal compensates', async () => {
  stack.config.vif_plugging_timeout = 2;
  try {
    const { id, ports } = await registerWithPorts(1, 'silent');
    await start(id);
    await expectCleanFailure(
      id,
      ports.map((p) => p.id),
      'VirtualInterfacePlugTimeout',
    );
    recordHistory(stack.env.address, powerOnWorkflowId(id), 'vif-plugging-timeout-fatal');
  } finally {
    stack.config.vif_plugging_timeout = 20;
  }
});

test('a plugging timeout without vif_plugging_is_fatal resumes the guest anyway', async () => {
  stack.config.vif_plugging_timeout = 2;
  stack.config.vif_plugging_is_fatal = false;
  try {
    const { id } = await registerWithPorts(1, 'silent');
    await start(id);
    await handle(id).result();
    assert.equal(await (await stack.host.getGuest(id))!.getState(), VIR_DOMAIN_RUNNING);
    const server = (await stack.api('GET', `/servers/${id}`)).body.server;
    assert.equal(server.status, 'ACTIVE');
    const progress = await handle(id).query<PowerOnProgress>('progress');
    assert.equal(progress.portsReceived.length, 0);
  } finally {
    stack.config.vif_plugging_timeout = 20;
    stack.config.vif_plugging_is_fatal = true;
  }
});

test('registration refuses a port bound to another instance and registers nothing', async () => {
  const { ports } = await registerWithPorts(1, 'normal');
  const id = randomUUID();
  const res = await stack.api('POST', '/servers', {
    server: {
      id,
      name: 'thief',
      flavor: { vcpus: 1, ram: 64, disk: 1 },
      imageRef: stack.imageId,
      networks: [{ port: ports[0]!.id }],
    },
  });
  assert.equal(res.status, 400);
  assert.match(res.body.badRequest.message, new RegExp(ports[0]!.id));
  assert.equal((await stack.api('GET', `/servers/${id}`)).status, 404);
});
