import { randomBytes, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { z } from 'zod';
import { contains, formatCidr, formatIp, hostRange, parseCidr, parseIp, type IpVersion } from './addresses.js';

// The dev Neutron's resources and rules: networks, subnets (with IPAM), ports,
// security groups and rules, with Neutron's JSON shapes, error types and the
// checks a real Neutron makes on the calls we use. One tenant (project).

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

export const BEHAVIOUR_MODES = ['normal', 'failed', 'silent', 'late', 'early'] as const;
export type BehaviourMode = (typeof BEHAVIOUR_MODES)[number];
export interface PortBehaviour {
  mode: BehaviourMode;
  /** late: how long after the tap appears the port goes ACTIVE and the event is sent */
  delayMs: number;
}
export const DEFAULT_BEHAVIOUR: PortBehaviour = { mode: 'normal', delayMs: 5000 };

export type PortStatus = 'ACTIVE' | 'DOWN' | 'BUILD' | 'ERROR';

interface Stamped {
  created_at: string;
  updated_at: string;
  revision_number: number;
}

interface NetworkRow extends Stamped {
  id: string;
  name: string;
  description: string;
  admin_state_up: boolean;
  mtu: number;
}

interface SubnetRow extends Stamped {
  id: string;
  network_id: string;
  name: string;
  description: string;
  ip_version: IpVersion;
  cidr: string;
  gateway_ip: string | null;
  enable_dhcp: boolean;
  dns_nameservers: string[];
}

export interface PortRow extends Stamped {
  id: string;
  network_id: string;
  name: string;
  description: string;
  mac_address: string;
  admin_state_up: boolean;
  status: PortStatus;
  device_id: string;
  device_owner: string;
  fixed_ips: { subnet_id: string; ip_address: string }[];
  allowed_address_pairs: { ip_address: string; mac_address: string }[];
  security_groups: string[];
  port_security_enabled: boolean;
  host_id: string;
  vif_type: string;
  vif_details: Record<string, unknown>;
  vnic_type: string;
  profile: Record<string, unknown>;
  behaviour: PortBehaviour;
}

interface SecurityGroupRow extends Stamped {
  id: string;
  name: string;
  description: string;
}

interface RuleRow extends Stamped {
  id: string;
  security_group_id: string;
  direction: 'ingress' | 'egress';
  ethertype: 'IPv4' | 'IPv6';
  protocol: string | null;
  port_range_min: number | null;
  port_range_max: number | null;
  remote_ip_prefix: string | null;
  remote_group_id: string | null;
  description: string;
  /** The default group's stand-in for "ingress from the same group": one rule per subnet. */
  for_subnet?: string;
}

export interface Snapshot {
  version: 1;
  project_id: string;
  networks: NetworkRow[];
  subnets: SubnetRow[];
  ports: PortRow[];
  security_groups: SecurityGroupRow[];
  rules: RuleRow[];
}

// ---- request bodies (strict: Neutron refuses unknown attributes) ------------

const uuid = z.uuid();
const name = z.string().max(255);
const mac = z.string().regex(/^[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}$/, 'is not a valid MAC address');
const ipText = z.string().refine((s) => parseIp(s) !== null, 'is not a valid IP address');
const cidrText = z.string().refine((s) => parseCidr(s) !== null, 'is not a valid CIDR');
const ipOrCidr = z.string().refine((s) => parseIp(s) !== null || parseCidr(s) !== null, 'is not a valid IP address');
const deviceName = z.string().regex(/^[A-Za-z0-9_-]{1,15}$/, 'is not a valid device name');
const hostId = z
  .string()
  .max(255)
  .regex(/^(?:|[A-Za-z0-9][A-Za-z0-9._-]*)$/, 'is not a valid host name');
const vifDetails = z
  .object({ port_filter: z.boolean(), ovs_hybrid_plug: z.boolean(), bridge_name: deviceName })
  .partial()
  .strict();
const addressPairs = z.array(z.object({ ip_address: ipOrCidr, mac_address: mac.optional() }).strict()).max(10);
const projectFields = { tenant_id: z.string().max(255).optional(), project_id: z.string().max(255).optional() };

export const networkCreate = z
  .object({
    name: name.default(''),
    description: name.default(''),
    admin_state_up: z.boolean().default(true),
    mtu: z.number().int().min(68).max(65535).default(1500),
    shared: z.literal(false).optional(),
    ...projectFields,
  })
  .strict();

export const subnetCreate = z
  .object({
    network_id: uuid,
    cidr: cidrText,
    ip_version: z.union([z.literal(4), z.literal(6)]),
    name: name.default(''),
    description: name.default(''),
    gateway_ip: ipText.nullable().optional(),
    enable_dhcp: z.boolean().default(true),
    dns_nameservers: z.array(ipText).max(5).default([]),
    ...projectFields,
  })
  .strict();

export const portCreate = z
  .object({
    network_id: uuid,
    name: name.default(''),
    description: name.default(''),
    admin_state_up: z.boolean().default(true),
    mac_address: mac.optional(),
    fixed_ips: z
      .array(z.object({ subnet_id: uuid.optional(), ip_address: ipText.optional() }).strict())
      .max(5)
      .optional(),
    security_groups: z.array(uuid).max(10).optional(),
    port_security_enabled: z.boolean().default(true),
    allowed_address_pairs: addressPairs.default([]),
    device_id: z.string().max(255).default(''),
    device_owner: z.string().max(255).default(''),
    'binding:host_id': hostId.default(''),
    'binding:vnic_type': z.literal('normal').default('normal'),
    'binding:profile': z.record(z.string(), z.unknown()).default({}),
    // Dev server only (a real Neutron computes these from its mechanism driver):
    'binding:vif_type': z
      .string()
      .regex(/^[a-z][a-z0-9_]{0,31}$/)
      .default('ovs'),
    'binding:vif_details': vifDetails.default({}),
    ...projectFields,
  })
  .strict();

export const portUpdate = z
  .object({
    name,
    description: name,
    admin_state_up: z.boolean(),
    device_id: z.string().max(255),
    device_owner: z.string().max(255),
    'binding:host_id': hostId.nullable(),
    'binding:profile': z.record(z.string(), z.unknown()),
    security_groups: z.array(uuid).max(10),
    port_security_enabled: z.boolean(),
    allowed_address_pairs: addressPairs,
    'binding:vif_details': vifDetails,
  })
  .partial()
  .strict();

export const securityGroupCreate = z
  .object({
    name: name.default(''),
    description: name.default(''),
    stateful: z.literal(true).optional(),
    ...projectFields,
  })
  .strict();

export const ruleCreate = z
  .object({
    security_group_id: uuid,
    direction: z.enum(['ingress', 'egress']),
    ethertype: z.enum(['IPv4', 'IPv6']).default('IPv4'),
    protocol: z
      .union([z.string().regex(/^(?:[a-z][a-z0-9-]{0,15}|\d{1,3})$/), z.number().int().min(0).max(255)])
      .nullable()
      .default(null),
    port_range_min: z.number().int().min(0).max(65535).nullable().default(null),
    port_range_max: z.number().int().min(0).max(65535).nullable().default(null),
    remote_ip_prefix: cidrText.nullable().default(null),
    remote_group_id: uuid.nullable().default(null),
    description: name.default(''),
    ...projectFields,
  })
  .strict();

export const behaviourBody = z
  .object({ mode: z.enum(BEHAVIOUR_MODES), delayMs: z.number().int().min(0).max(600_000).optional() })
  .strict();

const PORT_PROTOCOLS = new Set(['tcp', 'udp', 'sctp', 'dccp', 'udplite', '6', '17', '132', '33', '136']);

const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

const notFound = (kind: string, id: string) =>
  new ApiError(404, `${kind}NotFound`, `${kind.replace(/([a-z])([A-Z])/g, '$1 $2')} ${id} could not be found.`);

export interface StateEvents {
  /** Any change: persist. */
  changed: [];
  /** A port's binding fields changed (device_id, device_owner, binding:host_id, admin_state_up). */
  portUpdated: [before: PortRow, after: PortRow];
  portDeleted: [port: PortRow];
}

export class DevNeutronState extends EventEmitter<StateEvents> {
  readonly projectId: string;
  private readonly networks = new Map<string, NetworkRow>();
  private readonly subnets = new Map<string, SubnetRow>();
  private readonly ports = new Map<string, PortRow>();
  private readonly groups = new Map<string, SecurityGroupRow>();
  private readonly rules = new Map<string, RuleRow>();

  constructor(snapshot?: Snapshot) {
    super();
    this.projectId = snapshot?.project_id ?? randomUUID().replaceAll('-', '');
    for (const n of snapshot?.networks ?? []) this.networks.set(n.id, n);
    for (const s of snapshot?.subnets ?? []) this.subnets.set(s.id, s);
    for (const p of snapshot?.ports ?? []) this.ports.set(p.id, { ...p, behaviour: p.behaviour ?? DEFAULT_BEHAVIOUR });
    for (const g of snapshot?.security_groups ?? []) this.groups.set(g.id, g);
    for (const r of snapshot?.rules ?? []) this.rules.set(r.id, r);
    if (![...this.groups.values()].some((g) => g.name === 'default')) this.createDefaultGroup();
  }

  snapshot(): Snapshot {
    return {
      version: 1,
      project_id: this.projectId,
      networks: [...this.networks.values()],
      subnets: [...this.subnets.values()],
      ports: [...this.ports.values()],
      security_groups: [...this.groups.values()],
      rules: [...this.rules.values()],
    };
  }

  // ---- views (Neutron's JSON) ------------------------------------------------

  private owned() {
    return { tenant_id: this.projectId, project_id: this.projectId };
  }

  networkView(n: NetworkRow) {
    return {
      id: n.id,
      name: n.name,
      description: n.description,
      ...this.owned(),
      admin_state_up: n.admin_state_up,
      status: 'ACTIVE',
      mtu: n.mtu,
      subnets: [...this.subnets.values()].filter((s) => s.network_id === n.id).map((s) => s.id),
      shared: false,
      'router:external': false,
      port_security_enabled: true,
      availability_zone_hints: [],
      availability_zones: ['nova'],
      ipv4_address_scope: null,
      ipv6_address_scope: null,
      tags: [],
      created_at: n.created_at,
      updated_at: n.updated_at,
      revision_number: n.revision_number,
    };
  }

  subnetView(s: SubnetRow) {
    return {
      id: s.id,
      name: s.name,
      description: s.description,
      ...this.owned(),
      network_id: s.network_id,
      ip_version: s.ip_version,
      cidr: s.cidr,
      gateway_ip: s.gateway_ip,
      enable_dhcp: s.enable_dhcp,
      allocation_pools: this.allocationPools(s),
      dns_nameservers: s.dns_nameservers,
      host_routes: [],
      ipv6_ra_mode: null,
      ipv6_address_mode: null,
      subnetpool_id: null,
      service_types: [],
      tags: [],
      created_at: s.created_at,
      updated_at: s.updated_at,
      revision_number: s.revision_number,
    };
  }

  portView(p: PortRow) {
    return {
      id: p.id,
      name: p.name,
      description: p.description,
      ...this.owned(),
      network_id: p.network_id,
      mac_address: p.mac_address,
      admin_state_up: p.admin_state_up,
      status: p.status,
      device_id: p.device_id,
      device_owner: p.device_owner,
      fixed_ips: p.fixed_ips,
      allowed_address_pairs: p.allowed_address_pairs,
      extra_dhcp_opts: [],
      security_groups: p.security_groups,
      port_security_enabled: p.port_security_enabled,
      'binding:host_id': p.host_id,
      'binding:vif_type': p.vif_type,
      'binding:vif_details': p.vif_details,
      'binding:vnic_type': p.vnic_type,
      'binding:profile': p.profile,
      tags: [],
      created_at: p.created_at,
      updated_at: p.updated_at,
      revision_number: p.revision_number,
    };
  }

  ruleView(r: RuleRow) {
    return {
      id: r.id,
      ...this.owned(),
      security_group_id: r.security_group_id,
      direction: r.direction,
      ethertype: r.ethertype,
      protocol: r.protocol,
      port_range_min: r.port_range_min,
      port_range_max: r.port_range_max,
      remote_ip_prefix: r.remote_ip_prefix,
      remote_group_id: r.remote_group_id,
      remote_address_group_id: null,
      description: r.description,
      created_at: r.created_at,
      updated_at: r.updated_at,
      revision_number: r.revision_number,
    };
  }

  groupView(g: SecurityGroupRow) {
    return {
      id: g.id,
      name: g.name,
      description: g.description,
      ...this.owned(),
      stateful: true,
      security_group_rules: [...this.rules.values()]
        .filter((r) => r.security_group_id === g.id)
        .map((r) => this.ruleView(r)),
      tags: [],
      created_at: g.created_at,
      updated_at: g.updated_at,
      revision_number: g.revision_number,
    };
  }

  // ---- lookups ---------------------------------------------------------------

  listNetworks() {
    return [...this.networks.values()].map((n) => this.networkView(n));
  }
  listSubnets() {
    return [...this.subnets.values()].map((s) => this.subnetView(s));
  }
  listPorts() {
    return [...this.ports.values()].map((p) => this.portView(p));
  }
  listSecurityGroups() {
    return [...this.groups.values()].map((g) => this.groupView(g));
  }
  listRules() {
    return [...this.rules.values()].map((r) => this.ruleView(r));
  }

  network(id: string): NetworkRow {
    const n = this.networks.get(id);
    if (!n) throw notFound('Network', id);
    return n;
  }
  subnet(id: string): SubnetRow {
    const s = this.subnets.get(id);
    if (!s) throw notFound('Subnet', id);
    return s;
  }
  port(id: string): PortRow {
    const p = this.ports.get(id);
    if (!p) throw notFound('Port', id);
    return p;
  }
  group(id: string): SecurityGroupRow {
    const g = this.groups.get(id);
    if (!g) throw notFound('SecurityGroup', id);
    return g;
  }
  rule(id: string): RuleRow {
    const r = this.rules.get(id);
    if (!r) throw notFound('SecurityGroupRule', id);
    return r;
  }
  allPorts(): PortRow[] {
    return [...this.ports.values()];
  }

  // ---- networks and subnets ----------------------------------------------------

  createNetwork(body: z.output<typeof networkCreate>) {
    const t = now();
    const n: NetworkRow = {
      id: randomUUID(),
      name: body.name,
      description: body.description,
      admin_state_up: body.admin_state_up,
      mtu: body.mtu,
      created_at: t,
      updated_at: t,
      revision_number: 1,
    };
    this.networks.set(n.id, n);
    this.emit('changed');
    return this.networkView(n);
  }

  deleteNetwork(id: string): void {
    this.network(id);
    if ([...this.ports.values()].some((p) => p.network_id === id)) {
      throw new ApiError(
        409,
        'NetworkInUse',
        `Unable to complete operation on network ${id}. There are one or more ports still in use on the network.`,
      );
    }
    for (const s of [...this.subnets.values()]) if (s.network_id === id) this.removeSubnet(s.id);
    this.networks.delete(id);
    this.emit('changed');
  }

  createSubnet(body: z.output<typeof subnetCreate>) {
    this.network(body.network_id);
    const c = parseCidr(body.cidr)!;
    if (c.version !== body.ip_version) {
      throw new ApiError(
        400,
        'HTTPBadRequest',
        `Invalid input for operation: cidr ${body.cidr} is not IPv${body.ip_version}.`,
      );
    }
    const range = hostRange(c);
    if (!range || (c.version === 4 && c.prefix > 30) || (c.version === 6 && c.prefix > 126)) {
      throw new ApiError(
        400,
        'HTTPBadRequest',
        `Invalid input for operation: cidr ${body.cidr} has too few addresses.`,
      );
    }
    for (const other of this.subnets.values()) {
      const o = parseCidr(other.cidr)!;
      if (
        other.network_id === body.network_id &&
        (contains(o, c.version, c.network) || contains(c, o.version, o.network))
      ) {
        throw new ApiError(
          400,
          'InvalidInput',
          `Invalid input for operation: Requested subnet with cidr: ${body.cidr} for network: ${body.network_id} overlaps with another subnet.`,
        );
      }
    }
    let gateway: string | null = formatIp(c.version, range.first);
    if (body.gateway_ip === null) gateway = null;
    else if (body.gateway_ip !== undefined) {
      const g = parseIp(body.gateway_ip)!;
      if (!contains(c, g.version, g.value)) {
        throw new ApiError(
          400,
          'InvalidInput',
          `Invalid input for operation: Gateway IP ${body.gateway_ip} is outside ${body.cidr}.`,
        );
      }
      gateway = formatIp(g.version, g.value);
    }
    const t = now();
    const s: SubnetRow = {
      id: randomUUID(),
      network_id: body.network_id,
      name: body.name,
      description: body.description,
      ip_version: body.ip_version,
      cidr: formatCidr(c),
      gateway_ip: gateway,
      enable_dhcp: body.enable_dhcp,
      dns_nameservers: body.dns_nameservers,
      created_at: t,
      updated_at: t,
      revision_number: 0,
    };
    this.subnets.set(s.id, s);
    // Dev simplification of the default group's "ingress from members of default":
    // ingress from the subnet's CIDR.
    const dflt = [...this.groups.values()].find((g) => g.name === 'default');
    if (dflt) {
      this.addRule({
        security_group_id: dflt.id,
        direction: 'ingress',
        ethertype: s.ip_version === 4 ? 'IPv4' : 'IPv6',
        remote_ip_prefix: s.cidr,
        description: `ingress from subnet ${s.id} (dev stand-in for remote_group_id=default)`,
        for_subnet: s.id,
      });
    }
    this.emit('changed');
    return this.subnetView(s);
  }

  deleteSubnet(id: string): void {
    this.subnet(id);
    if ([...this.ports.values()].some((p) => p.fixed_ips.some((ip) => ip.subnet_id === id))) {
      throw new ApiError(
        409,
        'SubnetInUse',
        `Unable to complete operation on subnet ${id}: One or more ports have an IP allocation from this subnet.`,
      );
    }
    this.removeSubnet(id);
    this.emit('changed');
  }

  private removeSubnet(id: string): void {
    this.subnets.delete(id);
    for (const r of [...this.rules.values()]) if (r.for_subnet === id) this.rules.delete(r.id);
  }

  private allocationPools(s: SubnetRow): { start: string; end: string }[] {
    const c = parseCidr(s.cidr)!;
    const range = hostRange(c)!;
    const g = s.gateway_ip ? parseIp(s.gateway_ip)!.value : null;
    const pools: { start: bigint; end: bigint }[] = [];
    if (g === null || g < range.first || g > range.last) pools.push({ start: range.first, end: range.last });
    else {
      if (g > range.first) pools.push({ start: range.first, end: g - 1n });
      if (g < range.last) pools.push({ start: g + 1n, end: range.last });
    }
    return pools.map((p) => ({ start: formatIp(c.version, p.start), end: formatIp(c.version, p.end) }));
  }

  private usedAddresses(subnetId: string): Set<string> {
    const used = new Set<string>();
    for (const p of this.ports.values()) {
      for (const ip of p.fixed_ips) if (ip.subnet_id === subnetId) used.add(ip.ip_address);
    }
    return used;
  }

  /** The lowest free address of the subnet's pools (Neutron allocates the same way, if in random order). */
  private allocate(s: SubnetRow, taken: Set<string>): string {
    const c = parseCidr(s.cidr)!;
    const used = this.usedAddresses(s.id);
    for (const pool of this.allocationPools(s)) {
      const end = parseIp(pool.end)!.value;
      let tries = 0;
      for (let v = parseIp(pool.start)!.value; v <= end && tries < 1_000_000; v++, tries++) {
        const ip = formatIp(c.version, v);
        if (!used.has(ip) && !taken.has(ip)) return ip;
      }
    }
    throw new ApiError(409, 'IpAddressGenerationFailure', `No more IP addresses available on network ${s.network_id}.`);
  }

  private fixedIps(networkId: string, requested: { subnet_id?: string; ip_address?: string }[] | undefined) {
    const subnets = [...this.subnets.values()].filter((s) => s.network_id === networkId);
    const out: { subnet_id: string; ip_address: string }[] = [];
    const taken = new Set<string>();
    if (requested === undefined) {
      // Neutron's default: one address from a v4 subnet and one from a v6 subnet.
      for (const version of [4, 6] as const) {
        const s = subnets.find((sn) => sn.ip_version === version);
        if (s) out.push({ subnet_id: s.id, ip_address: this.allocate(s, taken) });
      }
      return out;
    }
    for (const r of requested) {
      let subnet: SubnetRow | undefined;
      let ip: string | undefined;
      if (r.ip_address !== undefined) {
        const parsed = parseIp(r.ip_address)!;
        subnet = r.subnet_id
          ? subnets.find((s) => s.id === r.subnet_id)
          : subnets.find((s) => contains(parseCidr(s.cidr)!, parsed.version, parsed.value));
        const c = subnet ? parseCidr(subnet.cidr)! : null;
        const range = c ? hostRange(c) : null;
        if (
          !subnet ||
          !range ||
          !contains(c!, parsed.version, parsed.value) ||
          parsed.value < range.first ||
          parsed.value > range.last
        ) {
          throw new ApiError(
            400,
            'InvalidIpForNetwork',
            `IP address ${r.ip_address} is not a valid IP for any of the subnets on the specified network.`,
          );
        }
        ip = formatIp(parsed.version, parsed.value);
        if (this.usedAddresses(subnet.id).has(ip) || taken.has(ip) || ip === subnet.gateway_ip) {
          throw new ApiError(
            409,
            'IpAddressAlreadyAllocated',
            `IP address ${ip} already allocated in subnet ${subnet.id}`,
          );
        }
      } else if (r.subnet_id !== undefined) {
        subnet = subnets.find((s) => s.id === r.subnet_id);
        if (!subnet)
          throw new ApiError(
            400,
            'InvalidInput',
            `Invalid input for operation: Failed to create port on network ${networkId}, because fixed_ips included invalid subnet ${r.subnet_id}.`,
          );
        ip = this.allocate(subnet, taken);
      } else {
        throw new ApiError(
          400,
          'InvalidInput',
          'Invalid input for operation: IP allocation requires subnet_id or ip_address.',
        );
      }
      taken.add(ip);
      out.push({ subnet_id: subnet.id, ip_address: ip });
    }
    return out;
  }

  // ---- ports -----------------------------------------------------------------

  private newMac(networkId: string): string {
    for (;;) {
      const mac = `fa:16:3e:${[...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
      if (![...this.ports.values()].some((p) => p.network_id === networkId && p.mac_address === mac)) return mac;
    }
  }

  private checkGroups(ids: string[]): void {
    for (const id of ids) this.group(id);
  }

  createPort(body: z.output<typeof portCreate>) {
    this.network(body.network_id);
    const mac = body.mac_address?.toLowerCase() ?? this.newMac(body.network_id);
    if ([...this.ports.values()].some((p) => p.network_id === body.network_id && p.mac_address === mac)) {
      throw new ApiError(
        409,
        'MacAddressInUse',
        `Unable to complete operation for network ${body.network_id}. The mac address ${mac} is in use.`,
      );
    }
    const groups = body.security_groups ?? (body.port_security_enabled ? [this.defaultGroupId()] : []);
    this.checkPortSecurity(body.port_security_enabled, groups, body.allowed_address_pairs);
    this.checkGroups(groups);
    const t = now();
    const p: PortRow = {
      id: randomUUID(),
      network_id: body.network_id,
      name: body.name,
      description: body.description,
      mac_address: mac,
      admin_state_up: body.admin_state_up,
      status: 'DOWN',
      device_id: body.device_id,
      device_owner: body.device_owner,
      fixed_ips: this.fixedIps(body.network_id, body.fixed_ips),
      allowed_address_pairs: body.allowed_address_pairs.map((a) => ({
        ip_address: a.ip_address,
        mac_address: a.mac_address?.toLowerCase() ?? mac,
      })),
      security_groups: groups,
      port_security_enabled: body.port_security_enabled,
      host_id: body['binding:host_id'],
      vif_type: body['binding:vif_type'],
      vif_details: { port_filter: false, ovs_hybrid_plug: false, ...body['binding:vif_details'] },
      vnic_type: body['binding:vnic_type'],
      profile: body['binding:profile'],
      behaviour: DEFAULT_BEHAVIOUR,
      created_at: t,
      updated_at: t,
      revision_number: 1,
    };
    this.ports.set(p.id, p);
    this.emit('changed');
    return this.portView(p);
  }

  private checkPortSecurity(enabled: boolean, groups: string[], pairs: unknown[]): void {
    if (!enabled && groups.length > 0) {
      throw new ApiError(
        409,
        'PortSecurityAndIPRequiredForSecurityGroups',
        'Port security must be enabled and port must have an IP address in order to use security groups.',
      );
    }
    if (!enabled && pairs.length > 0) {
      throw new ApiError(
        409,
        'AddressPairAndPortSecurityRequired',
        'Port Security must be enabled in order to have allowed address pairs on a port.',
      );
    }
  }

  updatePort(id: string, body: z.output<typeof portUpdate>, ifRevision: number | null) {
    const before = this.port(id);
    if (ifRevision !== null && ifRevision !== before.revision_number) {
      throw new ApiError(
        412,
        'RevisionNumberConstraintFailed',
        `Constrained to ${ifRevision}, but current revision is ${before.revision_number}`,
      );
    }
    const after: PortRow = { ...before };
    if (body.name !== undefined) after.name = body.name;
    if (body.description !== undefined) after.description = body.description;
    if (body.admin_state_up !== undefined) after.admin_state_up = body.admin_state_up;
    if (body.device_id !== undefined) after.device_id = body.device_id;
    if (body.device_owner !== undefined) after.device_owner = body.device_owner;
    if (body['binding:host_id'] !== undefined) after.host_id = body['binding:host_id'] ?? '';
    if (body['binding:profile'] !== undefined) after.profile = body['binding:profile'];
    if (body['binding:vif_details'] !== undefined)
      after.vif_details = { ...after.vif_details, ...body['binding:vif_details'] };
    if (body.port_security_enabled !== undefined) after.port_security_enabled = body.port_security_enabled;
    if (body.security_groups !== undefined) after.security_groups = body.security_groups;
    if (body.allowed_address_pairs !== undefined) {
      after.allowed_address_pairs = body.allowed_address_pairs.map((a) => ({
        ip_address: a.ip_address,
        mac_address: a.mac_address?.toLowerCase() ?? after.mac_address,
      }));
    }
    this.checkPortSecurity(after.port_security_enabled, after.security_groups, after.allowed_address_pairs);
    this.checkGroups(after.security_groups);
    after.updated_at = now();
    after.revision_number = before.revision_number + 1;
    this.ports.set(id, after);
    this.emit('changed');
    this.emit('portUpdated', before, after);
    return this.portView(this.port(id));
  }

  /** The L2 agent's status report. Returns the previous status. */
  setPortStatus(id: string, status: PortStatus): PortStatus {
    const p = this.port(id);
    const previous = p.status;
    if (previous !== status) {
      this.ports.set(id, { ...p, status, updated_at: now(), revision_number: p.revision_number + 1 });
      this.emit('changed');
    }
    return previous;
  }

  setBehaviour(id: string, behaviour: PortBehaviour): void {
    const p = this.port(id);
    this.ports.set(id, { ...p, behaviour });
    this.emit('changed');
  }

  deletePort(id: string): void {
    const p = this.port(id);
    this.ports.delete(id);
    this.emit('changed');
    this.emit('portDeleted', p);
  }

  // ---- security groups -------------------------------------------------------

  private defaultGroupId(): string {
    return [...this.groups.values()].find((g) => g.name === 'default')!.id;
  }

  private createDefaultGroup(): void {
    const t = now();
    const g: SecurityGroupRow = {
      id: randomUUID(),
      name: 'default',
      description: 'Default security group',
      created_at: t,
      updated_at: t,
      revision_number: 1,
    };
    this.groups.set(g.id, g);
    for (const ethertype of ['IPv4', 'IPv6'] as const) {
      this.addRule({
        security_group_id: g.id,
        direction: 'egress',
        ethertype,
        remote_ip_prefix: null,
        description: '',
      });
    }
    this.emit('changed');
  }

  private addRule(r: Partial<RuleRow> & Pick<RuleRow, 'security_group_id' | 'direction' | 'ethertype'>): RuleRow {
    const t = now();
    const row: RuleRow = {
      id: randomUUID(),
      protocol: null,
      port_range_min: null,
      port_range_max: null,
      remote_ip_prefix: null,
      remote_group_id: null,
      description: '',
      created_at: t,
      updated_at: t,
      revision_number: 0,
      ...r,
    };
    this.rules.set(row.id, row);
    return row;
  }

  createSecurityGroup(body: z.output<typeof securityGroupCreate>) {
    if (body.name === 'default') {
      throw new ApiError(409, 'SecurityGroupDefaultAlreadyExists', 'Default security group already exists.');
    }
    const t = now();
    const g: SecurityGroupRow = {
      id: randomUUID(),
      name: body.name,
      description: body.description,
      created_at: t,
      updated_at: t,
      revision_number: 1,
    };
    this.groups.set(g.id, g);
    // A new group allows all egress, as Neutron's does.
    for (const ethertype of ['IPv4', 'IPv6'] as const) {
      this.addRule({ security_group_id: g.id, direction: 'egress', ethertype });
    }
    this.emit('changed');
    return this.groupView(g);
  }

  deleteSecurityGroup(id: string): void {
    const g = this.group(id);
    if (g.name === 'default')
      throw new ApiError(
        409,
        'SecurityGroupCannotRemoveDefault',
        'Insufficient rights for removing default security group.',
      );
    if ([...this.ports.values()].some((p) => p.security_groups.includes(id))) {
      throw new ApiError(409, 'SecurityGroupInUse', `Security Group ${id} in use.`);
    }
    for (const r of [...this.rules.values()]) if (r.security_group_id === id) this.rules.delete(r.id);
    this.groups.delete(id);
    this.emit('changed');
  }

  createRule(body: z.output<typeof ruleCreate>) {
    this.group(body.security_group_id);
    if (body.remote_group_id !== null) this.group(body.remote_group_id);
    const protocol = body.protocol === null ? null : String(body.protocol);
    const bad = (type: string, msg: string) => new ApiError(400, type, msg);
    if (body.remote_ip_prefix !== null && body.remote_group_id !== null) {
      throw bad(
        'SecurityGroupRemoteGroupAndRemoteIpPrefix',
        'Only remote_ip_prefix or remote_group_id may be provided.',
      );
    }
    const { port_range_min: min, port_range_max: max } = body;
    if ((min !== null || max !== null) && protocol === null) {
      throw bad('SecurityGroupProtocolRequiredWithPorts', 'Must also specify protocol if port range is given.');
    }
    if (protocol !== null && PORT_PROTOCOLS.has(protocol) && min !== null && max !== null && min > max) {
      throw bad('SecurityGroupInvalidPortRange', 'For TCP/UDP protocols, port_range_min must be <= port_range_max');
    }
    let prefix: string | null = null;
    if (body.remote_ip_prefix !== null) {
      const c = parseCidr(body.remote_ip_prefix)!;
      if ((c.version === 4 ? 'IPv4' : 'IPv6') !== body.ethertype) {
        throw bad(
          'SecurityGroupRuleParameterConflict',
          `Conflicting value ethertype ${body.ethertype} for CIDR ${body.remote_ip_prefix}`,
        );
      }
      prefix = formatCidr(c);
    }
    const fields = {
      security_group_id: body.security_group_id,
      direction: body.direction,
      ethertype: body.ethertype,
      protocol,
      port_range_min: min,
      port_range_max: max,
      remote_ip_prefix: prefix,
      remote_group_id: body.remote_group_id,
    };
    const same = [...this.rules.values()].find((r) =>
      (Object.keys(fields) as (keyof typeof fields)[]).every((k) => r[k] === fields[k]),
    );
    if (same)
      throw new ApiError(409, 'SecurityGroupRuleExists', `Security group rule already exists. Rule id is ${same.id}.`);
    const row = this.addRule({ ...fields, description: body.description });
    this.emit('changed');
    return this.ruleView(row);
  }

  deleteRule(id: string): void {
    this.rule(id);
    this.rules.delete(id);
    this.emit('changed');
  }
}
