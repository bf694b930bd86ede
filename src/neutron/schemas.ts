import { isIP } from 'node:net';
import { z } from 'zod';

// Neutron API v2.0 answers, validated before anything in them is used. Values that
// later reach libvirt XML, ovs-vsctl or nft (MACs, IPs, CIDRs, device names,
// protocols) are checked here against tight patterns; unknown fields are dropped.
// Bounds on strings and arrays keep a hostile answer from costing much.

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const MAC_RE = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;
/** A Linux network device name, as in config.integration_bridge. */
export const DEVICE_NAME_RE = /^[A-Za-z0-9_-]{1,15}$/;
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;

/** 4 or 6 for a plain address (no zone id, no prefix), else 0. */
export function ipVersion(s: string): 0 | 4 | 6 {
  if (s.length > 45 || s.includes('%')) return 0;
  return isIP(s) as 0 | 4 | 6;
}

/** 4 or 6 for `address/prefix` with a prefix in range, else 0. */
export function cidrVersion(s: string): 0 | 4 | 6 {
  const slash = s.indexOf('/');
  if (slash < 0 || s.length > 49) return 0;
  const prefix = s.slice(slash + 1);
  const version = ipVersion(s.slice(0, slash));
  if (version === 0 || !/^(?:0|[1-9]\d{0,2})$/.test(prefix)) return 0;
  return Number(prefix) <= (version === 4 ? 32 : 128) ? version : 0;
}

export const uuid = z
  .string()
  .regex(UUID_RE, 'must be a UUID')
  .transform((s) => s.toLowerCase());

const text = (max: number) =>
  z
    .string()
    .max(max, `must be at most ${max} characters`)
    .refine((s) => !CONTROL_RE.test(s), 'must not contain control characters');

export const macAddress = z.string().regex(MAC_RE, 'must be a MAC address (xx:xx:xx:xx:xx:xx, lower-case hex)');
export const ipAddress = z.string().refine((s) => ipVersion(s) !== 0, 'must be an IPv4 or IPv6 address');
export const cidr = z.string().refine((s) => cidrVersion(s) !== 0, 'must be a CIDR (address/prefix)');
const ipOrCidr = z
  .string()
  .refine((s) => ipVersion(s) !== 0 || cidrVersion(s) !== 0, 'must be an IP address or a CIDR');
export const deviceName = z.string().regex(DEVICE_NAME_RE, 'must be a network device name (1-15 of A-Z a-z 0-9 _ -)');
const hostId = z
  .string()
  .regex(/^(?:|[A-Za-z0-9][A-Za-z0-9._-]{0,254})$/, 'must be empty or a host name (letters, digits, . _ -)');
/** binding:vif_type / binding:vnic_type are short tokens; the builder decides which it supports. */
const vifType = z.string().regex(/^[a-z][a-z0-9_]{0,31}$/, 'must be a vif type token ([a-z0-9_], e.g. ovs, bridge)');
const vnicType = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'must be a vnic type token ([a-z0-9-], e.g. normal)');
const name = text(255);
const tcpUdpPort = z.number().int().min(0).max(65535);

export const portStatus = z.enum(['ACTIVE', 'DOWN', 'BUILD', 'ERROR', 'N/A']);
export const networkStatus = z.enum(['ACTIVE', 'DOWN', 'BUILD', 'ERROR']);

/** IP protocol names Neutron accepts in security group rules, or a number 0-255. */
export const PROTOCOL_NAMES = [
  'any',
  'ah',
  'dccp',
  'egp',
  'esp',
  'gre',
  'hopopt',
  'icmp',
  'icmpv6',
  'igmp',
  'ip',
  'ipip',
  'ipv6-encap',
  'ipv6-frag',
  'ipv6-icmp',
  'ipv6-nonxt',
  'ipv6-opts',
  'ipv6-route',
  'ospf',
  'pgm',
  'rsvp',
  'sctp',
  'tcp',
  'udp',
  'udplite',
  'vrrp',
] as const;
const protocol = z
  .string()
  .refine(
    (s) => (PROTOCOL_NAMES as readonly string[]).includes(s) || (/^(?:0|[1-9]\d{0,2})$/.test(s) && Number(s) <= 255),
    'must be an IP protocol name (tcp, udp, icmp, ...) or a number 0-255',
  );

export const vifDetails = z.object({
  ovs_hybrid_plug: z.boolean().optional(),
  port_filter: z.boolean().optional(),
  bridge_name: deviceName.optional(),
});

export const fixedIp = z.object({ subnet_id: uuid, ip_address: ipAddress });

