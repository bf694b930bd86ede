import {
  NIC_NAME_LEN,
  tapName,
  type FixedIp,
  type NetworkInfo,
  type SecurityGroupRule,
  type Subnet,
  type Vif,
  type VifType,
} from '../domain/network-model.js';
import {
  cidrVersion,
  ipVersion,
  type NeutronNetwork,
  type NeutronPort,
  type NeutronSecurityGroup,
  type NeutronSubnet,
} from './schemas.js';

// Pure: validated Neutron answers -> Nova's NetworkInfo model, with the rules of
// Nova's _build_vif_model / _nw_info_build_network / _get_subnets_from_port.
// No I/O; every failure names the port.

export interface NetworkInfoOptions {
  /** Nova's [neutron]ovs_bridge: the bridge of an ovs vif without binding:vif_details.bridge_name. */
  integrationBridge: string;
}

export interface NeutronAnswers {
  ports: NeutronPort[];
  networks: NeutronNetwork[];
  subnets: NeutronSubnet[];
  securityGroups: NeutronSecurityGroup[];
  /**
   * Addresses (fixed IPs and allowed address pairs) of the ports in each group that a
   * rule names as remote_group_id. A group missing here is unresolved: its rules are
   * left out, which admits less traffic, never more.
   */
  remoteGroupAddresses?: Record<string, string[]>;
}

export class NetworkInfoError extends Error {
  override readonly name = 'NetworkInfoError';
  constructor(
    readonly portId: string,
    message: string,
  ) {
    super(message);
  }
}

/** Nova's vif['active']: ACTIVE, or administratively down (no plug event will ever come). */
export function vifActive(port: Pick<NeutronPort, 'admin_state_up' | 'status'>): boolean {
  return port.admin_state_up === false || port.status === 'ACTIVE';
}

function vifType(port: NeutronPort): VifType {
  const type = port['binding:vif_type'];
  if (type === 'ovs' || type === 'bridge') return type;
  if (type === undefined) {
    throw new NetworkInfoError(
      port.id,
      `port ${port.id} has no binding:vif_type: the Neutron credentials need the admin role to see port bindings`,
    );
  }
  if (type === 'unbound') {
    throw new NetworkInfoError(port.id, `port ${port.id} is not bound to a host (binding:vif_type unbound)`);
  }
  if (type === 'binding_failed') {
    throw new NetworkInfoError(
      port.id,
      `Neutron failed to bind port ${port.id} on host ${port['binding:host_id'] || '(none)'} (binding:vif_type binding_failed)`,
    );
  }
  throw new NetworkInfoError(
    port.id,
    `port ${port.id} has binding:vif_type ${type}; only ovs and bridge are supported`,
  );
}

/** _nw_info_build_network: bridge_name from the binding, else br-int for ovs, brq<net-id> for linuxbridge. */
export function vifBridge(port: NeutronPort, type: VifType, options: NetworkInfoOptions): string {
  const fallback = type === 'ovs' ? options.integrationBridge : `brq${port.network_id}`;
  return (port['binding:vif_details']?.bridge_name ?? fallback).slice(0, NIC_NAME_LEN);
}

/** _get_subnets_from_port: the subnets the port has fixed IPs on, each with those IPs, in fixed_ips order. */
function portSubnets(port: NeutronPort, subnets: Map<string, NeutronSubnet>): Subnet[] {
  const out = new Map<string, Subnet>();
  for (const ip of port.fixed_ips) {
    const subnet = subnets.get(ip.subnet_id);
    if (!subnet) {
      throw new NetworkInfoError(
        port.id,
        `port ${port.id} has fixed IP ${ip.ip_address} on unknown subnet ${ip.subnet_id}`,
      );
    }
    if (subnet.network_id !== port.network_id) {
      throw new NetworkInfoError(port.id, `port ${port.id}: subnet ${subnet.id} is not on network ${port.network_id}`);
    }
    const version = ipVersion(ip.ip_address);
    if (version !== subnet.ip_version) {
      throw new NetworkInfoError(
        port.id,
        `port ${port.id}: fixed IP ${ip.ip_address} is not IPv${subnet.ip_version} like subnet ${subnet.id}`,
      );
    }
    let entry = out.get(subnet.id);
    if (!entry) {
      entry = { id: subnet.id, cidr: subnet.cidr, gateway: subnet.gateway_ip, ips: [] };
      out.set(subnet.id, entry);
    }
    entry.ips.push({ address: ip.ip_address, version } satisfies FixedIp);
  }
  return [...out.values()];
}

