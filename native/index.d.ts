// Types for the libvirt N-API binding (native/index.js).

/** A failed libvirt call. Fields are copied from libvirt's virError. */
export class LibvirtError extends Error {
  constructor(message: string, code: number, domain: number, level: number);
  /** virErrorNumber, e.g. VIR_ERR_NO_DOMAIN (42). */
  code: number;
  /** virErrorDomain, e.g. VIR_FROM_QEMU (10), VIR_FROM_RPC (7). */
  domain: number;
  /** virErrorLevel: VIR_ERR_WARNING (1) or VIR_ERR_ERROR (2). */
  level: number;
}

export interface LifecycleEvent {
  uuid: string;
  name: string;
  /** VIR_DOMAIN_EVENT_* */
  event: number;
  /** Event-specific virDomainEvent*DetailType value. */
  detail: number;
}

export interface DomainState {
  /** VIR_DOMAIN_NOSTATE .. VIR_DOMAIN_PMSUSPENDED */
  state: number;
  /** Reason enum matching the state (virDomainRunningReason, ...). */
  reason: number;
}

export class Connection {
  private constructor();
  /** virConnectOpen + best-effort virConnectSetKeepAlive(conn, 1, 2). */
  static open(uri: string): Promise<Connection>;
  /** Deregisters this object's listeners, then virConnectClose. Idempotent. */
  close(): Promise<void>;
  /** virConnectIsAlive; synchronous (local socket state, no RPC). False after close(). */
  isAlive(): boolean;
  lookupDomainByUUID(uuid: string): Promise<Domain>;
  lookupDomainByName(name: string): Promise<Domain>;
  defineDomainXML(xml: string): Promise<Domain>;
  /** flags: VIR_CONNECT_LIST_DOMAINS_* (0 = all). */
  listAllDomains(flags?: number): Promise<Domain[]>;
  /** libvirt version as major * 1_000_000 + minor * 1_000 + micro. */
  getLibVersion(): Promise<number>;
  /**
   * Adds a listener for lifecycle events of all domains. Synchronous and
   * local: the connection registered with libvirt once at open()
   * (virConnectDomainEventRegisterAny, VIR_DOMAIN_EVENT_ID_LIFECYCLE), so the
   * listener sees every event after this call returns. Any number of
   * listeners may be added. Listeners do not keep the process alive.
   * Returns an id for offLifecycleEvent(). Throws LibvirtError if the
   * connection is closed or its driver has no events.
   */
  onLifecycleEvent(cb: (ev: LifecycleEvent) => void): number;
  /** Removes a listener; false if the id is unknown. */
  offLifecycleEvent(id: number): boolean;
  /**
   * Adds a listener called once with a VIR_CONNECT_CLOSE_REASON_* when the
   * connection breaks (EOF, keepalive timeout, I/O error); never for close().
   * A listener added after the break is called right away. Any number of
   * listeners; returns an id for offClose(). Listeners do not keep the process alive.
   */
  onClose(cb: (reason: number) => void): number;
  offClose(id: number): boolean;
}

export class Domain {
  private constructor();
  readonly uuid: string;
  readonly name: string;
  /** flags: VIR_DOMAIN_START_* */
  createWithFlags(flags: number): Promise<void>;
  resume(): Promise<void>;
  suspend(): Promise<void>;
  destroy(): Promise<void>;
  /** flags: VIR_DOMAIN_DESTROY_* */
  destroyFlags(flags: number): Promise<void>;
  /** flags: VIR_DOMAIN_UNDEFINE_* */
  undefineFlags(flags: number): Promise<void>;
  getState(): Promise<DomainState>;
  /** flags: VIR_DOMAIN_XML_* */
  getXMLDesc(flags: number): Promise<string>;
  isActive(): Promise<boolean>;
}

