import { run } from '../../src/host/exec.js';
import type { Logger } from '../../src/log.js';
import { deletedEvent, isComputePort, pluggedEvent, statusChangeEvent, type NovaNotifier } from './notifier.js';
import type { DevNeutronState, PortRow, PortStatus } from './state.js';

// The dev server's L2 agent: like neutron-openvswitch-agent it watches the
// integration bridge for interfaces whose external_ids:iface-id names a port, and
// reports the port up (ACTIVE) or down; the status change becomes a Nova event as
// in Neutron. Per-port test behaviours bend that (failed, silent, late, early).

type OvsdbValue = unknown;

/** OVSDB JSON: ["uuid", u] | ["set", [...]] | ["map", [[k, v], ...]] | atom. */
function setOf(v: OvsdbValue): OvsdbValue[] {
  return Array.isArray(v) && v[0] === 'set' ? (v[1] as OvsdbValue[]) : [v];
}
function uuidOf(v: OvsdbValue): string | null {
  return Array.isArray(v) && v[0] === 'uuid' && typeof v[1] === 'string' ? v[1] : null;
}
function mapOf(v: OvsdbValue): Map<string, string> {
  const out = new Map<string, string>();
  if (Array.isArray(v) && v[0] === 'map' && Array.isArray(v[1])) {
    for (const pair of v[1] as unknown[]) {
      if (Array.isArray(pair) && typeof pair[0] === 'string' && typeof pair[1] === 'string') out.set(pair[0], pair[1]);
    }
  }
  return out;
}

interface Table {
  headings: string[];
  data: OvsdbValue[][];
}

function rows(t: Table): Record<string, OvsdbValue>[] {
  return t.data.map((row) => Object.fromEntries(t.headings.map((h, i) => [h, row[i]])));
}

/**
 * iface-ids of the interfaces on `bridge` that have an OpenFlow port (ofport > 0),
 * from one ovs-vsctl call with three `find`s (one JSON table per line).
 */
export async function wiredIfaceIds(bridge: string): Promise<Set<string>> {
  const { stdout } = await run(
    'ovs-vsctl',
    [
      '--timeout=5',
      '--format=json',
      '--columns=_uuid,external_ids,ofport',
      'find',
      'Interface',
      '--',
      '--columns=ports',
      'find',
      'Bridge',
      `name=${bridge}`,
      '--',
      '--columns=_uuid,interfaces',
      'find',
      'Port',
    ],
    { timeoutMs: 10_000 },
  );
  const [ifaces, bridges, ports] = stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Table);
  if (!ifaces || !bridges || !ports) throw new Error('ovs-vsctl printed fewer than three tables');
  const bridgePorts = new Set(rows(bridges).flatMap((b) => setOf(b.ports).map(uuidOf)));
  const onBridge = new Set(
    rows(ports)
      .filter((p) => bridgePorts.has(uuidOf(p._uuid)))
      .flatMap((p) => setOf(p.interfaces).map(uuidOf)),
  );
  const out = new Set<string>();
  for (const i of rows(ifaces)) {
    const id = mapOf(i.external_ids).get('iface-id');
    if (id && onBridge.has(uuidOf(i._uuid)) && typeof i.ofport === 'number' && i.ofport > 0) out.add(id);
  }
  return out;
}

export interface L2AgentOptions {
  bridge: string;
  /** Poll interval; default 100 ms. */
  intervalMs?: number;
  /** false: no OVS polling (events still follow port binding and deletion). */
  watchOvs?: boolean;
  logger: Logger;
  /** Replaceable for tests. */
  snapshot?: (bridge: string) => Promise<Set<string>>;
}

export class L2Agent {
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;
  private stopped = false;
  private failing = false;
  private present = new Set<string>();
  /** late mode: ports waiting to be reported up */
  private readonly pending = new Map<string, NodeJS.Timeout>();
  /** early mode: ports whose plugged event went out at binding time */
  private readonly earlySent = new Set<string>();

