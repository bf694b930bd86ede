import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { WaitForVifPlugged } from '../domain/network-model.js';

// The workflow's public contract (DESIGN.md section 2), shared by the workflow,
// the control plane and computectl.

export const POWER_ON_WORKFLOW_TYPE = 'PowerOnInstance';
export const CONTROL_PLANE_TASK_QUEUE = 'control-plane';
export const computeTaskQueue = (host: string): string => `compute.${host}`;
export const powerOnWorkflowId = (instanceUuid: string): string => `power-on/${instanceUuid}`;

/** The steps of a power-on in the order the workflow runs them (the wait only when ports are awaited). */
export const POWER_ON_STEPS = [
  'beginPowerOn',
  'getNetworkInfo',
  'destroyGuest',
  'writeDomainXml',
  'createBacking',
  'plugVifs',
  'applyFirewall',
  'createDomain',
  'waitForVifPlugged',
  'resumeDomain',
  'finishPowerOn',
] as const;

export interface PowerOnInput {
  instanceUuid: string;
  /** The request id of the os-start call: the instance action's key. */
  requestId: string;
  host: string;
  /** seconds; Nova's [DEFAULT]vif_plugging_timeout */
  vifPluggingTimeout: number;
  vifPluggingIsFatal: boolean;
  waitForVifPlugged: WaitForVifPlugged;
  /** seconds a host activity may wait for its compute host to pick it up */
  hostUnavailableTimeout: number;
  /** seconds without a heartbeat after which a host activity counts as crashed (default 10) */
  hostHeartbeatTimeout?: number;
}

export interface PowerOnResult {
  instanceUuid: string;
  powerState: number;
  steps: StepRecord[];
}

export type ExternalEventName =
  'network-vif-plugged' | 'network-vif-unplugged' | 'network-changed' | 'network-vif-deleted';

export interface InstanceEvent {
  name: ExternalEventName;
  tag: string | null;
  status: 'completed' | 'failed' | 'in-progress';
}

export interface ReceivedEvent extends InstanceEvent {
  receivedAt: string;
}

export interface StepRecord {
  name: string;
  startedAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  result: 'Success' | 'Error' | null;
  error?: string;
}

export interface PowerOnProgress {
  step: string;
  steps: StepRecord[];
  portsAwaited: string[];
  portsReceived: string[];
  timerDeadline: string | null;
  compensations: StepRecord[];
  events: ReceivedEvent[];
  outcome: 'running' | 'succeeded' | 'failed';
}

export const instanceEventSignal = defineSignal<[InstanceEvent]>('instanceEvent');
export const progressQuery = defineQuery<PowerOnProgress>('progress');

export const InstanceUuidKey = defineSearchAttributeKey('InstanceUuid', SearchAttributeType.KEYWORD);
export const ComputeHostKey = defineSearchAttributeKey('ComputeHost', SearchAttributeType.KEYWORD);
export const PowerOnStepKey = defineSearchAttributeKey('PowerOnStep', SearchAttributeType.KEYWORD);
