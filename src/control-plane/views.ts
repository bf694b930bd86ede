import { serverStatus } from '../domain/instance-state.js';
import type { InstanceAction, InstanceRecord } from '../store/instance-store.js';

// Response bodies in Nova's shapes.

export function serverView(r: InstanceRecord) {
  return {
    id: r.uuid,
    name: r.name,
    status: serverStatus(r.vmState),
    'OS-EXT-STS:vm_state': r.vmState,
    'OS-EXT-STS:task_state': r.taskState,
    'OS-EXT-STS:power_state': r.powerState,
    'OS-EXT-SRV-ATTR:host': r.host,
    flavor: { vcpus: r.flavor.vcpus, ram: r.flavor.ramMb, disk: r.flavor.diskGb },
    image: { id: r.imageRef },
    networks: r.ports.map((port) => ({ port })),
    created: r.createdAt,
    updated: r.updatedAt,
    ...(r.fault ? { fault: r.fault } : {}),
  };
}

export function actionView(a: InstanceAction, withEvents: boolean) {
  return {
    action: a.action,
    instance_uuid: a.instanceUuid,
    request_id: a.requestId,
    start_time: a.startTime,
    message: a.message,
    ...(withEvents
      ? {
          events: a.events.map((e) => ({
            event: e.event,
            start_time: e.startTime,
            finish_time: e.finishTime,
            result: e.result,
            details: e.details,
          })),
        }
      : {}),
  };
}

export function novaError(
  kind: 'badRequest' | 'itemNotFound' | 'conflictingRequest' | 'unauthorized',
  code: number,
  message: string,
) {
  return { [kind]: { code, message } };
}
