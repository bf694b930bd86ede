import { createHash, randomUUID } from 'node:crypto';
import type { NetworkInfo } from '../domain/network-model.js';
import { powerStateName, type PowerState } from '../domain/power-state.js';
import type { NotificationFault, NotificationInstance, PowerOnEventType } from './types.js';

// Nova's versioned instance.power_on.* notifications, shaped like Nova's
// notification samples (doc/notification_samples/instance-power_on-start.json,
// common_payloads/InstanceActionPayload.json and the objects in
// nova/notifications/objects/). Pure: no I/O, the clock and ids can be injected.
//
// Fields we have: uuid, display_name, host, node, image_uuid, state, task_state,
// power_state, created_at, updated_at, flavor (vcpus, memory_mb, root_gb),
// request_id, fault, ip_addresses (when the NetworkInfo is passed).
// Fields left null because nothing here knows them: user_id, tenant_id and
// action_initiator_user/_project (no Keystone: the API takes static tokens),
// reservation_id, display_description, host_name, architecture, os_type,
// availability_zone, key_name, launched_at, progress, locked_reason; deleted_at
// and terminated_at are null as for any live instance; block_devices and shares
// are null as in Nova with its defaults (bdms_in_notifications and
// include_share_mapping off). See docs/decisions/0008-notifications.md.

/** Versions of the objects as in Nova's samples (nova master, 2026). */
export const OBJECT_VERSIONS = {
  InstanceActionPayload: '1.9',
  FlavorPayload: '1.4',
  ExceptionPayload: '1.1',
  IpPayload: '1.0',
} as const;

export const PUBLISHER_SOURCE = 'nova-compute';

export type NotificationPriority = 'INFO' | 'ERROR';

export interface NovaObject<N extends string, T> {
  'nova_object.name': N;
  'nova_object.namespace': 'nova';
  'nova_object.version': string;
  'nova_object.data': T;
}

export interface FlavorPayloadData {
  flavorid: string | null;
  name: string;
  memory_mb: number | null;
  vcpus: number | null;
  root_gb: number | null;
  ephemeral_gb: number | null;
  swap: number;
  rxtx_factor: number | null;
  vcpu_weight: number | null;
  disabled: boolean;
  is_public: boolean;
  extra_specs: Record<string, string> | null;
  projects: string[] | null;
  description: string | null;
}

export interface ExceptionPayloadData {
  exception: string;
  exception_message: string;
  function_name: string;
  module_name: string;
  traceback: string;
}

export interface IpPayloadData {
  mac: string;
  address: string;
  port_uuid: string;
  meta: Record<string, string>;
  version: number;
  label: string;
  device_name: string;
}

export interface InstanceActionPayloadData {
  uuid: string;
  user_id: string | null;
  tenant_id: string | null;
  reservation_id: string | null;
  display_name: string | null;
  display_description: string | null;
  host_name: string | null;
  host: string | null;
  node: string | null;
  os_type: string | null;
  architecture: string | null;
  availability_zone: string | null;
  flavor: NovaObject<'FlavorPayload', FlavorPayloadData>;
  image_uuid: string | null;
  key_name: string | null;
  kernel_id: string | null;
  ramdisk_id: string | null;
  created_at: string | null;
  launched_at: string | null;
  terminated_at: string | null;
  deleted_at: string | null;
  updated_at: string | null;
  state: string | null;
  power_state: string | null;
  task_state: string | null;
  progress: number | null;
  ip_addresses: NovaObject<'IpPayload', IpPayloadData>[];
  block_devices: unknown[] | null;
  metadata: Record<string, string>;
  locked: boolean;
  auto_disk_config: 'MANUAL' | 'AUTO';
  request_id: string | null;
  action_initiator_user: string | null;
  action_initiator_project: string | null;
  locked_reason: string | null;
  shares: unknown[] | null;
  fault: NovaObject<'ExceptionPayload', ExceptionPayloadData> | null;
}

/** The message oslo.messaging's Notifier builds (before the driver's envelope). */
export interface VersionedNotification {
  message_id: string;
  publisher_id: string;
  event_type: PowerOnEventType;
  priority: NotificationPriority;
  payload: NovaObject<'InstanceActionPayload', InstanceActionPayloadData>;
  timestamp: string;
}

export interface BuildNotificationInput {
  eventType: PowerOnEventType;
  instance: NotificationInstance;
  requestId: string | null;
  fault?: NotificationFault | null;
  networkInfo?: NetworkInfo;
  initiator?: { userId: string | null; projectId: string | null };
  /** Defaults to the current time. */
  now?: Date;
  /** Defaults to messageIdFor(...) (stable under retries), random without a request id. */
  messageId?: string;
}

function novaObject<N extends string, T>(name: N, version: string, data: T): NovaObject<N, T> {
  return {
    'nova_object.name': name,
    'nova_object.namespace': 'nova',
    'nova_object.version': version,
    'nova_object.data': data,
  };
}

