import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import proto from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { Vif } from '../../src/domain/network-model.js';
import { workflowsPath } from '../../src/temporal.js';
import {
  CONTROL_PLANE_TASK_QUEUE,
  computeTaskQueue,
  POWER_ON_WORKFLOW_TYPE,
  type PowerOnInput,
  type PowerOnProgress,
} from '../../src/workflows/definitions.js';
import { repoRoot } from '../support/temporal-cli.js';

// The default 300 s vif_plugging_timeout as a durable timer, on Temporal's
// time-skipping test server: the workflow logic alone, with recording stand-ins
// for the activities (the real ones are covered by networking.test.ts).

let env: TestWorkflowEnvironment;

before(async () => {
  const server = execFileSync('bash', [path.join(repoRoot, 'scripts/temporal-cli.sh'), '--test-server'], {
    encoding: 'utf8',
  }).trim();
  env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: server } },
  });
  // The time-skipping server takes no search attributes at start: register them first.
  const KEYWORD = proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: { InstanceUuid: KEYWORD, ComputeHost: KEYWORD, PowerOnStep: KEYWORD },
  });
});
after(async () => {
  await env?.teardown();
});

const vif = { id: '6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f', active: false } as Vif;

async function run(input: Partial<PowerOnInput>, calls: string[]) {
  const record = (name: string) => async () => {
    calls.push(name);
  };
  const host = 'ts-host';
  const controlPlane = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: CONTROL_PLANE_TASK_QUEUE,
    workflowsPath,
    activities: {
      beginPowerOn: async () => ({
        uuid: 'b0e5c3a2-1d4f-4e6a-9b8c-7d6e5f4a3b2c',
        name: 'ts',
        host,
        flavor: { vcpus: 1, ramMb: 64, diskGb: 1 },
        imageRef: 'img',
        ports: [vif.id],
      }),
      getNetworkInfo: async () => [vif],
      finishPowerOn: record('finishPowerOn'),
      revertPowerOn: record('revertPowerOn'),
    },
  });
  const compute = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: computeTaskQueue(host),
    activities: Object.fromEntries(
      [
        'destroyGuest',
        'writeDomainXml',
        'createBacking',
        'plugVifs',
        'unplugVifs',
        'applyFirewall',
        'removeFirewall',
        'createDomain',
        'powerOffDomain',
        'resumeDomain',
        'waitUntilRunning',
      ].map((n) => [n, record(n)]),
    ),
  });
  const workflowId = `ts-${Math.random().toString(16).slice(2)}`;
  const args: PowerOnInput = {
    instanceUuid: 'b0e5c3a2-1d4f-4e6a-9b8c-7d6e5f4a3b2c',
    requestId: 'req-ts',
    host,
    vifPluggingTimeout: 300,
    vifPluggingIsFatal: true,
    waitForVifPlugged: 'inactive',
    hostUnavailableTimeout: 600,
    ...input,
  };
  return controlPlane.runUntil(
    compute.runUntil(async () => {
      const handle = await env.client.workflow.start(POWER_ON_WORKFLOW_TYPE, {
        workflowId,
        taskQueue: CONTROL_PLANE_TASK_QUEUE,
        args: [args],
      });
      const outcome = await handle.result().then(
        () => null,
        (err: unknown) => err,
      );
      return { outcome, progress: await handle.query<PowerOnProgress>('progress') };
    }),
  );
}

test('no event in 300 s: the durable timer fires and the power-on is compensated', async () => {
  const calls: string[] = [];
  const { outcome, progress } = await run({}, calls);
  assert.ok(outcome instanceof WorkflowFailedError);
  assert.ok(outcome.cause instanceof ApplicationFailure);
  assert.equal(outcome.cause.type, 'VirtualInterfacePlugTimeout');
  const wait = progress.steps.find((s) => s.name === 'waitForVifPlugged')!;
  // Measured on the workflow clock, which the test server skipped forward.
  assert.ok(wait.durationMs! >= 300_000 && wait.durationMs! < 301_000, `waited ${wait.durationMs} ms`);
  assert.deepEqual(
    calls.filter((c) => ['powerOffDomain', 'removeFirewall', 'unplugVifs', 'revertPowerOn'].includes(c)),
    ['powerOffDomain', 'removeFirewall', 'unplugVifs', 'revertPowerOn'],
  );
  assert.ok(!calls.includes('resumeDomain'));
});

test('wait_for_vif_plugged none: no timer, the guest is started running', async () => {
  const calls: string[] = [];
  const { outcome, progress } = await run({ waitForVifPlugged: 'none' }, calls);
  assert.equal(outcome, null);
  assert.ok(!progress.steps.some((s) => s.name === 'waitForVifPlugged'));
  assert.ok(calls.includes('finishPowerOn'));
});
