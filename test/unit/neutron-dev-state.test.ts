import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatCidr, formatIp, parseCidr, parseIp } from '../../dev/neutron/addresses.js';
import { pythonJson, statusChangeEvent } from '../../dev/neutron/notifier.js';
import {
  ApiError,
  DevNeutronState,
  networkCreate,
  portCreate,
  ruleCreate,
  subnetCreate,
} from '../../dev/neutron/state.js';

// The dev Neutron's IPAM, checks and notifier rules, without HTTP or OVS.

test('addresses: IPv6 text is RFC 5952, CIDRs are normalised', () => {
  for (const [text, canon] of [
    ['fd00:0:0:0:0:0:0:1', 'fd00::1'],
    ['FD00::0:1', 'fd00::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['::', '::'],
    ['::ffff:10.0.0.1', '::ffff:a00:1'],
    ['1:0:1:0:1:0:1:0', '1:0:1:0:1:0:1:0'],
  ]) {
    const ip = parseIp(text!)!;
    assert.equal(formatIp(ip.version, ip.value), canon, text);
  }
  assert.equal(formatCidr(parseCidr('10.1.2.3/8')!), '10.0.0.0/8');
  assert.equal(formatCidr(parseCidr('fd00::5/64')!), 'fd00::/64');
  assert.equal(parseCidr('10.0.0.0/33'), null);
  assert.equal(parseIp('1.2.3.4; x'), null);
});

function setup() {
  const st = new DevNeutronState();
  const net = st.createNetwork(networkCreate.parse({ name: 'private' }));
  const sub = st.createSubnet(subnetCreate.parse({ network_id: net.id, cidr: '10.9.0.0/29', ip_version: 4 }));
  return { st, net, sub };
}

const code = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ApiError, String(err));
    return `${err.statusCode} ${err.type}`;
  }
  return 'ok';
};

test('subnets get a gateway and pools; ports get the lowest free address and a fa:16:3e MAC', () => {
  const { st, net, sub } = setup();
  assert.equal(sub.gateway_ip, '10.9.0.1');
  assert.deepEqual(sub.allocation_pools, [{ start: '10.9.0.2', end: '10.9.0.6' }]);
  const p1 = st.createPort(portCreate.parse({ network_id: net.id }));
  const p2 = st.createPort(portCreate.parse({ network_id: net.id }));
  assert.deepEqual(p1.fixed_ips, [{ subnet_id: sub.id, ip_address: '10.9.0.2' }]);
  assert.equal(p2.fixed_ips[0]!.ip_address, '10.9.0.3');
  assert.match(p1.mac_address, /^fa:16:3e(:[0-9a-f]{2}){3}$/);
  assert.equal(p1.status, 'DOWN');
  assert.equal(p1['binding:vif_type'], 'ovs');
  assert.deepEqual(p1['binding:vif_details'], { port_filter: false, ovs_hybrid_plug: false });
  assert.equal(p1.security_groups.length, 1, 'the default group');
});

test('fixed IP conflicts, exhaustion and in-use deletes are Neutron errors', () => {
  const { st, net, sub } = setup();
  const fixed = (ip: string) => portCreate.parse({ network_id: net.id, fixed_ips: [{ ip_address: ip }] });
  assert.equal(
    code(() => st.createPort(fixed('10.9.0.4'))),
    'ok',
  );
  assert.equal(
    code(() => st.createPort(fixed('10.9.0.4'))),
    '409 IpAddressAlreadyAllocated',
  );
  assert.equal(
    code(() => st.createPort(fixed('10.9.0.1'))),
    '409 IpAddressAlreadyAllocated',
  );
  assert.equal(
    code(() => st.createPort(fixed('10.9.0.7'))),
    '400 InvalidIpForNetwork',
  );
  assert.equal(
    code(() => st.createPort(fixed('10.8.0.4'))),
    '400 InvalidIpForNetwork',
  );
  for (let i = 0; i < 4; i++) st.createPort(portCreate.parse({ network_id: net.id }));
  assert.equal(
    code(() => st.createPort(portCreate.parse({ network_id: net.id }))),
    '409 IpAddressGenerationFailure',
  );
  assert.equal(
    code(() => st.deleteSubnet(sub.id)),
    '409 SubnetInUse',
  );
  assert.equal(
    code(() => st.deleteNetwork(net.id)),
    '409 NetworkInUse',
  );
  assert.equal(
    code(() => st.port('00000000-0000-4000-8000-000000000000')),
    '404 PortNotFound',
  );
});