/** oslo_utils.timeutils.utcnow() printed by str(): `2026-01-02 03:04:05.678000` (fraction dropped at 0). */
export function osloTimestamp(d: Date): string {
  const iso = d.toISOString(); // 2026-01-02T03:04:05.678Z
  const base = `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;
  const ms = d.getUTCMilliseconds();
  return ms === 0 ? base : `${base}.${String(ms).padStart(3, '0')}000`;
}

/** Nova's DateTimeField in notifications: `2012-10-29T13:42:11Z` (no fraction). */
export function novaDateTime(value: string | null | undefined): string | null {
  if (!value) return null;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return null;
  return `${d.toISOString().slice(0, 19)}Z`;
}

/** Nova's power-state string (InstancePowerStateField); null for a state Nova has no name for. */
export function novaPowerState(state: number): string | null {
  return powerStateName(state as PowerState) ?? null;
}

// A fixed namespace for name-based (version 5) message ids.
const MESSAGE_ID_NAMESPACE = '6f1d8c0e-3b7a-5d2c-9e4f-a8b1c2d3e4f5';

/** RFC 4122 version-5 UUID of `name` in `namespace`. */
export function uuidV5(name: string, namespace: string = MESSAGE_ID_NAMESPACE): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const hash = createHash('sha1').update(ns).update(name, 'utf8').digest();
  const b = hash.subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x50;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * The message id of one logical notification: the same for every retry of the
 * activity that emits it, so a consumer can drop a duplicate delivery.
 */
export function messageIdFor(eventType: PowerOnEventType, instanceUuid: string, requestId: string): string {
  return uuidV5(`${eventType}/${instanceUuid}/${requestId}`);
}

export function priorityOf(eventType: PowerOnEventType): NotificationPriority {
  return eventType.endsWith('.error') ? 'ERROR' : 'INFO';
}

/** Our flavors are registered inline with the instance and have no id or name. */
export function flavorPayload(flavor: NotificationInstance['flavor']): NovaObject<'FlavorPayload', FlavorPayloadData> {
  return novaObject('FlavorPayload', OBJECT_VERSIONS.FlavorPayload, {
    flavorid: null,
    // Nova's name is not nullable; ours is derived from the sizes.
    name: `${flavor.vcpus}vcpu-${flavor.ramMb}mb-${flavor.diskGb}gb`,
    memory_mb: flavor.ramMb,
    vcpus: flavor.vcpus,
    root_gb: flavor.diskGb,
    // The guest gets exactly one disk: no ephemeral disk, no swap.
    ephemeral_gb: 0,
    swap: 0,
    rxtx_factor: null,
    vcpu_weight: null,
    disabled: false,
    is_public: true,
    extra_specs: {},
    projects: null,
    description: null,
  });
}

export function exceptionPayload(fault: NotificationFault): NovaObject<'ExceptionPayload', ExceptionPayloadData> {
  return novaObject('ExceptionPayload', OBJECT_VERSIONS.ExceptionPayload, {
    exception: fault.exception,
    exception_message: fault.message,
    function_name: fault.functionName ?? 'unknown',
    module_name: fault.moduleName ?? 'unknown',
    traceback: fault.traceback ?? '',
  });
}

/** Nova's IpPayload.from_network_info: one entry per fixed IP of each vif. */
export function ipPayloads(networkInfo: NetworkInfo | undefined): NovaObject<'IpPayload', IpPayloadData>[] {
  if (!networkInfo) return [];
  return networkInfo.flatMap((vif) =>
    vif.network.subnets.flatMap((subnet) =>
      subnet.ips.map((ip) =>
        novaObject('IpPayload', OBJECT_VERSIONS.IpPayload, {
          mac: vif.address,
          address: ip.address,
          port_uuid: vif.id,
          meta: {},
          version: ip.version,
          label: vif.network.label,
          device_name: vif.devname,
        }),
      ),
    ),
  );
}

export function instanceActionPayload(
  input: Omit<BuildNotificationInput, 'now' | 'messageId' | 'eventType'>,
): NovaObject<'InstanceActionPayload', InstanceActionPayloadData> {
  const { instance: r, requestId, fault, networkInfo, initiator } = input;
  return novaObject('InstanceActionPayload', OBJECT_VERSIONS.InstanceActionPayload, {
    uuid: r.uuid,
    user_id: null,
    tenant_id: null,
    reservation_id: null,
    display_name: r.name,
    display_description: null,
    host_name: null,
    host: r.host,
    // The libvirt driver's node is the hypervisor's host name: ours is the compute host.
    node: r.host,
    os_type: null,
    architecture: null,
    availability_zone: null,
    flavor: flavorPayload(r.flavor),
    image_uuid: r.imageRef,
    key_name: null,
    // Guests boot from their disk: no kernel/ramdisk images ("" as Nova stores them).
    kernel_id: '',
    ramdisk_id: '',
    created_at: novaDateTime(r.createdAt),
    launched_at: null,
    terminated_at: null,
    deleted_at: null,
    updated_at: novaDateTime(r.updatedAt),
    state: r.vmState,
    power_state: novaPowerState(r.powerState),
    task_state: r.taskState,
    progress: null,
    ip_addresses: ipPayloads(networkInfo),
    block_devices: null,
    metadata: {},
    locked: false,
    // Nothing here resizes the guest's partitions.
    auto_disk_config: 'MANUAL',
    request_id: requestId,
    action_initiator_user: initiator?.userId ?? null,
    action_initiator_project: initiator?.projectId ?? null,
    locked_reason: null,
    shares: null,
    fault: fault ? exceptionPayload(fault) : null,
  });
}

/** One instance.power_on.start/.end/.error notification, as Nova's compute manager emits it. */
export function buildPowerOnNotification(input: BuildNotificationInput): VersionedNotification {
  const { eventType, instance, requestId } = input;
  const priority = priorityOf(eventType);
  if (input.fault && priority !== 'ERROR') {
    throw new TypeError(`${eventType} carries no fault; only instance.power_on.error does`);
  }
  return {
    message_id: input.messageId ?? (requestId ? messageIdFor(eventType, instance.uuid, requestId) : randomUUID()),
    publisher_id: `${PUBLISHER_SOURCE}:${instance.host}`,
    event_type: eventType,
    priority,
    payload: instanceActionPayload(input),
    timestamp: osloTimestamp(input.now ?? new Date()),
  };
}
