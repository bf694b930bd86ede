import type { Flavor } from '../domain/instance.js';
import type { InstanceStatus, PowerOnTransition, TaskState, VmState } from '../domain/instance-state.js';

// The control plane's instance store. SQLite implements it today; PostgreSQL
// implements the same interface, so nothing above this file knows which.

export interface InstanceFault {
  code: number;
  message: string;
  details: string;
  created: string;
}

export interface InstanceRecord {
  uuid: string;
  name: string;
  host: string;
  flavor: Flavor;
  imageRef: string;
  ports: string[];
  vmState: VmState;
  taskState: TaskState;
  powerState: number;
  fault: InstanceFault | null;
  /** Request id of the newest task; makes every transition idempotent under retries. */
  taskRequestId: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface NewInstance {
  uuid: string;
  name: string;
  host: string;
  flavor: Flavor;
  imageRef: string;
  ports: string[];
}

export interface InstanceAction {
  action: string;
  instanceUuid: string;
  requestId: string;
  startTime: string;
  message: string | null;
  events: InstanceActionEvent[];
}

export interface InstanceActionEvent {
  event: string;
  startTime: string;
  finishTime: string | null;
  result: 'Success' | 'Error' | null;
  details: string | null;
}

export interface TransitionOptions {
  requestId: string;
  powerState?: number;
  fault?: InstanceFault;
}

export interface InstanceStore {
  createInstance(instance: NewInstance): Promise<InstanceRecord>;
  getInstance(uuid: string): Promise<InstanceRecord | null>;
  listInstances(): Promise<InstanceRecord[]>;
  /**
   * Compare-and-swap a power-on transition. Applying the same transition twice
   * with the same request id is a no-op that returns the record; any other
   * state mismatch throws InstanceInvalidState.
   */
  transition(uuid: string, t: PowerOnTransition, opts: TransitionOptions): Promise<InstanceRecord>;
  /** Records an instance action once per request id (idempotent). */
  startAction(action: Omit<InstanceAction, 'events'>): Promise<void>;
  /** Adds or replaces the event of that name in the action (idempotent). */
  recordActionEvent(instanceUuid: string, requestId: string, event: InstanceActionEvent): Promise<void>;
  listActions(instanceUuid: string): Promise<InstanceAction[]>;
  getAction(instanceUuid: string, requestId: string): Promise<InstanceAction | null>;
  /** Removes the record with its actions (Nova's instance delete); false when it was not there. */
  deleteInstance(uuid: string): Promise<boolean>;
  close(): Promise<void>;
}

export class InstanceNotFound extends Error {
  override readonly name = 'InstanceNotFound';
  constructor(readonly instanceUuid: string) {
    super(`Instance ${instanceUuid} could not be found.`);
  }
}

export class InstanceExists extends Error {
  override readonly name = 'InstanceExists';
  constructor(readonly instanceUuid: string) {
    super(`Instance ${instanceUuid} already exists.`);
  }
}

export function statusOf(r: InstanceRecord): InstanceStatus {
  return { vmState: r.vmState, taskState: r.taskState };
}

/**
 * A retried activity finds its own earlier write: same request, target state
 * reached. Both stores call this before comparing-and-swapping.
 */
export function alreadyApplied(r: InstanceRecord, t: PowerOnTransition, requestId: string): boolean {
  if (r.taskRequestId !== requestId) return false;
  switch (t) {
    case 'begin':
      return r.taskState === 'powering-on';
    case 'finish':
      return r.vmState === 'active' && r.taskState === null;
    case 'revert':
      return r.vmState === 'stopped' && r.taskState === null;
  }
}
