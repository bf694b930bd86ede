import { hybridDeviceNames, tapName, type Vif } from './network-model.js';

// Which plug a vif gets and whether our firewall filters it: the decisions Nova
// and os-vif take from the port binding, kept pure so they are unit-tested.
// Every name and value that later reaches ip, ovs-vsctl or nft is checked here.

export type FirewallDriver = 'nftables' | 'openvswitch' | 'noop';

/**
 * `ovs`: the tap straight in the integration bridge (os-vif's OVS plug).
 * `ovs-hybrid`: tap in a per-port Linux bridge qbr, veth qvb/qvo, qvo in OVS.
 * `bridge`: the tap in the Linux bridge named by the network.
 */
export type PlugKind = 'ovs' | 'ovs-hybrid' | 'bridge';

export interface VifPlan {
  vif: Vif;
  kind: PlugKind;
  /** The OVS bridge (ovs, ovs-hybrid) or the Linux bridge (bridge) the vif joins. */
  bridge: string;
  tap: string;
  /** Only for ovs-hybrid. */
  hybrid: { qbr: string; qvb: string; qvo: string } | null;
  /** The firewall driver that filters this port on this host, or null (Neutron's agent, or nobody). */
  firewall: 'nftables' | 'openvswitch' | null;
}

export interface PlugOptions {
  firewallDriver: FirewallDriver;
  integrationBridge: string;
}

export class InvalidVifValue extends Error {
  override readonly name = 'InvalidVifValue';
  constructor(
    readonly field: string,
    value: unknown,
    expected: string,
  ) {
    super(`${field}: ${JSON.stringify(value)} is not ${expected}`);
  }
}

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;
// A letter first: device names also become nft chain names.
const DEVICE = /^[A-Za-z][A-Za-z0-9_.-]{0,14}$/;

export function checkUuid(field: string, value: unknown): string {
  if (typeof value !== 'string' || !UUID.test(value)) throw new InvalidVifValue(field, value, 'a UUID');
  return value.toLowerCase();
}

/** A unicast Ethernet address (a guest must never send from a multicast one). */
export function checkMac(field: string, value: unknown): string {
  if (typeof value !== 'string' || !MAC.test(value)) throw new InvalidVifValue(field, value, 'a MAC address');
  const mac = value.toLowerCase();
  if (parseInt(mac.slice(0, 2), 16) & 1) throw new InvalidVifValue(field, value, 'a unicast MAC address');
  return mac;
}

export function checkDevice(field: string, value: unknown): string {
  if (typeof value !== 'string' || !DEVICE.test(value) || value === '.' || value === '..') {
    throw new InvalidVifValue(field, value, 'a network device name ([A-Za-z0-9_.-]{1,15})');
  }
  return value;
}

export function checkMtu(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 68 || value > 65535) {
    throw new InvalidVifValue(field, value, 'an MTU (68-65535)');
  }
  return value;
}

/**
 * os-vif's rule (vif_plug_ovs): the binding's ovs_hybrid_plug decides; our
 * nftables driver can only filter through a Linux bridge on this datapath
 * (DESIGN section 9), so it asks for the hybrid plug whenever it filters.
 */
export function plugKind(vif: Vif, driver: FirewallDriver): PlugKind {
  if (vif.type === 'bridge') return 'bridge';
  if (vif.details.ovsHybridPlug) return 'ovs-hybrid';
  if (driver === 'nftables' && !vif.details.portFilter) return 'ovs-hybrid';
  return 'ovs';
}

/**
 * Whether our firewall filters the port. port_filter true means Neutron's agent
 * filters it (Nova's NoopFirewallDriver behaviour); port security off means
 * nobody does.
 */
export function firewallFor(vif: Vif, driver: FirewallDriver): 'nftables' | 'openvswitch' | null {
  if (driver === 'noop' || vif.details.portFilter || !vif.portSecurityEnabled) return null;
  return driver;
}

export function planVif(vif: Vif, opts: PlugOptions): VifPlan {
  const where = `vif ${JSON.stringify(vif.id)}`;
  checkUuid(`${where}: id`, vif.id);
  checkMac(`${where}: address`, vif.address);
  checkMtu(`${where}: network.mtu`, vif.network.mtu);
  const tap = checkDevice(`${where}: devname`, vif.devname);
  if (tap !== tapName(vif.id)) {
    throw new InvalidVifValue(`${where}: devname`, tap, `${tapName(vif.id)} (tap + port id)`);
  }
  const kind = plugKind(vif, opts.firewallDriver);
  const bridge =
    kind === 'bridge'
      ? checkDevice(`${where}: network.bridge`, vif.network.bridge)
      : checkDevice(`${where}: network.bridge`, vif.network.bridge || opts.integrationBridge);
  const firewall = firewallFor(vif, opts.firewallDriver);
  if (firewall === 'nftables' && kind !== 'ovs-hybrid') {
    // A tap in OVS is not filtered by nft at all; a shared Linux bridge has no
    // per-port direction for the stateful rules. Refuse rather than pretend.
    throw new InvalidVifValue(
      `${where}: type`,
      vif.type,
      'an ovs vif (firewall_driver nftables filters only hybrid-plugged ovs vifs; a bridge vif needs port_filter from its agent)',
    );
  }
  return { vif, kind, bridge, tap, hybrid: kind === 'ovs-hybrid' ? hybridDeviceNames(vif.id) : null, firewall };
}
