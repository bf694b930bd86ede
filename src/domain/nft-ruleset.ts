import { isIPv6 } from 'node:net';
import type { SecurityGroupRule, Vif } from './network-model.js';
import { checkDevice, checkMac, checkUuid, InvalidVifValue, type VifPlan } from './vif-plug.js';

// The nftables ruleset of one instance, as one `nft -f -` transaction (no I/O
// here). Per hybrid-plugged port (DESIGN section 9), in Neutron's chain words:
//
//   table bridge nt-<uuid>   prerouting, priority -300, before br_netfilter:
//     <tap>-s  anti-spoofing of frames from the guest (MAC + fixed IPs +
//              allowed address pairs, DHCP client, no rogue DHCP server,
//              no other ethertype, no VLAN tag)
//     <tap>-a  ARP only with the port's sha/spa
//     frames from the tap / from qvb get a direction mark
//   table inet nt-<uuid>     forward (br_netfilter), stateful:
//     <tap>-i  to the guest: established, DHCP/ND, the SG ingress rules, drop
//     <tap>-o  from the guest: established, DHCP/ND, the SG egress rules, drop
//
// Both directions show `iifname qbr..` in the inet forward hook: the mark says
// which way a frame goes. Every value is validated before it is written; a bad
// one throws InvalidVifValue naming the field.

/** Direction bits in skb->mark; the rest of the mark is left as it was. */
export const MARK_MASK = 0x00f00000;
export const MARK_TO_GUEST = 0x00100000;
export const MARK_FROM_GUEST = 0x00200000;

const hex = (n: number) => '0x' + n.toString(16).padStart(8, '0');
const KEEP = hex(~MARK_MASK >>> 0);

/** Both tables of an instance carry this name; it derives from the uuid alone. */
export function firewallTableName(instanceUuid: string): string {
  return 'nt-' + checkUuid('instanceUuid', instanceUuid);
}

export const TABLE_PREFIX = 'nt-';
const FAMILIES = ['bridge', 'inet'] as const;

// ---------------------------------------------------------------- values

type Family = 4 | 6;
export interface Prefix {
  version: Family;
  /** address or address/len, canonical enough for nft */
  text: string;
  len: number;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function checkIp(field: string, value: unknown): { version: Family; text: string } {
  if (typeof value === 'string' && IPV4.test(value)) return { version: 4, text: value };
  // isIPv6 alone would take a zone id ("fe80::1%eth0"): allow hex, ':' and '.' only.
  if (typeof value === 'string' && /^[0-9a-fA-F:.]{2,45}$/.test(value) && isIPv6(value)) {
    // The URL parser writes the canonical hex form: nft cannot parse an embedded dotted quad.
    return { version: 6, text: new URL(`http://[${value}]`).hostname.slice(1, -1) };
  }
  throw new InvalidVifValue(field, value, 'an IPv4 or IPv6 address');
}

/** A CIDR, or a plain address when `plainIp` (allowed address pairs take both). */
export function checkCidr(field: string, value: unknown, plainIp = false): Prefix {
  if (typeof value !== 'string') throw new InvalidVifValue(field, value, 'a CIDR');
  const slash = value.indexOf('/');
  if (slash < 0) {
    if (!plainIp) throw new InvalidVifValue(field, value, 'a CIDR (address/prefix length)');
    const ip = checkIp(field, value);
    return { ...ip, len: ip.version === 4 ? 32 : 128 };
  }
  const addr = value.slice(0, slash);
  const lenText = value.slice(slash + 1);
  let ip: { version: Family; text: string };
  try {
    ip = checkIp(field, addr);
  } catch {
    throw new InvalidVifValue(field, value, 'a CIDR (address/prefix length)');
  }
  const max = ip.version === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > max) {
    throw new InvalidVifValue(field, value, `a CIDR with a prefix length 0-${max}`);
  }
  const len = Number(lenText);
  return { version: ip.version, len, text: len === max ? ip.text : `${ip.text}/${len}` };
}

export function checkPort(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65535) {
    throw new InvalidVifValue(field, value, 'a port number (0-65535)');
  }
  return value;
}

