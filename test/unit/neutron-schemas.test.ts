import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseAnswer } from '../../src/neutron/client.js';
import { NeutronResponseInvalid } from '../../src/neutron/errors.js';
import * as s from '../../src/neutron/schemas.js';

// Hostile or malformed Neutron answers are refused at the boundary, naming the
// field, before any value can reach XML, ovs-vsctl or nft.

const PORT = {
  id: 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d',
  name: 'p1',
  network_id: '0b5e1c5e-6b1f-4f57-9a57-8f3a1c2d3e40',
  mac_address: 'fa:16:3e:00:00:01',
  admin_state_up: true,
  status: 'DOWN',
  device_id: '',
  device_owner: '',
  fixed_ips: [{ subnet_id: '1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e51', ip_address: '10.0.0.5' }],
  allowed_address_pairs: [],
  security_groups: [],
  port_security_enabled: true,
  'binding:host_id': '',
  'binding:vif_type': 'ovs',
  'binding:vif_details': { port_filter: false, ovs_hybrid_plug: false },
  'binding:vnic_type': 'normal',
};

function portsAnswer(over: Record<string, unknown>): string {
  return JSON.stringify({ ports: [{ ...PORT, ...over }] });
}

function rejects(text: string, field: string, schema: typeof s.portsBody | typeof s.networkBody = s.portsBody) {
  assert.throws(
    () => parseAnswer('GET /v2.0/ports', schema, text),
    (err: unknown) => {
      assert.ok(err instanceof NeutronResponseInvalid, String(err));
      assert.equal(err.field, field);
      assert.match(err.message, new RegExp(`invalid response: ${field.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
      return true;
    },
  );
}

test('a well-formed port answer passes and unknown fields are dropped', () => {
  const { ports } = parseAnswer('GET /v2.0/ports', s.portsBody, portsAnswer({ extra_field: '<x/>' }));
  assert.equal(ports[0]!.mac_address, 'fa:16:3e:00:00:01');
  assert.equal('extra_field' in ports[0]!, false);
});

test('hostile port values are each rejected naming the field', () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ mac_address: 'fa:16:3e:00:00:01;' }, 'ports[0].mac_address'],
    [{ mac_address: 'FA:16:3E:00:00:01' }, 'ports[0].mac_address'],
    [{ mac_address: "fa:16:3e:00:00:01' onload='x" }, 'ports[0].mac_address'],
    [{ id: '../../etc/passwd' }, 'ports[0].id'],
    [{ network_id: 'x' }, 'ports[0].network_id'],
    [
      { fixed_ips: [{ subnet_id: PORT.fixed_ips[0]!.subnet_id, ip_address: '1.2.3.4; flush ruleset' }] },
      'ports[0].fixed_ips[0].ip_address',
    ],
    [
      { fixed_ips: [{ subnet_id: PORT.fixed_ips[0]!.subnet_id, ip_address: 'fe80::1%eth0' }] },
      'ports[0].fixed_ips[0].ip_address',
    ],
    [
      { fixed_ips: [{ subnet_id: PORT.fixed_ips[0]!.subnet_id, ip_address: '10.0.0.256' }] },
      'ports[0].fixed_ips[0].ip_address',
    ],
    [{ 'binding:vif_details': { bridge_name: 'br-int; rm -rf /' } }, 'ports[0].binding:vif_details.bridge_name'],
    [{ 'binding:vif_details': { bridge_name: 'br-int-longer-than-15' } }, 'ports[0].binding:vif_details.bridge_name'],
    [{ 'binding:vif_details': { ovs_hybrid_plug: 'yes' } }, 'ports[0].binding:vif_details.ovs_hybrid_plug'],
    [{ 'binding:vif_details': { port_filter: 1 } }, 'ports[0].binding:vif_details.port_filter'],
    [{ 'binding:vif_type': 'ovs"/><evil' }, 'ports[0].binding:vif_type'],
    [{ 'binding:vnic_type': 'normal\n' }, 'ports[0].binding:vnic_type'],
    [{ 'binding:host_id': 'host;reboot' }, 'ports[0].binding:host_id'],
    [{ status: 'HACKED' }, 'ports[0].status'],
    [{ admin_state_up: 'true' }, 'ports[0].admin_state_up'],
    [{ name: 'x'.repeat(256) }, 'ports[0].name'],
    [{ name: 'tab\there' }, 'ports[0].name'],
    [{ device_id: 'a\u0000b' }, 'ports[0].device_id'],
    [{ allowed_address_pairs: [{ ip_address: '10.0.0.0/33' }] }, 'ports[0].allowed_address_pairs[0].ip_address'],
    [
      { allowed_address_pairs: [{ ip_address: '10.0.0.9', mac_address: 'zz:zz' }] },
      'ports[0].allowed_address_pairs[0].mac_address',
    ],
    [{ security_groups: ['default'] }, 'ports[0].security_groups[0]'],
    [{ port_security_enabled: 'no' }, 'ports[0].port_security_enabled'],
    [{ security_groups: Array(65).fill('c3d4e5f6-a7b8-4c9d-8e1f-2a3b4c5d6e7f') }, 'ports[0].security_groups'],
  ];
  for (const [over, field] of cases) rejects(portsAnswer(over), field);
});

test('network MTU, status and name are bounded', () => {
  const net = { id: PORT.network_id, name: 'n', status: 'ACTIVE', admin_state_up: true, mtu: 1500, subnets: [] };
  const answer = (over: Record<string, unknown>) => JSON.stringify({ network: { ...net, ...over } });
  assert.equal(parseAnswer('GET', s.networkBody, answer({})).network.mtu, 1500);
  rejects(answer({ mtu: 67 }), 'network.mtu', s.networkBody);
  rejects(answer({ mtu: 65536 }), 'network.mtu', s.networkBody);
  rejects(answer({ mtu: 1500.5 }), 'network.mtu', s.networkBody);
  rejects(answer({ status: 'UP' }), 'network.status', s.networkBody);
});

test('subnet CIDR and gateway must be valid and of the subnet ip_version', () => {
  const sub = {
    id: PORT.fixed_ips[0]!.subnet_id,
    network_id: PORT.network_id,
    ip_version: 4,
    cidr: '10.0.0.0/24',
    gateway_ip: '10.0.0.1',
  };
  const check = (over: Record<string, unknown>) => s.subnetsBody.safeParse({ subnets: [{ ...sub, ...over }] });
  assert.equal(check({}).success, true);
  for (const [over, field] of [
    [{ cidr: '10.0.0.0/24; drop' }, 'subnets[0].cidr'],
    [{ cidr: '10.0.0.0/33' }, 'subnets[0].cidr'],
    [{ cidr: '10.0.0.0/024' }, 'subnets[0].cidr'],
    [{ cidr: 'fd00::/64' }, 'subnets[0].cidr'],
    [{ gateway_ip: 'fd00::1' }, 'subnets[0].gateway_ip'],
    [{ ip_version: 5 }, 'subnets[0].ip_version'],
  ] as const) {
    const r = check(over);
    assert.equal(r.success, false, JSON.stringify(over));
    assert.equal(s.fieldPath(r.error!.issues[0]!.path), field);
  }
});

test('security group rules: protocol, ports and remote prefix are checked', () => {
  const rule = {
    id: 'e5f6a7b8-c9d0-4e1f-8a3b-000000000001',
    security_group_id: 'c3d4e5f6-a7b8-4c9d-8e1f-2a3b4c5d6e7f',
    direction: 'ingress',
    ethertype: 'IPv4',
    protocol: 'tcp',
    port_range_min: 22,
    port_range_max: 22,
    remote_ip_prefix: '10.0.0.0/8',
    remote_group_id: null,
  };
  const check = (over: Record<string, unknown>) =>
    s.securityGroupsBody.safeParse({
      security_groups: [{ id: rule.security_group_id, name: 'g', security_group_rules: [{ ...rule, ...over }] }],
    });
  assert.equal(check({}).success, true);
  assert.equal(check({ protocol: '47' }).success, true);
  const prefix = 'security_groups[0].security_group_rules[0].';
  for (const [over, field] of [
    [{ protocol: 'tcp; accept' }, 'protocol'],
    [{ protocol: '256' }, 'protocol'],
    [{ direction: 'both' }, 'direction'],
    [{ ethertype: 'ipv4' }, 'ethertype'],
    [{ port_range_min: 70000 }, 'port_range_min'],
    [{ port_range_min: 80, port_range_max: 22 }, 'port_range_max'],
    [{ remote_ip_prefix: '0.0.0.0/0 counter accept' }, 'remote_ip_prefix'],
    [{ remote_ip_prefix: '::/0' }, 'remote_ip_prefix'],
  ] as const) {
    const r = check(over);
    assert.equal(r.success, false, JSON.stringify(over));
    assert.equal(s.fieldPath(r.error!.issues[0]!.path), prefix + field);
  }
});

test('a body that is not JSON, or not the expected envelope, is refused', () => {
  rejects('<html>502 Bad Gateway</html>', '(body)');
  rejects(JSON.stringify({ port: PORT }), 'ports');
  rejects(JSON.stringify({ ports: 'x' }), 'ports');
});

test('ip and cidr helpers accept canonical forms only', () => {
  assert.equal(s.ipVersion('10.0.0.1'), 4);
  assert.equal(s.ipVersion('fd00::1'), 6);
  assert.equal(s.ipVersion('010.0.0.1'), 0);
  assert.equal(s.ipVersion('fe80::1%eth0'), 0);
  assert.equal(s.cidrVersion('10.0.0.0/0'), 4);
  assert.equal(s.cidrVersion('fd00::/128'), 6);
  assert.equal(s.cidrVersion('fd00::/129'), 0);
  assert.equal(s.cidrVersion('10.0.0.0/+8'), 0);
  assert.equal(s.cidrVersion('10.0.0.0'), 0);
});
