import { checkSecurityGroupRule, sourcePairs, type CheckedRule } from '../domain/nft-ruleset.js';
import { checkMac, checkUuid, InvalidVifValue, type VifPlan } from '../domain/vif-plug.js';
import { run } from './exec.js';

// OpenFlow port security in the integration bridge, the shape of Neutron's
// native `openvswitch` firewall driver (DESIGN section 9). The flows of an
// instance carry one cookie derived from its uuid and are replaced in one
// `ovs-ofctl --bundle` transaction. Per port p (zone z = its ofport):
//
//   table 0   from p: drop rogue DHCP/RA/VLAN tags; allow ARP with its sha/spa;
//             IP from its (MAC, address) pairs -> ct(zone z, table 71); drop
//             the rest. To p's MAC: reg5 = p, ct(zone z, table 82).
//   table 71  egress of p: established/related, DHCP, ND, SG egress rules
//             (commit) -> table 73; else drop.
//   table 73  after egress: to a filtered MAC -> its ingress (ct_clear, its
//             zone), else NORMAL.
//   table 82  ingress to reg5 = p: established/related, DHCP, ND, SG ingress
//             rules (commit) -> output p; else drop.
//
// The flow text is built from validated values only (the same checks as the
// nft ruleset); the functions below the builder are the I/O.

export const TABLE_EGRESS = 71;
export const TABLE_AFTER_EGRESS = 73;
export const TABLE_INGRESS = 82;

const ND_FROM_GUEST = [130, 131, 132, 133, 135, 136, 143];
const ND_TO_GUEST = [130, 134, 135, 136];

export interface OpenFlowPort {
  plan: VifPlan;
  ofport: number;
}

/** The cookie of all flows of an instance: the first 64 bits of its uuid. */
export function flowCookie(instanceUuid: string): string {
  return '0x' + checkUuid('instanceUuid', instanceUuid).replaceAll('-', '').slice(0, 16);
}

/** A port range as OpenFlow value/mask pairs (OpenFlow has no ranges). */
export function portMasks(min: number, max: number): string[] {
  const out: string[] = [];
  for (let value = min; value <= max;) {
    let size = 1;
    while (size < 0x10000 && value % (size * 2) === 0 && value + size * 2 - 1 <= max) size *= 2;
    out.push(size === 1 ? String(value) : `0x${value.toString(16)}/0x${(0xffff & ~(size - 1)).toString(16)}`);
    value += size;
  }
  return out;
}

/** The OpenFlow matches of a checked SG rule (one per port mask). */
function ruleMatches(r: CheckedRule, field: string): string[] {
  const l3 = r.v6 ? 'ipv6' : 'ip';
  const parts: string[] = [];
  if (r.proto === null) parts.push(l3);
  else if (r.proto === 6 || r.proto === 17 || r.proto === 132) {
    parts.push({ 6: 'tcp', 17: 'udp', 132: 'sctp' }[r.proto] + (r.v6 ? '6' : ''));
  } else if (r.proto === 1 || r.proto === 58) parts.push(r.v6 ? 'icmp6' : 'icmp');
  else if (r.ports)
    throw new InvalidVifValue(`${field}.protocol`, r.proto, 'tcp, udp or sctp (OpenFlow matches no other ports)');
  else parts.push(`${l3},nw_proto=${r.proto}`);
  if (r.remote) {
    const dir = r.direction === 'ingress' ? 'src' : 'dst';
    parts.push(r.v6 ? `ipv6_${dir}=${r.remote.text}` : `nw_${dir}=${r.remote.text}`);
  }
  if (r.icmp) parts.push(`icmp_type=${r.icmp.type}` + (r.icmp.code === null ? '' : `,icmp_code=${r.icmp.code}`));
  const base = parts.join(',');
  return r.ports ? portMasks(r.ports.min, r.ports.max).map((m) => `${base},tp_dst=${m}`) : [base];
}