/** Neutron's protocol names (and numbers) that we know how to write. */
const PROTOCOLS: Record<string, number> = {
  icmp: 1,
  igmp: 2,
  ipip: 4,
  tcp: 6,
  egp: 8,
  udp: 17,
  dccp: 33,
  rsvp: 46,
  gre: 47,
  esp: 50,
  ah: 51,
  icmpv6: 58,
  'ipv6-icmp': 58,
  ospf: 89,
  vrrp: 112,
  pgm: 113,
  sctp: 132,
  udplite: 136,
};
/** null = any protocol; else the IP protocol number. */
export function checkProtocol(field: string, value: unknown): number | null {
  if (value === null || value === 'any') return null;
  if (typeof value === 'string' && Object.hasOwn(PROTOCOLS, value.toLowerCase())) {
    return PROTOCOLS[value.toLowerCase()]!;
  }
  if (typeof value === 'string' && /^\d{1,3}$/.test(value) && Number(value) <= 255) return Number(value);
  throw new InvalidVifValue(field, value, `a protocol (${Object.keys(PROTOCOLS).join(', ')}, any or 0-255)`);
}

/** The EUI-64 link-local address a guest derives from its MAC (RFC 4291). */
export function linkLocalFromMac(mac: string): string {
  const b = mac.split(':').map((h) => parseInt(h, 16));
  const words = [(b[0]! ^ 2) * 256 + b[1]!, b[2]! * 256 + 0xff, 0xfe00 + b[3]!, b[4]! * 256 + b[5]!];
  return 'fe80::' + words.map((w) => w.toString(16)).join(':');
}

// ---------------------------------------------------------------- rules

/** A security-group rule after validation, for any driver. */
export interface CheckedRule {
  direction: 'ingress' | 'egress';
  v6: boolean;
  /** The remote prefix (source for ingress, destination for egress); null = anywhere. */
  remote: Prefix | null;
  /** IP protocol number; null = any. ICMP in an IPv6 rule is 58 (Neutron's reading). */
  proto: number | null;
  /** The destination port range of tcp/udp/sctp/dccp/udplite. */
  ports: { min: number; max: number } | null;
  /** ICMP type and code (Neutron puts them in the port range fields). */
  icmp: { type: number; code: number | null } | null;
}

export const PORT_PROTOCOLS: Record<number, string> = { 6: 'tcp', 17: 'udp', 33: 'dccp', 132: 'sctp', 136: 'udplite' };

export function checkSecurityGroupRule(field: string, rule: SecurityGroupRule): CheckedRule {
  if (rule.direction !== 'ingress' && rule.direction !== 'egress') {
    throw new InvalidVifValue(`${field}.direction`, rule.direction, 'ingress or egress');
  }
  if (rule.ethertype !== 'IPv4' && rule.ethertype !== 'IPv6') {
    throw new InvalidVifValue(`${field}.ethertype`, rule.ethertype, 'IPv4 or IPv6');
  }
  const v6 = rule.ethertype === 'IPv6';
  let remote: Prefix | null = null;
  if (rule.remoteIpPrefix !== null) {
    const prefix = checkCidr(`${field}.remoteIpPrefix`, rule.remoteIpPrefix, true);
    if ((prefix.version === 6) !== v6) {
      throw new InvalidVifValue(`${field}.remoteIpPrefix`, rule.remoteIpPrefix, `an ${rule.ethertype} prefix`);
    }
    if (prefix.len > 0) remote = prefix;
  }
  let proto = checkProtocol(`${field}.protocol`, rule.protocol);
  if (proto === 1 && v6) proto = 58;
  const min = rule.portRangeMin === null ? null : checkPort(`${field}.portRangeMin`, rule.portRangeMin);
  const max = rule.portRangeMax === null ? null : checkPort(`${field}.portRangeMax`, rule.portRangeMax);
  const checked: CheckedRule = { direction: rule.direction, v6, remote, proto, ports: null, icmp: null };
  if (proto === null) {
    if (min !== null || max !== null) throw new InvalidVifValue(`${field}.protocol`, null, 'set when ports are given');
  } else if (PORT_PROTOCOLS[proto]) {
    if (min === null && max !== null) throw new InvalidVifValue(`${field}.portRangeMin`, null, 'set with portRangeMax');
    if (min !== null && max !== null && min > max) {
      throw new InvalidVifValue(`${field}.portRangeMax`, max, `at least portRangeMin (${min})`);
    }
    if (min !== null) checked.ports = { min, max: max ?? min };
  } else if (proto === 1 || proto === 58) {
    if (min !== null && min > 255) throw new InvalidVifValue(`${field}.portRangeMin`, min, 'an ICMP type (0-255)');
    if (max !== null && max > 255) throw new InvalidVifValue(`${field}.portRangeMax`, max, 'an ICMP code (0-255)');
    if (min === null && max !== null) throw new InvalidVifValue(`${field}.portRangeMin`, null, 'set with an ICMP code');
    if (min !== null) checked.icmp = { type: min, code: max };
  } else if (min !== null || max !== null) {
    throw new InvalidVifValue(`${field}.portRangeMin`, min ?? max, `empty for protocol ${proto} (it has no ports)`);
  }
  return checked;
}