export const VIR_ERR_OK: 0;
export const VIR_ERR_INTERNAL_ERROR: 1;
export const VIR_ERR_NO_MEMORY: 2;
export const VIR_ERR_NO_SUPPORT: 3;
export const VIR_ERR_NO_CONNECT: 5;
export const VIR_ERR_INVALID_CONN: 6;
export const VIR_ERR_INVALID_DOMAIN: 7;
export const VIR_ERR_INVALID_ARG: 8;
export const VIR_ERR_OPERATION_FAILED: 9;
export const VIR_ERR_XML_ERROR: 27;
export const VIR_ERR_DOM_EXIST: 28;
export const VIR_ERR_OPERATION_DENIED: 29;
export const VIR_ERR_XML_DETAIL: 35;
export const VIR_ERR_SYSTEM_ERROR: 38;
export const VIR_ERR_RPC: 39;
export const VIR_ERR_NO_DOMAIN: 42;
export const VIR_ERR_AUTH_FAILED: 45;
export const VIR_ERR_OPERATION_INVALID: 55;
export const VIR_ERR_CONFIG_UNSUPPORTED: 67;
export const VIR_ERR_OPERATION_TIMEOUT: 68;
export const VIR_ERR_ARGUMENT_UNSUPPORTED: 74;
export const VIR_ERR_OPERATION_ABORTED: 78;
export const VIR_ERR_OPERATION_UNSUPPORTED: 84;
export const VIR_ERR_AGENT_UNRESPONSIVE: 86;
export const VIR_ERR_RESOURCE_BUSY: 87;
export const VIR_ERR_ACCESS_DENIED: 88;
export const VIR_ERR_XML_INVALID_SCHEMA: 92;
export const VIR_ERR_AUTH_UNAVAILABLE: 94;
export const VIR_ERR_MULTIPLE_DOMAINS: 110;
export const VIR_FROM_NONE: 0;
export const VIR_FROM_XML: 5;
export const VIR_FROM_DOM: 6;
export const VIR_FROM_RPC: 7;
export const VIR_FROM_CONF: 9;
export const VIR_FROM_QEMU: 10;
export const VIR_FROM_REMOTE: 13;
export const VIR_FROM_DOMAIN: 20;
export const VIR_FROM_SECURITY: 24;
export const VIR_FROM_EVENT: 40;
export const VIR_FROM_LOCKING: 42;
export const VIR_FROM_CAPABILITIES: 44;
export const VIR_FROM_URI: 45;
export const VIR_FROM_AUTH: 46;
export const VIR_FROM_CGROUP: 54;
export const VIR_FROM_ACCESS: 55;
export const VIR_FROM_THREAD: 61;
export const VIR_ERR_NONE: 0;
export const VIR_ERR_WARNING: 1;
export const VIR_ERR_ERROR: 2;
export const VIR_DOMAIN_NOSTATE: 0;
export const VIR_DOMAIN_RUNNING: 1;
export const VIR_DOMAIN_BLOCKED: 2;
export const VIR_DOMAIN_PAUSED: 3;
export const VIR_DOMAIN_SHUTDOWN: 4;
export const VIR_DOMAIN_SHUTOFF: 5;
export const VIR_DOMAIN_CRASHED: 6;
export const VIR_DOMAIN_PMSUSPENDED: 7;
export const VIR_DOMAIN_NONE: 0;
export const VIR_DOMAIN_START_PAUSED: 1;
export const VIR_DOMAIN_START_AUTODESTROY: 2;
export const VIR_DOMAIN_START_BYPASS_CACHE: 4;
export const VIR_DOMAIN_START_FORCE_BOOT: 8;
export const VIR_DOMAIN_START_VALIDATE: 16;
export const VIR_DOMAIN_UNDEFINE_MANAGED_SAVE: 1;
export const VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA: 2;
export const VIR_DOMAIN_UNDEFINE_NVRAM: 4;
export const VIR_DOMAIN_UNDEFINE_KEEP_NVRAM: 8;
export const VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA: 16;
export const VIR_DOMAIN_UNDEFINE_TPM: 32;
export const VIR_DOMAIN_UNDEFINE_KEEP_TPM: 64;
export const VIR_DOMAIN_DESTROY_DEFAULT: 0;
export const VIR_DOMAIN_DESTROY_GRACEFUL: 1;
export const VIR_DOMAIN_XML_SECURE: 1;
export const VIR_DOMAIN_XML_INACTIVE: 2;
export const VIR_DOMAIN_XML_UPDATE_CPU: 4;
export const VIR_DOMAIN_XML_MIGRATABLE: 8;
export const VIR_CONNECT_LIST_DOMAINS_ACTIVE: 1;
export const VIR_CONNECT_LIST_DOMAINS_INACTIVE: 2;
export const VIR_CONNECT_LIST_DOMAINS_PERSISTENT: 4;
export const VIR_CONNECT_LIST_DOMAINS_TRANSIENT: 8;
export const VIR_CONNECT_LIST_DOMAINS_RUNNING: 16;
export const VIR_CONNECT_LIST_DOMAINS_PAUSED: 32;
export const VIR_CONNECT_LIST_DOMAINS_SHUTOFF: 64;
export const VIR_DOMAIN_EVENT_DEFINED: 0;
export const VIR_DOMAIN_EVENT_UNDEFINED: 1;
export const VIR_DOMAIN_EVENT_STARTED: 2;
export const VIR_DOMAIN_EVENT_SUSPENDED: 3;
export const VIR_DOMAIN_EVENT_RESUMED: 4;
export const VIR_DOMAIN_EVENT_STOPPED: 5;
export const VIR_DOMAIN_EVENT_SHUTDOWN: 6;
export const VIR_DOMAIN_EVENT_PMSUSPENDED: 7;
export const VIR_DOMAIN_EVENT_CRASHED: 8;
export const VIR_CONNECT_CLOSE_REASON_ERROR: 0;
export const VIR_CONNECT_CLOSE_REASON_EOF: 1;
export const VIR_CONNECT_CLOSE_REASON_KEEPALIVE: 2;
export const VIR_CONNECT_CLOSE_REASON_CLIENT: 3;
