import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { POWER_ON_STEPS } from '../../src/workflows/definitions.js';
import { startNetworkedStack, type NetworkedStack } from '../support/networked-stack.js';
import { repoRoot } from '../support/temporal-cli.js';

// computectl drives a whole power-on through the HTTP API and the Temporal client.

let ns: NetworkedStack;
const cli = path.join(repoRoot, 'dist/src/cli/computectl.js');

before(async () => {
  ns = await startNetworkedStack({}, '10.55.0.0/24');
});
after(async () => {
  await ns?.stop();
});

/** Runs computectl as a child process; async, because the API it calls lives in this process. */
function computectl(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = {
    PATH: process.env.PATH,
    NT_STATE_DIR: '/nonexistent',
    NT_API_URL: ns.stack.apiUrl,
    NT_API_TOKEN: ns.stack.token,
    NT_TEMPORAL_ADDRESS: ns.stack.env.address,
    NT_IMAGES_PATH: ns.stack.config.images_path,
  };
  return new Promise((resolve) => {
    execFile('node', [cli, ...args], { env, timeout: 120_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

test('register, start --watch, show, actions: a full power-on from the CLI', async () => {
  const port = await ns.client.createPort({ network_id: ns.networkId });
  // Reported 3 s after its tap appears: long enough for watch's 200 ms polls to see the wait.
  await ns.behaviour(port.id, 'late', 3000);
  const reg = await computectl(
    'register',
    '--name',
    'cli-vm',
    '--image',
    ns.stack.imageId,
    '--ram',
    '64',
    '--port',
    port.id,
    '--json',
  );
  assert.equal(reg.code, 0, reg.stderr);
  const id = JSON.parse(reg.stdout).server.id as string;

  const watched = await computectl('start', id, '--watch');
  assert.equal(watched.code, 0, watched.stderr + watched.stdout);
  for (const step of POWER_ON_STEPS) assert.match(watched.stdout, new RegExp(`\\[ok \\] ${step}\\s+\\d+ ms`), step);
  assert.match(watched.stdout, /waiting for network-vif-plugged: 0\/1 ports/);
  assert.match(watched.stdout, /ACTIVE: cli-vm/);

  const shown = await computectl('show', id, '--json');
  assert.equal(shown.code, 0);
  assert.equal(JSON.parse(shown.stdout).server['OS-EXT-STS:vm_state'], 'active');

  const actions = await computectl('actions', id, '--json');
  const requestId = JSON.parse(actions.stdout).instanceActions[0].request_id as string;
  const detail = await computectl('actions', id, requestId);
  assert.equal(detail.code, 0);
  assert.match(detail.stdout, /compute_createDomain\s+Success/);

  // Already running: a conflict, exit code 4.
  const again = await computectl('start', id);
  assert.equal(again.code, 4);
  assert.match(again.stderr, /409/);
});

test('clear errors and exit codes for bad usage, bad input and unknown servers', async () => {
  const usage = await computectl('frobnicate');
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /unknown command frobnicate/);
  const badInput = await computectl('register', '--name', 'x', '--image', ns.stack.imageId, '--ram', 'lots');
  assert.equal(badInput.code, 2);
  assert.match(badInput.stderr, /--ram: expected a whole number/);
  const rejected = await computectl('register', '--name', 'x', '--image', '../etc');
  assert.equal(rejected.code, 2);
  assert.match(rejected.stderr, /imageRef/);
  const missing = await computectl('show', '6f9619ff-8b86-4d01-b42d-00cf4fc964ff');
  assert.equal(missing.code, 3);
  assert.match(missing.stderr, /could not be found/);
});

test('event sends an external event as Neutron would', async () => {
  const { id } = await ns.register(0);
  const sent = await computectl('event', id, 'network-changed', '--tag', 'abc', '--json');
  assert.equal(sent.code, 0, sent.stderr);
  assert.equal(JSON.parse(sent.stdout).events[0].code, 200);
  const noTag = await computectl('event', id, 'network-vif-plugged');
  assert.equal(noTag.code, 1);
  assert.match(noTag.stdout, /400 failed/);
});