/** A security-group rule as one nft rule line (without the chain), validated. */
export function securityGroupRuleLine(field: string, rule: SecurityGroupRule): string {
  const r = checkSecurityGroupRule(field, rule);
  const parts = [r.v6 ? 'meta nfproto ipv6' : 'meta nfproto ipv4'];
  if (r.remote) parts.push(`${r.v6 ? 'ip6' : 'ip'} ${r.direction === 'ingress' ? 'saddr' : 'daddr'} ${r.remote.text}`);
  if (r.proto !== null) {
    const name = PORT_PROTOCOLS[r.proto] ?? (r.proto === 1 ? 'icmp' : r.proto === 58 ? 'icmpv6' : String(r.proto));
    if (r.ports)
      parts.push(`${name} dport ${r.ports.min === r.ports.max ? r.ports.min : `${r.ports.min}-${r.ports.max}`}`);
    else if (r.icmp)
      parts.push(`${name} type ${r.icmp.type}` + (r.icmp.code === null ? '' : ` ${name} code ${r.icmp.code}`));
    else parts.push(`meta l4proto ${name}`);
  }
  return parts.join(' ') + ' counter accept';
}

export interface SourcePair {
  mac: string;
  prefix: Prefix;
}

/**
 * The (MAC, address) pairs a guest may send from: fixed IPs, allowed address
 * pairs, link-locals. Also used by the OpenFlow driver.
 */
export function sourcePairs(where: string, vif: Vif, mac: string): SourcePair[] {
  const pairs: SourcePair[] = [];
  vif.network.subnets.forEach((subnet, s) =>
    subnet.ips.forEach((ip, i) => {
      const p = checkCidr(`${where}: network.subnets[${s}].ips[${i}].address`, ip.address, true);
      if (p.len !== (p.version === 4 ? 32 : 128))
        throw new InvalidVifValue(`${where}: fixed ip`, ip.address, 'an address');
      pairs.push({ mac, prefix: p });
    }),
  );
  pairs.push({ mac, prefix: { version: 6, text: linkLocalFromMac(mac), len: 128 } });
  vif.allowedAddressPairs.forEach((pair, i) => {
    const field = `${where}: allowedAddressPairs[${i}]`;
    const pairMac = pair.macAddress ? checkMac(`${field}.macAddress`, pair.macAddress) : mac;
    const prefix = checkCidr(`${field}.ipAddress`, pair.ipAddress, true);
    pairs.push({ mac: pairMac, prefix });
    if (prefix.version === 6 && pairMac !== mac) {
      pairs.push({ mac: pairMac, prefix: { version: 6, text: linkLocalFromMac(pairMac), len: 128 } });
    }
  });
  return pairs;
}

function antiSpoofChains(plan: VifPlan, where: string): string[] {
  const mac = checkMac(`${where}: address`, plan.vif.address);
  const tap = checkDevice(`${where}: devname`, plan.tap);
  const pairs = sourcePairs(where, plan.vif, mac);
  const s = [
    `  chain ${tap}-s {`,
    `    ether type != { ip, ip6, arp } counter drop comment "${tap}: other ethertype or VLAN tag"`,
    `    ether type arp jump ${tap}-a`,
    `    ether type ip udp sport 67 udp dport 68 counter drop comment "${tap}: rogue DHCP server"`,
    `    ether type ip6 udp sport 547 udp dport 546 counter drop comment "${tap}: rogue DHCPv6 server"`,
    `    ether type ip6 icmpv6 type { nd-router-advert, nd-redirect } counter drop comment "${tap}: rogue router"`,
    `    ether saddr ${mac} ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept`,
    `    ether saddr ${mac} ip6 saddr :: ip6 daddr ff02::/16 icmpv6 type { nd-neighbor-solicit, mld-listener-report, mld2-listener-report } accept`,
    ...pairs.map(
      (p) => `    ether saddr ${p.mac} ${p.prefix.version === 4 ? 'ip' : 'ip6'} saddr ${p.prefix.text} accept`,
    ),
    `    counter drop comment "${tap}: spoofed source"`,
    `  }`,
  ];
  const a = [
    `  chain ${tap}-a {`,
    // spa 0.0.0.0: an ARP probe (RFC 5227 duplicate address detection).
    `    ether saddr ${mac} arp saddr ether ${mac} arp saddr ip 0.0.0.0 accept`,
    ...pairs
      .filter((p) => p.prefix.version === 4)
      .map((p) => `    ether saddr ${p.mac} arp saddr ether ${p.mac} arp saddr ip ${p.prefix.text} accept`),
    `    counter drop comment "${tap}: spoofed ARP"`,
    `  }`,
  ];
  return [...s, ...a];
}