test('port update checks If-Match revision_number', () => {
  const { st, net } = setup();
  const p = st.createPort(portCreate.parse({ network_id: net.id }));
  assert.equal(
    code(() => st.updatePort(p.id, { device_id: 'x' }, p.revision_number + 1)),
    '412 RevisionNumberConstraintFailed',
  );
  const updated = st.updatePort(p.id, { device_id: 'x' }, p.revision_number);
  assert.equal(updated.revision_number, p.revision_number + 1);
});

test('security group rules: Neutron checks, normalised prefix, duplicates', () => {
  const { st } = setup();
  const g = st.listSecurityGroups().find((x) => x.name === 'default')!;
  // default: egress v4 + v6, plus ingress from the subnet (stand-in for remote group default)
  assert.deepEqual(
    g.security_group_rules.map((r) => `${r.direction} ${r.ethertype} ${r.remote_ip_prefix}`),
    ['egress IPv4 null', 'egress IPv6 null', 'ingress IPv4 10.9.0.0/29'],
  );
  const rule = (over: object) => ruleCreate.parse({ security_group_id: g.id, direction: 'ingress', ...over });
  const r = st.createRule(
    rule({ protocol: 'tcp', port_range_min: 22, port_range_max: 22, remote_ip_prefix: '10.1.2.3/8' }),
  );
  assert.equal(r.remote_ip_prefix, '10.0.0.0/8');
  assert.equal(
    code(() =>
      st.createRule(rule({ protocol: 'tcp', port_range_min: 22, port_range_max: 22, remote_ip_prefix: '10.0.0.0/8' })),
    ),
    '409 SecurityGroupRuleExists',
  );
  assert.equal(
    code(() => st.createRule(rule({ port_range_min: 1, port_range_max: 2 }))),
    '400 SecurityGroupProtocolRequiredWithPorts',
  );
  assert.equal(
    code(() => st.createRule(rule({ remote_ip_prefix: 'fd00::/64' }))),
    '400 SecurityGroupRuleParameterConflict',
  );
  assert.equal(
    code(() => st.deleteSecurityGroup(g.id)),
    '409 SecurityGroupCannotRemoveDefault',
  );
});

test("the notifier follows Neutron's status rules and sends Python's JSON", () => {
  const { st, net } = setup();
  const p = st.createPort(portCreate.parse({ network_id: net.id }));
  const row = { ...st.port(p.id), device_id: '5a8c8c1e-0000-4000-8000-000000000001', device_owner: 'compute:nova' };
  assert.deepEqual(statusChangeEvent(row, 'DOWN', 'ACTIVE'), {
    server_uuid: row.device_id,
    name: 'network-vif-plugged',
    status: 'completed',
    tag: p.id,
  });
  assert.equal(statusChangeEvent(row, 'DOWN', 'ERROR')!.status, 'failed');
  assert.equal(statusChangeEvent(row, 'ACTIVE', 'DOWN')!.name, 'network-vif-unplugged');
  assert.equal(statusChangeEvent(row, 'ERROR', 'DOWN'), null);
  assert.equal(statusChangeEvent({ ...row, device_owner: 'network:dhcp' }, 'DOWN', 'ACTIVE'), null);
  assert.equal(
    pythonJson({ events: [{ server_uuid: 'u', name: 'n', status: 'completed', tag: 'é' }] }),
    '{"events": [{"server_uuid": "u", "name": "n", "status": "completed", "tag": "\\u00e9"}]}',
  );
});