function hostPrefix(address: string): { prefix: string; version: 4 | 6 } | null {
  const v = ipVersion(address);
  if (v !== 0) return { prefix: `${address}/${v === 4 ? 32 : 128}`, version: v };
  const c = cidrVersion(address);
  return c === 0 ? null : { prefix: address, version: c };
}

/** The port's groups' rules as one list; remote_group_id rules become one rule per member address. */
function securityGroupRules(
  port: NeutronPort,
  groups: Map<string, NeutronSecurityGroup>,
  remoteGroupAddresses: Record<string, string[]>,
): SecurityGroupRule[] {
  if (port.port_security_enabled === false) return [];
  const seen = new Set<string>();
  const out: SecurityGroupRule[] = [];
  const add = (r: SecurityGroupRule) => {
    const key = JSON.stringify(r);
    if (!seen.has(key)) {
      seen.add(key);
      out.push(r);
    }
  };
  for (const groupId of port.security_groups) {
    const group = groups.get(groupId);
    if (!group) throw new NetworkInfoError(port.id, `port ${port.id} is in unknown security group ${groupId}`);
    for (const rule of group.security_group_rules) {
      const base = {
        direction: rule.direction,
        ethertype: rule.ethertype,
        protocol: rule.protocol === 'any' ? null : rule.protocol,
        portRangeMin: rule.port_range_min,
        portRangeMax: rule.port_range_max,
      };
      if (rule.remote_group_id === null) {
        add({ ...base, remoteIpPrefix: rule.remote_ip_prefix });
        continue;
      }
      const members = Object.hasOwn(remoteGroupAddresses, rule.remote_group_id)
        ? remoteGroupAddresses[rule.remote_group_id]!
        : [];
      const wanted = rule.ethertype === 'IPv4' ? 4 : 6;
      for (const address of members) {
        const host = hostPrefix(address);
        if (host && host.version === wanted) add({ ...base, remoteIpPrefix: host.prefix });
      }
    }
  }
  return out;
}

export function buildVif(port: NeutronPort, answers: NeutronAnswers, options: NetworkInfoOptions): Vif {
  const type = vifType(port);
  const network = answers.networks.find((n) => n.id === port.network_id);
  if (!network) throw new NetworkInfoError(port.id, `port ${port.id} is on unknown network ${port.network_id}`);
  const details = port['binding:vif_details'] ?? {};
  return {
    id: port.id,
    address: port.mac_address,
    devname: tapName(port.id),
    type,
    vnicType: port['binding:vnic_type'] ?? 'normal',
    network: {
      id: network.id,
      label: network.name,
      bridge: vifBridge(port, type, options),
      mtu: network.mtu ?? 1500,
      subnets: portSubnets(port, new Map(answers.subnets.map((sn) => [sn.id, sn]))),
    },
    active: vifActive(port),
    details: { ovsHybridPlug: details.ovs_hybrid_plug ?? false, portFilter: details.port_filter ?? false },
    portSecurityEnabled: port.port_security_enabled ?? true,
    allowedAddressPairs: port.allowed_address_pairs.map((p) => ({
      ipAddress: p.ip_address,
      macAddress: p.mac_address ?? port.mac_address,
    })),
    securityGroupRules: securityGroupRules(
      port,
      new Map(answers.securityGroups.map((g) => [g.id, g])),
      answers.remoteGroupAddresses ?? {},
    ),
  };
}

/** One vif per expected port, in the instance's port order. */
export function buildNetworkInfo(
  portOrder: string[],
  answers: NeutronAnswers,
  options: NetworkInfoOptions,
): NetworkInfo {
  const byId = new Map(answers.ports.map((p) => [p.id, p]));
  return portOrder.map((id) => {
    const port = byId.get(id.toLowerCase());
    if (!port) throw new NetworkInfoError(id, `port ${id} is not among Neutron's ports for this instance`);
    return buildVif(port, answers, options);
  });
}

/** The remote_group_id values the ports' rules refer to: whose members the caller must look up. */
export function remoteGroupIds(ports: NeutronPort[], groups: NeutronSecurityGroup[]): string[] {
  const used = new Set(ports.filter((p) => p.port_security_enabled !== false).flatMap((p) => p.security_groups));
  const out = new Set<string>();
  for (const g of groups) {
    if (!used.has(g.id)) continue;
    for (const r of g.security_group_rules) if (r.remote_group_id) out.add(r.remote_group_id);
  }
  return [...out];
}

/** The addresses a port contributes to a remote group: fixed IPs and allowed address pairs. */
export function memberAddresses(ports: NeutronPort[]): string[] {
  return ports.flatMap((p) => [
    ...p.fixed_ips.map((ip) => ip.ip_address),
    ...p.allowed_address_pairs.map((a) => a.ip_address),
  ]);
}
