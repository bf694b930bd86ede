import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  TimeoutFailure,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { TimeoutType } from '@temporalio/common';
import type { ControlPlaneActivities, HostActivities } from '../activities/index.js';
import { portsToAwait } from '../domain/network-model.js';
import {
  computeTaskQueue,
  CONTROL_PLANE_TASK_QUEUE,
  instanceEventSignal,
  PowerOnStepKey,
  progressQuery,
  type PowerOnInput,
  type PowerOnResult,
} from './definitions.js';
import { PowerOnJournal } from './journal.js';

/**
 * Nova's start_instance -> _power_on -> _hard_reboot -> _create_domain_and_network,
 * as one durable workflow: each step an idempotent activity, the vif-plugged
 * wait a durable timer. Each undo is registered just before its step runs,
 * because a step that fails half-way must be undone too; every undo is idempotent.
 */
export async function PowerOnInstance(input: PowerOnInput): Promise<PowerOnResult> {
  const journal = new PowerOnJournal(Date.now());
  // Registered before any await: an event that comes before the wait is kept.
  setHandler(instanceEventSignal, (event) => journal.recordEvent(event));
  setHandler(progressQuery, () => journal.progress());

  const controlPlane = proxyActivities<ControlPlaneActivities>({
    taskQueue: CONTROL_PLANE_TASK_QUEUE,
    startToCloseTimeout: '30s',
    retry: { initialInterval: '1s', maximumInterval: '30s' },
  });
  const hostQueue = {
    taskQueue: computeTaskQueue(input.host),
    // A host that never picks the task up fails the step instead of hanging.
    scheduleToStartTimeout: `${input.hostUnavailableTimeout}s`,
    // Host activities heartbeat every second (activity-interceptors.ts): a crashed
    // worker's attempt is retried after this, a slow live one is left alone.
    heartbeatTimeout: `${input.hostHeartbeatTimeout ?? 10}s`,
  } as const;
  const host = proxyActivities<HostActivities>({
    ...hostQueue,
    startToCloseTimeout: '2m',
    retry: { initialInterval: '200ms', maximumInterval: '20s' },
  });
  const hostLong = proxyActivities<HostActivities>({
    ...hostQueue,
    startToCloseTimeout: '30m',
    retry: { initialInterval: '1s', maximumInterval: '30s' },
  });

  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    journal.beginStep(name, Date.now());
    upsertSearchAttributes([{ key: PowerOnStepKey, value: name }]);
    setCurrentDetails(journal.details());
    try {
      const result = await fn();
      journal.endStep(Date.now(), 'Success');
      return result;
    } catch (err) {
      journal.endStep(Date.now(), 'Error', err);
      throw err;
    }
  };

  const { instanceUuid, requestId } = input;
  const compensations: { name: string; undo: () => Promise<void> }[] = [];

  try {
    const instance = await step('beginPowerOn', () => controlPlane.beginPowerOn({ instanceUuid, requestId }));
    const networkInfo = await step('getNetworkInfo', () => controlPlane.getNetworkInfo(instance));

    // _hard_reboot: the old domain goes first, whatever state it was left in.
    await step('destroyGuest', () => host.destroyGuest({ instanceUuid, networkInfo }));
    await step('writeDomainXml', () => host.writeDomainXml({ instance, networkInfo }));
    await step('createBacking', () =>
      hostLong.createBacking({ instanceUuid, imageRef: instance.imageRef, diskGb: instance.flavor.diskGb }),
    );

    compensations.unshift({ name: 'unplugVifs', undo: () => host.unplugVifs({ instanceUuid, networkInfo }) });
    await step('plugVifs', () => host.plugVifs({ instanceUuid, networkInfo }));
    compensations.unshift({ name: 'removeFirewall', undo: () => host.removeFirewall({ instanceUuid, networkInfo }) });
    await step('applyFirewall', () => host.applyFirewall({ instanceUuid, networkInfo }));

    const awaited = portsToAwait(networkInfo, input.waitForVifPlugged);
    compensations.unshift({ name: 'powerOffDomain', undo: () => host.powerOffDomain(instanceUuid) });
    await step('createDomain', () => host.createDomain({ instanceUuid, paused: awaited.length > 0 }));

    if (awaited.length > 0) {
      await step('waitForVifPlugged', async () => {
        journal.awaitPorts(awaited, Date.now() + input.vifPluggingTimeout * 1000);
        setCurrentDetails(journal.details());
        const arrived = await condition(
          () => journal.allPlugged() || journal.anyFailed(),
          input.vifPluggingTimeout * 1000,
        );
        if (journal.anyFailed()) {
          throw ApplicationFailure.nonRetryable(
            `network-vif-plugged failed for port(s) ${journal.failedPorts().join(', ')}`,
            'VirtualInterfaceCreateException',
          );
        }
        if (!arrived) {
          const missing = journal.missingPorts().join(', ');
          if (input.vifPluggingIsFatal) {
            throw ApplicationFailure.nonRetryable(
              `Timeout waiting for network-vif-plugged for port(s) ${missing}`,
              'VirtualInterfacePlugTimeout',
            );
          }
          log.warn('Timeout waiting for vif plugging callback; continuing (vif_plugging_is_fatal=false)', {
            instanceUuid,
            missing,
          });
        }
      });
    }

    let powerState: number;
    if (patched('resume-waits-until-running')) {
      // One activity round trip less: resumeDomain returns once the guest runs.
      powerState = await step('resumeDomain', () => host.resumeDomain(instanceUuid));
    } else {
      await step('resumeDomain', () => host.resumeDomain(instanceUuid));
      powerState = await step('waitUntilRunning', () => host.waitUntilRunning(instanceUuid));
    }
    await step('finishPowerOn', () =>
      controlPlane.finishPowerOn({ instanceUuid, requestId, powerState, steps: journal.steps() }),
    );
    journal.finish('succeeded');
    setCurrentDetails(journal.details());
    return { instanceUuid, powerState, steps: journal.steps() };
  } catch (err) {
    // Newest first; one failed undo never stops the others or hides the cause.
    for (const { name, undo } of compensations) {
      const startedAt = Date.now();
      try {
        await undo();
        journal.recordCompensation(name, startedAt, Date.now(), 'Success');
      } catch (undoErr) {
        journal.recordCompensation(name, startedAt, Date.now(), 'Error', undoErr);
        log.error('compensation failed', { instanceUuid, compensation: name, error: String(undoErr) });
      }
    }
    if (journal.begun()) {
      await controlPlane
        .revertPowerOn({ instanceUuid, requestId, error: describe(err), steps: journal.steps() })
        .catch((revertErr) => log.error('revert failed', { instanceUuid, error: String(revertErr) }));
    }
    journal.finish('failed');
    setCurrentDetails(journal.details());
    const failure = describe(err);
    log.error('power-on failed', { instanceUuid, workflowId: workflowInfo().workflowId, ...failure });
    throw ApplicationFailure.create({ ...failure, nonRetryable: true, cause: err as Error });
  }
}

/** The failure as the instance fault shows it: the typed cause, not the wrapper. */
function describe(err: unknown): { type: string; message: string } {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure) return { type: cause.type ?? 'Error', message: cause.message };
  if (
    err instanceof ActivityFailure &&
    cause instanceof TimeoutFailure &&
    cause.timeoutType === TimeoutType.SCHEDULE_TO_START
  ) {
    return {
      type: 'ComputeHostUnavailable',
      message: `compute host did not pick up ${err.activityType} within host_unavailable_timeout`,
    };
  }
  return { type: err instanceof Error ? err.name : 'Error', message: String(err) };
}
