import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createHostActivities } from '../../src/activities/index.js';
import { baseImagePath, instanceDiskPath } from '../../src/domain/image-cache.js';
import { tapName } from '../../src/domain/network-model.js';
import { ImageSource } from '../../src/host/image-source.js';
import { Host } from '../../src/libvirt/host.js';
import { NeutronClient } from '../../src/neutron/client.js';
import { POWER_ON_STEPS, powerOnWorkflowId, type PowerOnProgress } from '../../src/workflows/definitions.js';
import { recordHistory } from '../support/histories.js';
import { startProcessStack, type Part, type ProcessStack } from '../support/process-stack.js';

// The crash suite: real processes killed with SIGKILL at every step of the
// power-on, then started again. Each power-on must end exactly as an
// uninterrupted one: one running guest, one tap and OVS port per vif, one set of
// nft tables, the disk's data intact, no temp files, the record active.

const VIR_DOMAIN_RUNNING = 1;
// Every step that runs on the compute host.
const HOST_STEPS = POWER_ON_STEPS.filter(
  (s) => !['beginPowerOn', 'getNetworkInfo', 'waitForVifPlugged', 'finishPowerOn'].includes(s),
);
const CONTROL_PLANE_POINTS = ['beginPowerOn:after', 'getNetworkInfo:after', 'finishPowerOn:before'];

let stack: ProcessStack;
let neutron: NeutronClient;
let host: Host;
let networkId: string;
const instances: string[] = [];
const tally = { injected: 0, clean: 0 };

before(async () => {
  stack = await startProcessStack({ NT_HOST_UNAVAILABLE_TIMEOUT: '8' });
  await stack.start('temporal');
  await stack.startNeutron();
  await stack.start('api');
  await stack.start('compute');
  neutron = new NeutronClient({ url: stack.env.NT_NEUTRON_URL!, auth: { token: stack.token } });
  const net = await neutron.createNetwork({ name: 'crash-net' });
  await neutron.createSubnet({ network_id: net.id, cidr: '10.88.0.0/24', ip_version: 4 });
  networkId = net.id;
  host = new Host('qemu:///system');
});

after(async () => {
  console.log(`crash suite: ${tally.injected} crash points injected, ${tally.clean} ended clean`);
  if (!stack) return;
  const activities = createHostActivities({
    host,
    instancesPath: stack.env.NT_INSTANCES_PATH!,
    virtType: 'kvm',
    images: new ImageSource(stack.env.NT_IMAGES_PATH!),
    integrationBridge: 'br-int',
    firewallDriver: 'nftables',
  });
  for (const id of instances) await activities.cleanupInstance({ instanceUuid: id, portIds: [] });
  await host.close();
  await stack.stop();
});