function portFlows(port: OpenFlowPort, cookie: string): string[] {
  const { plan, ofport: p } = port;
  const where = `vif ${JSON.stringify(plan.vif.id)}`;
  if (!Number.isInteger(p) || p < 1 || p > 0xfeff) throw new InvalidVifValue(`${where}: ofport`, p, 'an OpenFlow port');
  const mac = checkMac(`${where}: address`, plan.vif.address);
  const ct = (table: number) => `ct(table=${table},zone=${p})`;
  const commit = `ct(commit,zone=${p})`;
  const flow = (table: number, priority: number, match: string, actions: string) =>
    `add cookie=${cookie},table=${table},priority=${priority},${match},actions=${actions}`;
  const from = `in_port=${p}`;
  const pairs = sourcePairs(where, plan.vif, mac);
  const rules = plan.vif.securityGroupRules.map((rule, i) => {
    const field = `${where}: securityGroupRules[${i}]`;
    const checked = checkSecurityGroupRule(field, rule);
    return { checked, matches: ruleMatches(checked, field) };
  });
  const sg = (direction: 'ingress' | 'egress') =>
    rules.filter((r) => r.checked.direction === direction).flatMap((r) => r.matches);
  const toGuest = `output:${p}`;
  const afterEgress = `resubmit(,${TABLE_AFTER_EGRESS})`;
  return [
    // table 0: anti-spoofing of frames from the guest
    flow(0, 200, `${from},vlan_tci=0x1000/0x1000`, 'drop'),
    flow(0, 200, `${from},udp,tp_src=67,tp_dst=68`, 'drop'),
    flow(0, 200, `${from},udp6,tp_src=547,tp_dst=546`, 'drop'),
    flow(0, 200, `${from},icmp6,icmp_type=134`, 'drop'),
    flow(0, 200, `${from},icmp6,icmp_type=137`, 'drop'),
    flow(
      0,
      190,
      `${from},dl_src=${mac},udp,nw_src=0.0.0.0,nw_dst=255.255.255.255,tp_src=68,tp_dst=67`,
      ct(TABLE_EGRESS),
    ),
    ...[131, 135, 143].map((t) => flow(0, 190, `${from},dl_src=${mac},icmp6,ipv6_src=::,icmp_type=${t}`, 'NORMAL')),
    flow(0, 190, `${from},dl_src=${mac},arp,arp_sha=${mac},arp_spa=0.0.0.0`, 'NORMAL'),
    ...pairs.flatMap(({ mac: m, prefix }) =>
      prefix.version === 4
        ? [
            flow(0, 180, `${from},dl_src=${m},arp,arp_sha=${m},arp_spa=${prefix.text}`, 'NORMAL'),
            flow(0, 180, `${from},dl_src=${m},ip,nw_src=${prefix.text}`, ct(TABLE_EGRESS)),
          ]
        : [flow(0, 180, `${from},dl_src=${m},ipv6,ipv6_src=${prefix.text}`, ct(TABLE_EGRESS))],
    ),
    flow(0, 170, from, 'drop'),
    // to the guest, from anywhere: its ingress pipeline
    ...['ip', 'ipv6'].map((l3) => flow(0, 160, `dl_dst=${mac},${l3}`, `set_field:${p}->reg5,${ct(TABLE_INGRESS)}`)),
    ...['ip', 'ipv6'].map((l3) =>
      flow(TABLE_AFTER_EGRESS, 160, `dl_dst=${mac},${l3}`, `set_field:${p}->reg5,ct_clear,${ct(TABLE_INGRESS)}`),
    ),
    // table 71: egress security groups
    flow(TABLE_EGRESS, 200, `${from},ct_state=+est+trk`, afterEgress),
    flow(TABLE_EGRESS, 200, `${from},ct_state=+rel+trk`, afterEgress),
    ...ND_FROM_GUEST.map((t) => flow(TABLE_EGRESS, 195, `${from},icmp6,icmp_type=${t}`, afterEgress)),
    flow(TABLE_EGRESS, 190, `${from},ct_state=+inv+trk`, 'drop'),
    flow(TABLE_EGRESS, 180, `${from},ct_state=+new+trk,udp,tp_src=68,tp_dst=67`, `${commit},${afterEgress}`),
    flow(TABLE_EGRESS, 180, `${from},ct_state=+new+trk,udp6,tp_src=546,tp_dst=547`, `${commit},${afterEgress}`),
    ...sg('egress').map((m) => flow(TABLE_EGRESS, 170, `${from},ct_state=+new+trk,${m}`, `${commit},${afterEgress}`)),
    flow(TABLE_EGRESS, 1, from, 'drop'),
    // table 82: ingress security groups
    flow(TABLE_INGRESS, 200, `reg5=${p},ct_state=+est+trk`, toGuest),
    flow(TABLE_INGRESS, 200, `reg5=${p},ct_state=+rel+trk`, toGuest),
    ...ND_TO_GUEST.map((t) => flow(TABLE_INGRESS, 195, `reg5=${p},icmp6,icmp_type=${t}`, toGuest)),
    flow(TABLE_INGRESS, 190, `reg5=${p},ct_state=+inv+trk`, 'drop'),
    flow(TABLE_INGRESS, 180, `reg5=${p},ct_state=+new+trk,udp,tp_src=67,tp_dst=68`, `${commit},${toGuest}`),
    flow(TABLE_INGRESS, 180, `reg5=${p},ct_state=+new+trk,udp6,tp_src=547,tp_dst=546`, `${commit},${toGuest}`),
    ...sg('ingress').map((m) => flow(TABLE_INGRESS, 170, `reg5=${p},ct_state=+new+trk,${m}`, `${commit},${toGuest}`)),
    flow(TABLE_INGRESS, 1, `reg5=${p}`, 'drop'),
  ];
}

/**
 * The bundle file of an instance's ports in one bridge: its old flows go and
 * the new ones come in the same transaction. Table 73's NORMAL is shared by
 * all instances (cookie 0) and re-added each time.
 */
export function buildFlows(instanceUuid: string, ports: OpenFlowPort[]): string {
  const cookie = flowCookie(instanceUuid);
  return [
    `delete cookie=${cookie}/-1`,
    `add table=${TABLE_AFTER_EGRESS},priority=0,actions=NORMAL`,
    ...ports.flatMap((port) => portFlows(port, cookie)),
    '',
  ].join('\n');
}

// ---------------------------------------------------------------- I/O

const OFCTL = ['-O', 'OpenFlow14'];

export async function applyFlows(bridge: string, text: string): Promise<void> {
  await run('ovs-ofctl', [...OFCTL, '--bundle', 'add-flows', bridge, '-'], { input: text });
}

/** Deletes an instance's flows; none there is success. */
export async function deleteFlows(bridge: string, instanceUuid: string): Promise<void> {
  await run('ovs-ofctl', [...OFCTL, 'del-flows', bridge, `cookie=${flowCookie(instanceUuid)}/-1`]);
}

/** `ovs-ofctl dump-flows` lines of an instance (what an operator reads to see drops). */
export async function dumpFlows(bridge: string, instanceUuid: string): Promise<string[]> {
  const { stdout } = await run('ovs-ofctl', [...OFCTL, 'dump-flows', bridge, `cookie=${flowCookie(instanceUuid)}/-1`]);
  return stdout.split('\n').filter((l) => l.includes('cookie='));
}
