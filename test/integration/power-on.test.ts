import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { baseImagePath, domainXmlPath, instanceDiskPath } from '../../src/domain/image-cache.js';
import { powerOnWorkflowId } from '../../src/workflows/definitions.js';
import { destroyDomains, startStack, type TestStack } from '../support/stack.js';

// Foundation: power-on through the HTTP API on the real Temporal dev server,
// real libvirtd/QEMU and real qemu-img.

const VIR_DOMAIN_RUNNING = 1;
let stack: TestStack;
const created: string[] = [];

before(async () => {
  stack = await startStack();
});

after(async () => {
  if (stack) {
    await destroyDomains(stack, created);
    await stack.stop();
  }
});

async function register(flavor = { vcpus: 1, ram: 64, disk: 1 }, name = 'test-server'): Promise<string> {
  const id = randomUUID();
  created.push(id);
  const res = await stack.api('POST', '/servers', {
    server: { id, name, flavor, imageRef: stack.imageId, networks: [] },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.equal(res.body.server.status, 'SHUTOFF');
  return id;
}

async function powerOn(id: string): Promise<unknown> {
  const res = await stack.api('POST', `/servers/${id}/action`, { 'os-start': null });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  assert.match(res.headers.get('x-openstack-request-id') ?? '', /^req-[0-9a-f-]{36}$/);
  return stack.env.client.workflow.getHandle(powerOnWorkflowId(id)).result();
}

function qemuImgInfo(file: string): { format: string; 'full-backing-filename'?: string } {
  return JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', file], { encoding: 'utf8' }));
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

test('a registered stopped instance powers on through the HTTP API', async () => {
  const id = await register();
  await powerOn(id);

  const guest = await stack.host.getGuest(id);
  assert.ok(guest, 'the domain exists in libvirt under the instance uuid');
  assert.equal(await guest.getState(), VIR_DOMAIN_RUNNING);

  const disk = instanceDiskPath(stack.config.instances_path, id);
  const info = qemuImgInfo(disk);
  assert.equal(info.format, 'qcow2');
  assert.equal(info['full-backing-filename'], baseImagePath(stack.config.instances_path, stack.imageId));
  assert.ok(existsSync(domainXmlPath(stack.config.instances_path, id)), 'libvirt.xml is on disk');

  const show = await stack.api('GET', `/servers/${id}`);
  assert.equal(show.status, 200);
  assert.equal(show.body.server.status, 'ACTIVE');
  assert.equal(show.body.server['OS-EXT-STS:vm_state'], 'active');
  assert.equal(show.body.server['OS-EXT-STS:task_state'], null);
  assert.equal(show.body.server['OS-EXT-STS:power_state'], 1);

  const actions = await stack.api('GET', `/servers/${id}/os-instance-actions`);
  assert.equal(actions.body.instanceActions.length, 1);
  assert.equal(actions.body.instanceActions[0].action, 'start');
  const detail = await stack.api(
    'GET',
    `/servers/${id}/os-instance-actions/${actions.body.instanceActions[0].request_id}`,
  );
  const events = detail.body.instanceAction.events.map((e: { event: string }) => e.event);
  assert.ok(events.includes('compute_createDomain'), JSON.stringify(events));

  // A second power-on of the running instance is refused and changes nothing.
  const before = (await stack.store.getInstance(id))!;
  const again = await stack.api('POST', `/servers/${id}/action`, { 'os-start': null });
  assert.equal(again.status, 409);
  assert.match(again.body.conflictingRequest.message, /vm_state active/);
  assert.deepEqual(await stack.store.getInstance(id), before);
  assert.equal(await (await stack.host.getGuest(id))!.getState(), VIR_DOMAIN_RUNNING);

  // Prometheus scrapes with a bearer token; the histogram counted this power-on.
  const metrics = await fetch(stack.apiUrl.replace(/\/v2\.1$/, '/metrics'), {
    headers: { authorization: `Bearer ${stack.token}` },
  });
  assert.equal(metrics.status, 200);
  assert.match(await metrics.text(), /nova_temporal_power_on_duration_seconds_count\{outcome="succeeded"\} 1\b/);
});

test('a domain left running for a stopped instance is destroyed first', async () => {
  const id = await register();
  const stale =
    `<domain type='kvm'><name>stale-${id}</name><uuid>${id}</uuid><memory unit='MiB'>32</memory>` +
    `<vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>` +
    `<devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices></domain>`;
  const leftover = await stack.host.writeInstanceConfig(stale);
  await leftover.launch(false);
  assert.equal(await leftover.getState(), VIR_DOMAIN_RUNNING);

  await powerOn(id);
  const guest = await stack.host.getGuest(id);
  assert.equal(guest?.name, `instance-${id}`, 'the stale definition was replaced');
  assert.equal(await guest!.getState(), VIR_DOMAIN_RUNNING);
  assert.equal((await stack.store.getInstance(id))!.vmState, 'active');
});

test('a domain libvirt rejects fails typed, compensates, and keeps the disk byte for byte', async () => {
  // 4096 vCPUs is above the pc machine's limit: libvirt refuses the definition.
  const id = await register({ vcpus: 4096, ram: 64, disk: 1 }, 'too-big');
  // A disk that exists already is user data: createBacking must keep it as it is.
  const disk = instanceDiskPath(stack.config.instances_path, id);
  mkdirSync(`${stack.config.instances_path}/${id}`, { recursive: true });
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '16M']);
  execFileSync('qemu-io', ['-c', 'write -P 0x5a 0 1M', disk], { stdio: 'ignore' });
  const checksum = sha256(disk);

  await assert.rejects(powerOn(id), (err: unknown) => {
    assert.ok(err instanceof WorkflowFailedError);
    assert.ok(err.cause instanceof ApplicationFailure);
    assert.equal(err.cause.type, 'DomainXmlRejected');
    assert.equal(err.cause.nonRetryable, true);
    return true;
  });

  const record = (await stack.store.getInstance(id))!;
  assert.equal(record.vmState, 'stopped');
  assert.equal(record.taskState, null);
  assert.match(record.fault?.message ?? '', /DomainXmlRejected/);
  const show = await stack.api('GET', `/servers/${id}`);
  assert.equal(show.body.server.status, 'SHUTOFF');
  assert.ok(show.body.server.fault);

  assert.equal(await stack.host.getGuest(id), null, 'no domain is left defined');
  assert.equal(sha256(disk), checksum, 'the disk is untouched');

  const progress = await stack.env.client.workflow.getHandle(powerOnWorkflowId(id)).query('progress');
  const undone = (progress as { compensations: { name: string }[] }).compensations.map((c) => c.name);
  assert.deepEqual(undone, ['powerOffDomain', 'removeFirewall', 'unplugVifs']);

  // Once the cause is fixed the same instance may be powered on again (a new run).
  const retry = await stack.api('POST', `/servers/${id}/action`, { 'os-start': null });
  assert.equal(retry.status, 202);
  await assert.rejects(stack.env.client.workflow.getHandle(powerOnWorkflowId(id)).result());
});
