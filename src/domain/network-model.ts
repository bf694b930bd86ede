// Nova's network_model.NetworkInfo, reduced to what the power-on path uses.
// Built from Neutron's answers by neutron/network-info.ts; read by the domain XML,
// the vif plugging and the firewall.

export type VifType = 'ovs' | 'bridge';

export interface FixedIp {
  address: string;
  version: 4 | 6;
}

export interface Subnet {
  id: string;
  cidr: string;
  gateway: string | null;
  ips: FixedIp[];
}

export interface Network {
  id: string;
  label: string;
  /** The bridge the vif is plugged into: the integration bridge for ovs, else a Linux bridge. */
  bridge: string;
  mtu: number;
  subnets: Subnet[];
}

export interface SecurityGroupRule {
  direction: 'ingress' | 'egress';
  ethertype: 'IPv4' | 'IPv6';
  protocol: string | null;
  portRangeMin: number | null;
  portRangeMax: number | null;
  remoteIpPrefix: string | null;
}

export interface Vif {
  /** Neutron port id */
  id: string;
  address: string;
  /** ("tap" + port id)[:14], Nova's NIC_NAME_LEN */
  devname: string;
  type: VifType;
  vnicType: string;
  network: Network;
  /** Nova's vif['active']: port ACTIVE, or admin_state_up false (no event will come). */
  active: boolean;
  /** binding:vif_details */
  details: { ovsHybridPlug: boolean; portFilter: boolean };
  portSecurityEnabled: boolean;
  allowedAddressPairs: { ipAddress: string; macAddress: string }[];
  securityGroupRules: SecurityGroupRule[];
}

export type NetworkInfo = Vif[];

export const NIC_NAME_LEN = 14;

export function tapName(portId: string): string {
  return ('tap' + portId).slice(0, NIC_NAME_LEN);
}

/** os-vif's hybrid-plug device names share the tap's port-id suffix. */
export function hybridDeviceNames(portId: string): { qbr: string; qvb: string; qvo: string } {
  return {
    qbr: ('qbr' + portId).slice(0, NIC_NAME_LEN),
    qvb: ('qvb' + portId).slice(0, NIC_NAME_LEN),
    qvo: ('qvo' + portId).slice(0, NIC_NAME_LEN),
  };
}

export type WaitForVifPlugged = 'inactive' | 'all' | 'none';

/**
 * Which ports' network-vif-plugged events to wait for before resuming the guest.
 * `inactive` is Nova's spawn rule (_get_neutron_events): only ports Neutron has
 * not yet reported ACTIVE will send an event.
 */
export function portsToAwait(networkInfo: NetworkInfo, policy: WaitForVifPlugged): string[] {
  if (policy === 'none') return [];
  return networkInfo.filter((vif) => policy === 'all' || !vif.active).map((vif) => vif.id);
}