  constructor(
    private readonly state: DevNeutronState,
    private readonly notifier: NovaNotifier,
    private readonly opts: L2AgentOptions,
  ) {
    state.on('portUpdated', (before, after) => this.onPortUpdated(before, after));
    state.on('portDeleted', (port) => this.onPortDeleted(port));
  }

  start(): void {
    if (this.opts.watchOvs === false) return;
    const tick = () => {
      this.polling = this.poll().finally(() => {
        this.polling = null;
        if (!this.stopped) this.timer = setTimeout(tick, this.opts.intervalMs ?? 100);
      });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
    await this.polling;
  }

  private async poll(): Promise<void> {
    if (this.state.allPorts().length === 0) return; // nothing to watch for: spare the ovs-vsctl call
    let ids: Set<string>;
    try {
      ids = await (this.opts.snapshot ?? wiredIfaceIds)(this.opts.bridge);
    } catch (err) {
      if (!this.failing) this.opts.logger.warn({ err: (err as Error).message }, 'cannot read OVS; port status frozen');
      this.failing = true;
      return;
    }
    if (this.failing) this.opts.logger.info('reading OVS again');
    this.failing = false;
    if (!this.stopped) this.reconcile(ids);
  }

  /** One agent loop: ports whose interface appeared go up, those whose interface went go down. */
  reconcile(ifaceIds: Set<string>): void {
    this.present = ifaceIds;
    for (const port of this.state.allPorts()) {
      const wired = ifaceIds.has(port.id) && port.admin_state_up;
      const up = port.status === 'ACTIVE' || port.status === 'ERROR';
      if (wired && !up && !this.pending.has(port.id)) this.plug(port);
      else if (!wired && (up || this.pending.has(port.id))) this.unplug(port);
    }
  }

  private report(port: PortRow, status: PortStatus, notify: boolean): void {
    const previous = this.state.setPortStatus(port.id, status);
    this.opts.logger.info({ port: port.id, previous, status }, 'port status');
    if (notify) this.notifier.send(statusChangeEvent(this.state.port(port.id), previous, status));
  }

  private plug(port: PortRow): void {
    const { mode, delayMs } = port.behaviour;
    switch (mode) {
      case 'failed':
        return this.report(port, 'ERROR', true);
      case 'silent':
        return this.report(port, 'ACTIVE', false);
      case 'early':
        return this.report(port, 'ACTIVE', !this.earlySent.has(port.id));
      case 'late': {
        const timer = setTimeout(() => {
          this.pending.delete(port.id);
          const now = this.portOrNull(port.id);
          if (now && this.present.has(now.id) && now.admin_state_up) this.report(now, 'ACTIVE', true);
        }, delayMs);
        this.pending.set(port.id, timer);
        return;
      }
      default:
        return this.report(port, 'ACTIVE', true);
    }
  }

  private unplug(port: PortRow): void {
    const timer = this.pending.get(port.id);
    if (timer) clearTimeout(timer);
    this.pending.delete(port.id);
    this.earlySent.delete(port.id);
    if (port.status !== 'DOWN') this.report(port, 'DOWN', port.behaviour.mode !== 'silent');
  }

  private onPortUpdated(before: PortRow, after: PortRow): void {
    if (before.device_id !== after.device_id) this.earlySent.delete(after.id);
    const newlyBound = isComputePort(after) && (before.device_id !== after.device_id || !isComputePort(before));
    if (after.behaviour.mode === 'early' && newlyBound && after.status !== 'ACTIVE') {
      // Sent at binding time, before any tap exists (a too-early agent or a stale status).
      this.earlySent.add(after.id);
      this.notifier.send(pluggedEvent(after));
    }
  }

  private onPortDeleted(port: PortRow): void {
    const timer = this.pending.get(port.id);
    if (timer) clearTimeout(timer);
    this.pending.delete(port.id);
    this.earlySent.delete(port.id);
    if (port.behaviour.mode !== 'silent') this.notifier.send(deletedEvent(port));
  }

  private portOrNull(id: string): PortRow | null {
    try {
      return this.state.port(id);
    } catch {
      return null;
    }
  }
}