export const port = z.object({
  id: uuid,
  name: name.default(''),
  network_id: uuid,
  mac_address: macAddress,
  admin_state_up: z.boolean(),
  status: portStatus,
  device_id: text(255).default(''),
  device_owner: text(255).default(''),
  fixed_ips: z.array(fixedIp).max(128).default([]),
  allowed_address_pairs: z
    .array(z.object({ ip_address: ipOrCidr, mac_address: macAddress.optional() }))
    .max(256)
    .default([]),
  security_groups: z.array(uuid).max(64).default([]),
  /** Absent when the port-security extension is not loaded: Neutron then filters every port. */
  port_security_enabled: z.boolean().optional(),
  /** The binding:* fields are admin-only: absent when the token lacks the admin role. */
  'binding:host_id': hostId.nullable().optional(),
  'binding:vif_type': vifType.optional(),
  'binding:vif_details': vifDetails.nullable().optional(),
  'binding:vnic_type': vnicType.optional(),
  revision_number: z.number().int().min(0).optional(),
});

export const network = z.object({
  id: uuid,
  name: name.default(''),
  status: networkStatus,
  admin_state_up: z.boolean(),
  /** Absent without the net-mtu extension. */
  mtu: z
    .number()
    .int()
    .min(68, 'must be an MTU between 68 and 65535')
    .max(65535, 'must be an MTU between 68 and 65535')
    .nullable()
    .optional(),
  subnets: z.array(uuid).max(1024).default([]),
});

export const subnet = z
  .object({
    id: uuid,
    name: name.default(''),
    network_id: uuid,
    ip_version: z.union([z.literal(4), z.literal(6)]),
    cidr,
    gateway_ip: ipAddress.nullable(),
    enable_dhcp: z.boolean().default(true),
  })
  .superRefine((s, ctx) => {
    if (cidrVersion(s.cidr) !== s.ip_version) {
      ctx.addIssue({ code: 'custom', path: ['cidr'], message: `must be an IPv${s.ip_version} CIDR (ip_version)` });
    }
    if (s.gateway_ip !== null && ipVersion(s.gateway_ip) !== s.ip_version) {
      ctx.addIssue({ code: 'custom', path: ['gateway_ip'], message: `must be an IPv${s.ip_version} address` });
    }
  });

const PORT_PROTOCOLS = new Set(['tcp', 'udp', 'sctp', 'dccp', 'udplite', '6', '17', '132', '33', '136']);

export const securityGroupRule = z
  .object({
    id: uuid,
    security_group_id: uuid,
    direction: z.enum(['ingress', 'egress']),
    ethertype: z.enum(['IPv4', 'IPv6']),
    protocol: protocol.nullable(),
    port_range_min: tcpUdpPort.nullable(),
    port_range_max: tcpUdpPort.nullable(),
    remote_ip_prefix: cidr.nullable(),
    remote_group_id: uuid.nullable().default(null),
  })
  .superRefine((r, ctx) => {
    if (r.remote_ip_prefix !== null && cidrVersion(r.remote_ip_prefix) !== (r.ethertype === 'IPv4' ? 4 : 6)) {
      ctx.addIssue({
        code: 'custom',
        path: ['remote_ip_prefix'],
        message: `must be an ${r.ethertype} CIDR (ethertype)`,
      });
    }
    if (r.protocol !== null && PORT_PROTOCOLS.has(r.protocol)) {
      const { port_range_min: min, port_range_max: max } = r;
      if ((min === null) !== (max === null) || (min !== null && max !== null && min > max)) {
        ctx.addIssue({
          code: 'custom',
          path: ['port_range_max'],
          message: 'port_range_min and port_range_max must both be set, min <= max',
        });
      }
    }
  });

export const securityGroup = z.object({
  id: uuid,
  name: name.default(''),
  security_group_rules: z.array(securityGroupRule).max(4096).default([]),
});

export type NeutronPort = z.infer<typeof port>;
export type NeutronNetwork = z.infer<typeof network>;
export type NeutronSubnet = z.infer<typeof subnet>;
export type NeutronSecurityGroup = z.infer<typeof securityGroup>;
export type NeutronSecurityGroupRule = z.infer<typeof securityGroupRule>;

// Envelopes, as Neutron wraps every answer.
export const portBody = z.object({ port });
export const portsBody = z.object({ ports: z.array(port).max(1000) });
export const networkBody = z.object({ network });
export const networksBody = z.object({ networks: z.array(network).max(1000) });
export const subnetBody = z.object({ subnet });
export const subnetsBody = z.object({ subnets: z.array(subnet).max(1000) });
export const securityGroupBody = z.object({ security_group: securityGroup });
export const securityGroupsBody = z.object({ security_groups: z.array(securityGroup).max(1000) });
export const securityGroupRuleBody = z.object({ security_group_rule: securityGroupRule });

/** {"NeutronError": {"type", "message", "detail"}}; read only to word our own errors. */
export const neutronErrorBody = z.object({
  NeutronError: z.object({ type: z.string().max(255).optional(), message: z.string().optional() }),
});

/** `ports[0].mac_address` from a zod issue path. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out || '(body)';
}
