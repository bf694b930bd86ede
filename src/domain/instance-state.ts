// Nova's vm_state / task_state machine for the power-on path, as pure functions.
// The store applies a transition with compare-and-swap on the state it read,
// the way Nova's instance.save(expected_task_state=...) does.

export type VmState = 'active' | 'stopped' | 'error' | 'building';
export type TaskState = 'powering-on' | null;

export interface InstanceStatus {
  vmState: VmState;
  taskState: TaskState;
}

export type PowerOnTransition = 'begin' | 'finish' | 'revert';

interface Rule {
  allowed: (s: InstanceStatus) => boolean;
  to: InstanceStatus;
  action: string;
}

const RULES: Record<PowerOnTransition, Rule> = {
  // start_instance: only a stopped instance with no task in progress.
  begin: {
    allowed: (s) => s.vmState === 'stopped' && s.taskState === null,
    to: { vmState: 'stopped', taskState: 'powering-on' },
    action: 'start',
  },
  // expected_task_state=POWERING_ON -> active.
  finish: {
    allowed: (s) => s.taskState === 'powering-on',
    to: { vmState: 'active', taskState: null },
    action: 'finish power-on of',
  },
  // Failure path: the guest was powered off again, so it is stopped.
  revert: {
    allowed: (s) => s.taskState === 'powering-on',
    to: { vmState: 'stopped', taskState: null },
    action: 'revert power-on of',
  },
};

export class InstanceInvalidState extends Error {
  override readonly name = 'InstanceInvalidState';
  constructor(
    readonly instanceUuid: string,
    readonly status: InstanceStatus,
    action: string,
  ) {
    super(
      `Cannot ${action} instance ${instanceUuid} while it is in vm_state ${status.vmState}` +
        (status.taskState ? ` task_state ${status.taskState}` : ''),
    );
  }
}

export function canTransition(status: InstanceStatus, t: PowerOnTransition): boolean {
  return RULES[t].allowed(status);
}

export function applyTransition(uuid: string, status: InstanceStatus, t: PowerOnTransition): InstanceStatus {
  const rule = RULES[t];
  if (!rule.allowed(status)) throw new InstanceInvalidState(uuid, status, rule.action);
  return { ...rule.to };
}

/** Nova API server status derived from vm_state (nova/api/openstack/common.py). */
export function serverStatus(vmState: VmState): 'ACTIVE' | 'SHUTOFF' | 'ERROR' | 'BUILD' {
  switch (vmState) {
    case 'active':
      return 'ACTIVE';
    case 'stopped':
      return 'SHUTOFF';
    case 'error':
      return 'ERROR';
    case 'building':
      return 'BUILD';
  }
}
