import type { NetworkInfo } from '../domain/network-model.js';
import type { InstanceRecord } from '../store/instance-store.js';

// The notifier contract of the control-plane activities (DESIGN.md section 2):
// beginPowerOn, finishPowerOn and revertPowerOn each emit one of Nova's
// versioned instance.power_on.* notifications for the record they just saved.

export const POWER_ON_EVENT_TYPES = [
  'instance.power_on.start',
  'instance.power_on.end',
  'instance.power_on.error',
] as const;
export type PowerOnEventType = (typeof POWER_ON_EVENT_TYPES)[number];

export function isPowerOnEventType(s: string): s is PowerOnEventType {
  return (POWER_ON_EVENT_TYPES as readonly string[]).includes(s);
}

/** What a notification needs of an instance: a subset of InstanceRecord. */
export type NotificationInstance = Pick<
  InstanceRecord,
  'uuid' | 'name' | 'host' | 'flavor' | 'imageRef' | 'vmState' | 'taskState' | 'powerState' | 'createdAt' | 'updatedAt'
>;

/** The failure behind instance.power_on.error; becomes Nova's ExceptionPayload. */
export interface NotificationFault {
  /** Exception class name, e.g. `VirtualInterfaceCreateException` (the failure's type). */
  exception: string;
  /** The human-readable message. */
  message: string;
  /** The step (activity) that failed, e.g. `createDomain`; Nova: the function that raised. */
  functionName?: string;
  /** Nova: the module that raised; ours: the module of the step that failed. */
  moduleName?: string;
  /** Stack trace, if there is one. */
  traceback?: string;
}

export interface NotifyContext {
  /** The os-start request id (`req-<uuid>`): the instance action's key. */
  requestId: string;
  /** Only for instance.power_on.error. */
  fault?: NotificationFault | null;
  /** When known, fills the payload's ip_addresses as Nova's IpPayload list. */
  networkInfo?: NetworkInfo;
}

export interface Notifier {
  /**
   * Emits one versioned notification. Resolves once it is delivered (for a
   * broker: confirmed); rejects otherwise, so the calling activity retries.
   * Emitting the same (event type, instance, request id) twice is allowed and
   * carries the same message_id, so consumers can drop the duplicate.
   */
  notify(eventType: PowerOnEventType, instance: NotificationInstance, context: NotifyContext): Promise<void>;
  /** Releases connections; later calls to notify may reconnect. */
  close?(): Promise<void>;
}
