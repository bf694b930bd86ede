import { log } from '@temporalio/activity';
import { InstanceInvalidState } from '../domain/instance-state.js';
import type { InstanceSpec } from '../domain/instance.js';
import type { NetworkInfo } from '../domain/network-model.js';
import type { PowerOnMetrics } from '../metrics.js';
import type { Notifier } from '../notifications/types.js';
import { InstanceNotFound, type InstanceRecord, type InstanceStore } from '../store/instance-store.js';
import type { StepRecord } from '../workflows/definitions.js';
import { permanent } from './failures.js';

// Control-plane activities: the instance store (and, through getNetworkInfo,
// Neutron). They run where the database credentials are, never on a compute host.

export type { Notifier };

export interface NetworkInfoSource {
  getNetworkInfo(instance: InstanceSpec): Promise<NetworkInfo>;
}

export interface ControlPlaneDeps {
  store: InstanceStore;
  notifier: Notifier;
  network: NetworkInfoSource;
  metrics?: PowerOnMetrics;
}

const START_ACTION = 'start';

function asPermanent(err: unknown): never {
  if (err instanceof InstanceInvalidState) throw permanent('InstanceInvalidState', err.message, err);
  if (err instanceof InstanceNotFound) throw permanent('InstanceNotFound', err.message, err);
  throw err;
}

export function createControlPlaneActivities({ store, notifier, network, metrics }: ControlPlaneDeps) {
  // As oslo.messaging does for Nova: a notification that cannot be sent is logged
  // and dropped, so a broker outage never holds an instance in powering-on.
  const emit: Notifier['notify'] = (eventType, instance, opts) =>
    notifier.notify(eventType, instance, opts).catch((err: unknown) => {
      log.warn('notification not sent', { eventType, instanceUuid: instance.uuid, error: String(err) });
    });

  async function recordSteps(instanceUuid: string, requestId: string, steps: StepRecord[]): Promise<void> {
    for (const s of steps) {
      await store.recordActionEvent(instanceUuid, requestId, {
        event: `compute_${s.name}`,
        startTime: s.startedAt,
        finishTime: s.finishedAt,
        result: s.result,
        details: s.error ?? null,
      });
    }
  }

  return {
    /** start_instance: stopped/None -> powering-on with compare-and-swap. */
    async beginPowerOn(input: { instanceUuid: string; requestId: string }): Promise<InstanceSpec> {
      const { instanceUuid, requestId } = input;
      const record = await store.transition(instanceUuid, 'begin', { requestId }).catch(asPermanent);
      await store.startAction({
        action: START_ACTION,
        instanceUuid,
        requestId,
        startTime: new Date().toISOString(),
        message: null,
      });
      await emit('instance.power_on.start', record, { requestId });
      return {
        uuid: record.uuid,
        name: record.name,
        host: record.host,
        flavor: record.flavor,
        imageRef: record.imageRef,
        ports: record.ports,
      };
    },

    async getNetworkInfo(instance: InstanceSpec): Promise<NetworkInfo> {
      return network.getNetworkInfo(instance);
    },

    /** expected_task_state=powering-on -> active, with the hypervisor's power state. */
    async finishPowerOn(input: {
      instanceUuid: string;
      requestId: string;
      powerState: number;
      steps: StepRecord[];
    }): Promise<void> {
      const { instanceUuid, requestId } = input;
      const record = await store
        .transition(instanceUuid, 'finish', { requestId, powerState: input.powerState })
        .catch(asPermanent);
      await recordSteps(instanceUuid, requestId, input.steps);
      metrics?.powerOnEnded('succeeded', input.steps);
      await emit('instance.power_on.end', record, { requestId });
    },

    /** The failure path's last undo: task_state back to None, vm_state stays stopped, fault recorded. */
    async revertPowerOn(input: {
      instanceUuid: string;
      requestId: string;
      error: { type: string; message: string };
      steps: StepRecord[];
    }): Promise<void> {
      const { instanceUuid, requestId, error } = input;
      const fault = {
        code: 500,
        message: `${error.type}: ${error.message}`.slice(0, 255),
        details: error.message,
        created: new Date().toISOString(),
      };
      let record: InstanceRecord;
      try {
        record = await store.transition(instanceUuid, 'revert', { requestId, powerState: 4, fault });
      } catch (err) {
        // The record moved on (deleted, or another task owns it): nothing of ours to revert.
        if (err instanceof InstanceInvalidState || err instanceof InstanceNotFound) {
          log.warn('not reverting instance state', { instanceUuid, reason: err.message });
          return;
        }
        throw err;
      }
      await recordSteps(instanceUuid, requestId, input.steps);
      metrics?.powerOnEnded('failed', input.steps, error.type);
      // The step that failed: Nova's ExceptionPayload names the function that raised.
      const failed = [...input.steps].reverse().find((s) => s.result === 'Error');
      await emit('instance.power_on.error', record, {
        requestId,
        fault: {
          exception: error.type,
          message: error.message,
          functionName: failed?.name,
          traceback: failed?.error,
        },
      });
    },
  };
}