function statefulChains(plan: VifPlan, where: string): string[] {
  const tap = plan.tap;
  const ingress: string[] = [];
  const egress: string[] = [];
  plan.vif.securityGroupRules.forEach((rule, i) => {
    const line = '    ' + securityGroupRuleLine(`${where}: securityGroupRules[${i}]`, rule);
    (rule.direction === 'ingress' ? ingress : egress).push(line);
  });
  return [
    `  chain ${tap}-i {`,
    `    ct state established,related accept`,
    `    ct state invalid counter drop comment "${tap}: invalid to guest"`,
    `    meta nfproto ipv4 udp sport 67 udp dport 68 accept`,
    `    meta nfproto ipv6 udp sport 547 udp dport 546 accept`,
    `    meta nfproto ipv6 icmpv6 type { mld-listener-query, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept`,
    ...ingress,
    `    counter drop comment "${tap}: no rule allows it to guest"`,
    `  }`,
    `  chain ${tap}-o {`,
    `    ct state established,related accept`,
    `    ct state invalid counter drop comment "${tap}: invalid from guest"`,
    `    meta nfproto ipv4 udp sport 68 udp dport 67 accept`,
    `    meta nfproto ipv6 udp sport 546 udp dport 547 accept`,
    `    meta nfproto ipv6 icmpv6 type { mld-listener-report, mld-listener-reduction, mld2-listener-report, nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } accept`,
    ...egress,
    `    counter drop comment "${tap}: no rule allows it from guest"`,
    `  }`,
  ];
}

/** `table X` creates the table if missing, so the `delete` after it never fails. */
function dropTables(name: string): string[] {
  return FAMILIES.flatMap((family) => [`table ${family} ${name}`, `delete table ${family} ${name}`]);
}

/**
 * The whole ruleset of an instance: deletes its old tables and writes new ones
 * in one transaction, so a second run, or a run after a crash, ends the same.
 * Only ports whose plan says `nftables` are filtered.
 */
export function buildRuleset(instanceUuid: string, plans: VifPlan[]): string {
  const name = firewallTableName(instanceUuid);
  const filtered = plans.filter((p) => p.firewall === 'nftables');
  const prerouting: string[] = [];
  const forward: string[] = [];
  const bridgeChains: string[] = [];
  const inetChains: string[] = [];
  for (const plan of filtered) {
    const where = `vif ${JSON.stringify(plan.vif.id)}`;
    if (!plan.hybrid) throw new InvalidVifValue(`${where}: plug`, plan.kind, 'ovs-hybrid (nftables filters in qbr)');
    const tap = checkDevice(`${where}: devname`, plan.tap);
    const qvb = checkDevice(`${where}: qvb`, plan.hybrid.qvb);
    const qbr = checkDevice(`${where}: qbr`, plan.hybrid.qbr);
    prerouting.push(
      `    iifname "${tap}" meta mark set meta mark & ${KEEP} | ${hex(MARK_FROM_GUEST)} jump ${tap}-s`,
      `    iifname "${qvb}" meta mark set meta mark & ${KEEP} | ${hex(MARK_TO_GUEST)}`,
    );
    forward.push(
      `    iifname "${qbr}" meta mark & ${hex(MARK_MASK)} == ${hex(MARK_TO_GUEST)} jump ${tap}-i`,
      `    iifname "${qbr}" meta mark & ${hex(MARK_MASK)} == ${hex(MARK_FROM_GUEST)} jump ${tap}-o`,
      `    iifname "${qbr}" counter drop comment "${tap}: no direction mark"`,
    );
    bridgeChains.push(...antiSpoofChains(plan, where));
    inetChains.push(...statefulChains(plan, where));
  }
  return [
    `# nova-temporal firewall of instance ${instanceUuid}`,
    ...dropTables(name),
    `table bridge ${name} {`,
    `  chain prerouting {`,
    `    type filter hook prerouting priority -300; policy accept;`,
    ...prerouting,
    `  }`,
    ...bridgeChains,
    `}`,
    `table inet ${name} {`,
    `  chain forward {`,
    `    type filter hook forward priority filter; policy accept;`,
    ...forward,
    `  }`,
    ...inetChains,
    `}`,
    '',
  ].join('\n');
}

/** Removes an instance's tables, present or not, from its uuid alone. */
export function removalRuleset(instanceUuid: string): string {
  return [...dropTables(firewallTableName(instanceUuid)), ''].join('\n');
}
