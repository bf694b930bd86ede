import { randomUUID } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { portsToAwait } from '../src/domain/network-model.js';
import type { StepRecord } from '../src/workflows/definitions.js';
import type { BenchStack } from './lib/stack.js';
import { wall } from './lib/util.js';

// The "bare steps" baseline: PowerOnInstance's steps, in its order, as a plain
// sequential script in one process, calling the same adapters (the same
// control-plane and host activity functions) directly: no Temporal, no
// history, no task queues, no retries, no compensation. Neutron's
// network-vif-plugged events reach it over HTTP through an in-process receiver.
// Activity functions that heartbeat need an activity Context; a
// MockActivityEnvironment gives them one (heartbeats go nowhere).

const sdkLogger = new DefaultLogger('WARN');

export interface BareStep {
  name: string;
  /** wall() at the start of the step */
  at: number;
  ms: number;
}

export interface BareResult {
  steps: BareStep[];
  /** wall() when the wait for vif events began (null: no wait) */
  waitBeganAt: number | null;
}

export async function barePowerOn(stack: BenchStack, instanceUuid: string): Promise<BareResult> {
  const cp = stack.bareControlPlane;
  const host = stack.host;
  const config = stack.config;
  const requestId = `req-${randomUUID()}`;
  const steps: BareStep[] = [];
  let waitBeganAt: number | null = null;
  // Subscribed before the first step, as the workflow registers its signal handler before any await.
  const events = stack.bareEvents.subscribe(instanceUuid);
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const at = wall();
    try {
      return await fn();
    } finally {
      steps.push({ name, at, ms: wall() - at });
    }
  };
  const records = (): StepRecord[] =>
    steps.map((s) => ({
      name: s.name,
      startedAt: new Date(s.at).toISOString(),
      finishedAt: new Date(s.at + s.ms).toISOString(),
      durationMs: Math.round(s.ms),
      result: 'Success',
    }));

  const env = new MockActivityEnvironment({ activityType: 'bare' }, { logger: sdkLogger });
  try {
    await env.run(async () => {
      const instance = await step('beginPowerOn', () => cp.beginPowerOn({ instanceUuid, requestId }));
      const networkInfo = await step('getNetworkInfo', () => cp.getNetworkInfo(instance));
      await step('destroyGuest', () => host.destroyGuest({ instanceUuid, networkInfo }));
      await step('writeDomainXml', () => host.writeDomainXml({ instance, networkInfo }));
      await step('createBacking', () =>
        host.createBacking({ instanceUuid, imageRef: instance.imageRef, diskGb: instance.flavor.diskGb }),
      );
      await step('plugVifs', () => host.plugVifs({ instanceUuid, networkInfo }));
      await step('applyFirewall', () => host.applyFirewall({ instanceUuid, networkInfo }));
      const awaited = portsToAwait(networkInfo, config.wait_for_vif_plugged);
      await step('createDomain', () => host.createDomain({ instanceUuid, paused: awaited.length > 0 }));
      if (awaited.length > 0) {
        await step('waitForVifPlugged', () => {
          waitBeganAt = wall();
          return events.waitAll(awaited, config.vif_plugging_timeout * 1000);
        });
      }
      const powerState = await step('resumeDomain', () => host.resumeDomain(instanceUuid));
      // finishPowerOn records the steps so far, as the workflow's does.
      const done = records();
      await step('finishPowerOn', () => cp.finishPowerOn({ instanceUuid, requestId, powerState, steps: done }));
    });
  } finally {
    events.close();
  }
  return { steps, waitBeganAt };
}