async function api(method: string, url: string, body?: unknown) {
  const res = await fetch(`${stack.apiUrl}${url}`, {
    method,
    headers: { 'x-auth-token': stack.token, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function behaviour(portId: string, mode: string, delayMs?: number) {
  await fetch(`${stack.env.NT_NEUTRON_URL}/dev/ports/${portId}/behaviour`, {
    method: 'PUT',
    headers: { 'x-auth-token': stack.token, 'content-type': 'application/json' },
    body: JSON.stringify({ mode, ...(delayMs ? { delayMs } : {}) }),
  });
}

/** Registers an instance with one port and a disk holding 1 MiB of a known pattern. */
async function register(opts: { withDisk: boolean; hostName?: string; mode?: string; delayMs?: number }) {
  const port = await neutron.createPort({ network_id: networkId });
  if (opts.mode) await behaviour(port.id, opts.mode, opts.delayMs);
  const id = randomUUID();
  instances.push(id);
  if (opts.withDisk) {
    const disk = instanceDiskPath(stack.env.NT_INSTANCES_PATH!, id);
    mkdirSync(path.dirname(disk), { recursive: true });
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '16M']);
    execFileSync('qemu-io', ['-c', 'write -P 0x5a 0 1M', disk], { stdio: 'ignore' });
  }
  const res = await api('POST', '/servers', {
    server: {
      id,
      name: 'crash',
      flavor: { vcpus: 1, ram: 64, disk: 1 },
      imageRef: stack.imageId,
      networks: [{ port: port.id }],
      ...(opts.hostName ? { 'OS-EXT-SRV-ATTR:host': opts.hostName } : {}),
    },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return { id, portId: port.id };
}

async function powerOn(id: string): Promise<void> {
  const res = await api('POST', `/servers/${id}/action`, { 'os-start': null });
  assert.equal(res.status, 202, JSON.stringify(res.body));
}

async function result(id: string): Promise<unknown> {
  return (await stack.client()).workflow.getHandle(powerOnWorkflowId(id)).result();
}

async function progress(id: string): Promise<PowerOnProgress> {
  return (await stack.client()).workflow.getHandle(powerOnWorkflowId(id)).query<PowerOnProgress>('progress');
}

function ovsPortsOf(id: string): string[] {
  const out = execFileSync(
    'ovs-vsctl',
    ['--format=json', '--columns=name', 'find', 'Interface', `external_ids:vm-uuid=${id}`],
    { encoding: 'utf8' },
  );
  return (JSON.parse(out).data as [string][]).map(([name]) => name);
}

function tempFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.tmp'));
}

/** Everything an uninterrupted power-on leaves, exactly once. */
async function assertConverged(id: string, portId: string, withDisk: boolean): Promise<void> {
  const guest = await host.getGuest(id);
  assert.ok(guest, 'the guest exists');
  assert.equal(await guest.getState(), VIR_DOMAIN_RUNNING, 'the guest runs');
  assert.ok(existsSync(`/sys/class/net/${tapName(portId)}`), 'the tap exists');
  assert.equal(ovsPortsOf(id).length, 1, 'exactly one OVS port carries the instance');
  const tables = execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' });
  assert.equal(tables.split('\n').filter((l) => l.endsWith(` nt-${id}`)).length, 2, 'one bridge + one inet table');
  const disk = instanceDiskPath(stack.env.NT_INSTANCES_PATH!, id);
  if (withDisk) {
    // Reads the pattern written before the power-on, sharing the running guest's image.
    execFileSync('qemu-io', ['-r', '-U', '-c', 'read -P 0x5a 0 1M', disk], { stdio: 'ignore' });
  } else {
    const base = baseImagePath(stack.env.NT_INSTANCES_PATH!, stack.imageId);
    const info = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', disk], { encoding: 'utf8' }));
    assert.equal(info['full-backing-filename'], base);
    const meta = JSON.parse(readFileSync(path.join(stack.env.NT_IMAGES_PATH!, `${stack.imageId}.json`), 'utf8'));
    assert.equal(createHash('sha256').update(readFileSync(base)).digest('hex'), meta.os_hash_value, 'base intact');
  }
  assert.deepEqual(tempFiles(stack.env.NT_INSTANCES_PATH!), [], 'no temp files');
  const server = (await api('GET', `/servers/${id}`)).body.server;
  assert.equal(server['OS-EXT-STS:vm_state'], 'active');
  assert.equal(server['OS-EXT-STS:task_state'], null);
  assert.equal(server['OS-EXT-STS:power_state'], 1);
}

async function crashAndRecover(part: Part, failpoint: string, withDisk: boolean): Promise<void> {
  const { id, portId } = await register({ withDisk });
  await stack.kill(part);
  await stack.start(part, { NT_FAILPOINT: failpoint });
  await powerOn(id);
  tally.injected++;
  const code = await Promise.race([
    stack.exited(part),
    new Promise((_, reject) => setTimeout(() => reject(new Error(`failpoint ${failpoint} never hit`)), 60_000)),
  ]);
  assert.equal(code, null, 'killed by a signal');
  await stack.start(part);
  await result(id);
  await assertConverged(id, portId, withDisk);
  if (failpoint === 'createDomain:after')
    recordHistory(stack.env.NT_TEMPORAL_ADDRESS!, powerOnWorkflowId(id), 'crash-after-create-domain');
  tally.clean++;
}

describe('compute worker killed', () => {
  for (const step of HOST_STEPS) {
    for (const when of ['before', 'after']) {
      test(`${when} ${step}`, async () => {
        await crashAndRecover('compute', `${step}:${when}`, step !== 'createBacking');
      });
    }
  }
});

describe('control plane killed', () => {
  for (const point of CONTROL_PLANE_POINTS) {
    test(point, async () => {
      await crashAndRecover('api', point, true);
    });
  }
});

test('the Temporal dev server killed while the power-on waits for vif events', async () => {
  const { id, portId } = await register({ withDisk: true, mode: 'late', delayMs: 5000 });
  await powerOn(id);
  for (;;) {
    if ((await progress(id)).step === 'waitForVifPlugged') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  tally.injected++;
  await stack.kill('temporal');
  await stack.start('temporal');
  await result(id);
  await assertConverged(id, portId, true);
  tally.clean++;
});

test('libvirtd killed and started again while the guest waits paused', async () => {
  const { id, portId } = await register({ withDisk: true, mode: 'late', delayMs: 3000 });
  await powerOn(id);
  for (;;) {
    if ((await progress(id)).step === 'waitForVifPlugged') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  tally.injected++;
  const pid = Number(readFileSync('/run/libvirtd.pid', 'utf8').trim());
  process.kill(pid, 'SIGKILL');
  for (
    let i = 0;
    i < 100 && existsSync(`/proc/${pid}/stat`) && !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    i++
  ) {
    await new Promise((r) => setTimeout(r, 50));
  }
  execFileSync('bash', [path.resolve(import.meta.dirname, '../../../scripts/host-setup.sh')], { stdio: 'ignore' });
  await result(id);
  await assertConverged(id, portId, true);
  tally.clean++;
});

test('Neutron unreachable for a while: getNetworkInfo retries, then succeeds', async () => {
  const { id, portId } = await register({ withDisk: true });
  await stack.stopNeutron();
  await powerOn(id);
  tally.injected++;
  await new Promise((r) => setTimeout(r, 4000));
  const during = await progress(id);
  assert.equal(during.step, 'getNetworkInfo', 'the power-on waits on Neutron');
  await stack.startNeutron();
  await result(id);
  await assertConverged(id, portId, true);
  tally.clean++;
});

test('a compute host that stays down ends in compensation with a clear fault', async () => {
  const { id } = await register({ withDisk: true, hostName: 'host-that-is-down' });
  await powerOn(id);
  tally.injected++;
  await assert.rejects(result(id));
  const server = (await api('GET', `/servers/${id}`)).body.server;
  assert.equal(server['OS-EXT-STS:vm_state'], 'stopped');
  assert.equal(server['OS-EXT-STS:task_state'], null);
  assert.match(server.fault.message, /ComputeHostUnavailable/);
  tally.clean++;
});
