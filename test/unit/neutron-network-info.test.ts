import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tapName } from '../../src/domain/network-model.js';
import {
  buildNetworkInfo,
  NetworkInfoError,
  remoteGroupIds,
  vifActive,
  type NeutronAnswers,
} from '../../src/neutron/network-info.js';
import * as s from '../../src/neutron/schemas.js';

// Nova's _build_vif_model rules, on validated Neutron answers.

const NET = '0b5e1c5e-6b1f-4f57-9a57-8f3a1c2d3e40';
const NET2 = '7d1a8f0e-2c3b-4d5e-8f9a-0b1c2d3e4f50';
const SUB4 = '1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e51';
const SUB6 = '2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f62';
const SUB_NET2 = '3e4f5a6b-7c8d-4e9f-8a1b-2c3d4e5f6a73';
const P1 = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d';
const P2 = 'b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e';
const SG = 'c3d4e5f6-a7b8-4c9d-8e1f-2a3b4c5d6e7f';
const SG_REMOTE = 'd4e5f6a7-b8c9-4d0e-9f2a-3b4c5d6e7f80';

function port(over: Record<string, unknown> = {}) {
  return s.port.parse({
    id: P1,
    name: 'p1',
    network_id: NET,
    mac_address: 'fa:16:3e:00:00:01',
    admin_state_up: true,
    status: 'DOWN',
    device_id: '5a8c8c1e-0000-4000-8000-000000000001',
    device_owner: 'compute:nova',
    fixed_ips: [
      { subnet_id: SUB4, ip_address: '10.0.0.5' },
      { subnet_id: SUB6, ip_address: 'fd00::5' },
    ],
    allowed_address_pairs: [{ ip_address: '10.0.0.100' }],
    security_groups: [SG],
    port_security_enabled: true,
    'binding:host_id': 'compute-1',
    'binding:vif_type': 'ovs',
    'binding:vif_details': { port_filter: false, ovs_hybrid_plug: false, connectivity: 'l2' },
    'binding:vnic_type': 'normal',
    ...over,
  });
}

function answers(ports = [port()], extra: Partial<NeutronAnswers> = {}): NeutronAnswers {
  return {
    ports,
    networks: [
      s.network.parse({
        id: NET,
        name: 'private',
        status: 'ACTIVE',
        admin_state_up: true,
        mtu: 1450,
        subnets: [SUB4, SUB6],
      }),
      s.network.parse({
        id: NET2,
        name: 'other',
        status: 'ACTIVE',
        admin_state_up: true,
        mtu: 9000,
        subnets: [SUB_NET2],
      }),
    ],
    subnets: [
      s.subnet.parse({ id: SUB4, network_id: NET, ip_version: 4, cidr: '10.0.0.0/24', gateway_ip: '10.0.0.1' }),
      s.subnet.parse({ id: SUB6, network_id: NET, ip_version: 6, cidr: 'fd00::/64', gateway_ip: null }),
      s.subnet.parse({
        id: SUB_NET2,
        network_id: NET2,
        ip_version: 4,
        cidr: '192.168.9.0/24',
        gateway_ip: '192.168.9.1',
      }),
    ],
    securityGroups: [
      s.securityGroup.parse({
        id: SG,
        name: 'web',
        security_group_rules: [
          rule({ direction: 'egress', ethertype: 'IPv4' }),
          rule({ protocol: 'tcp', port_range_min: 22, port_range_max: 22, remote_ip_prefix: '0.0.0.0/0' }),
          rule({ protocol: 'icmp', remote_group_id: SG_REMOTE }),
        ],
      }),
    ],
    ...extra,
  };
}

let ruleSeq = 0;
function rule(over: Record<string, unknown>) {
  ruleSeq++;
  return {
    id: `e5f6a7b8-c9d0-4e1f-8a3b-${String(ruleSeq).padStart(12, '0')}`,
    security_group_id: SG,
    direction: 'ingress',
    ethertype: 'IPv4',
    protocol: null,
    port_range_min: null,
    port_range_max: null,
    remote_ip_prefix: null,
    remote_group_id: null,
    ...over,
  };
}

const opts = { integrationBridge: 'br-int' };

test('tap names are ("tap" + port id)[:14]', () => {
  assert.equal(tapName(P1), 'tapa1b2c3d4-e5');
  assert.equal(tapName(P1).length, 14);
});

test('an ovs port becomes a vif with Nova fields', () => {
  const [vif, ...rest] = buildNetworkInfo([P1], answers(), opts);
  assert.equal(rest.length, 0);
  assert.deepEqual(vif, {
    id: P1,
    address: 'fa:16:3e:00:00:01',
    devname: 'tapa1b2c3d4-e5',
    type: 'ovs',
    vnicType: 'normal',
    network: {
      id: NET,
      label: 'private',
      bridge: 'br-int',
      mtu: 1450,
      subnets: [
        { id: SUB4, cidr: '10.0.0.0/24', gateway: '10.0.0.1', ips: [{ address: '10.0.0.5', version: 4 }] },
        { id: SUB6, cidr: 'fd00::/64', gateway: null, ips: [{ address: 'fd00::5', version: 6 }] },
      ],
    },
    active: false,
    details: { ovsHybridPlug: false, portFilter: false },
    portSecurityEnabled: true,
    allowedAddressPairs: [{ ipAddress: '10.0.0.100', macAddress: 'fa:16:3e:00:00:01' }],
    securityGroupRules: [
      {
        direction: 'egress',
        ethertype: 'IPv4',
        protocol: null,
        portRangeMin: null,
        portRangeMax: null,
        remoteIpPrefix: null,
      },
      {
        direction: 'ingress',
        ethertype: 'IPv4',
        protocol: 'tcp',
        portRangeMin: 22,
        portRangeMax: 22,
        remoteIpPrefix: '0.0.0.0/0',
      },
      // The remote_group_id rule is left out: its members are unknown (fail closed).
    ],
  });
});

test('two ports keep the instance order, not Neutron order', () => {
  const p2 = port({
    id: P2,
    network_id: NET2,
    mac_address: 'fa:16:3e:00:00:02',
    fixed_ips: [{ subnet_id: SUB_NET2, ip_address: '192.168.9.7' }],
    status: 'ACTIVE',
  });
  const info = buildNetworkInfo([P2, P1], answers([port(), p2]), opts);
  assert.deepEqual(
    info.map((v) => [v.id, v.network.id, v.network.mtu, v.devname]),
    [
      [P2, NET2, 9000, tapName(P2)],
      [P1, NET, 1450, tapName(P1)],
    ],
  );
  assert.deepEqual(
    info.map((v) => v.active),
    [true, false],
  );
});

test('active: status ACTIVE, or admin_state_up false (no event will come)', () => {
  assert.equal(vifActive({ status: 'ACTIVE', admin_state_up: true }), true);
  assert.equal(vifActive({ status: 'DOWN', admin_state_up: true }), false);
  assert.equal(vifActive({ status: 'BUILD', admin_state_up: true }), false);
  assert.equal(vifActive({ status: 'DOWN', admin_state_up: false }), true);
  const [vif] = buildNetworkInfo([P1], answers([port({ admin_state_up: false, status: 'DOWN' })]), opts);
  assert.equal(vif!.active, true);
});

test('a linuxbridge port plugs into brq + network id[:11], or the binding bridge_name', () => {
  const [vif] = buildNetworkInfo([P1], answers([port({ 'binding:vif_type': 'bridge' })]), opts);
  assert.equal(vif!.type, 'bridge');
  assert.equal(vif!.network.bridge, `brq${NET.slice(0, 11)}`);
  assert.equal(vif!.network.bridge.length, 14);
  const [named] = buildNetworkInfo(
    [P1],
    answers([port({ 'binding:vif_type': 'bridge', 'binding:vif_details': { bridge_name: 'br-phys' } })]),
    opts,
  );
  assert.equal(named!.network.bridge, 'br-phys');
  const [ovs] = buildNetworkInfo([P1], answers([port({ 'binding:vif_details': { bridge_name: 'br-trunk' } })]), opts);
  assert.equal(ovs!.network.bridge, 'br-trunk');
});

test('the hybrid plug and port_filter flags come from binding:vif_details', () => {
  const [vif] = buildNetworkInfo(
    [P1],
    answers([port({ 'binding:vif_details': { ovs_hybrid_plug: true, port_filter: true } })]),
    opts,
  );
  assert.deepEqual(vif!.details, { ovsHybridPlug: true, portFilter: true });
  const [bare] = buildNetworkInfo([P1], answers([port({ 'binding:vif_details': null })]), opts);
  assert.deepEqual(bare!.details, { ovsHybridPlug: false, portFilter: false });
});

test('an unsupported or missing vif type is a clear error naming the port', () => {
  const cases: [unknown, RegExp][] = [
    ['vhostuser', /port a1b2c3d4-.* has binding:vif_type vhostuser; only ovs and bridge are supported/],
    ['binding_failed', /Neutron failed to bind port a1b2c3d4-.* on host compute-1/],
    ['unbound', /port a1b2c3d4-.* is not bound to a host/],
    [undefined, /port a1b2c3d4-.* has no binding:vif_type: .*admin role/],
  ];
  for (const [type, message] of cases) {
    const p = port({ 'binding:vif_type': type });
    assert.throws(
      () => buildNetworkInfo([P1], answers([p]), opts),
      (err: unknown) => err instanceof NetworkInfoError && err.portId === P1 && message.test(err.message),
      String(type),
    );
  }
});

test('a port the instance expects but Neutron did not return is an error naming it', () => {
  assert.throws(() => buildNetworkInfo([P1, P2], answers(), opts), new RegExp(`port ${P2} is not among`));
});

test('port security off: no rules; without MTU the default is 1500', () => {
  const noSec = port({ port_security_enabled: false, security_groups: [], allowed_address_pairs: [] });
  const a = answers([noSec]);
  a.networks[0] = s.network.parse({ id: NET, name: 'private', status: 'ACTIVE', admin_state_up: true });
  const [vif] = buildNetworkInfo([P1], a, opts);
  assert.equal(vif!.portSecurityEnabled, false);
  assert.deepEqual(vif!.securityGroupRules, []);
  assert.equal(vif!.network.mtu, 1500);
});

test('remote_group_id rules expand to the member addresses of that group, by ethertype', () => {
  const a = answers([port()], { remoteGroupAddresses: { [SG_REMOTE]: ['10.0.0.7', 'fd00::7', '10.1.0.0/16'] } });
  assert.deepEqual(remoteGroupIds(a.ports, a.securityGroups), [SG_REMOTE]);
  const [vif] = buildNetworkInfo([P1], a, opts);
  const icmp = vif!.securityGroupRules.filter((r) => r.protocol === 'icmp');
  assert.deepEqual(
    icmp.map((r) => r.remoteIpPrefix),
    ['10.0.0.7/32', '10.1.0.0/16'],
  );
});

test('a security group the port names but Neutron did not return is an error', () => {
  const a = answers();
  a.securityGroups = [];
  assert.throws(() => buildNetworkInfo([P1], a, opts), /unknown security group c3d4e5f6/);
});

test('a fixed IP on a subnet of another network is refused', () => {
  const p = port({ fixed_ips: [{ subnet_id: SUB_NET2, ip_address: '192.168.9.3' }] });
  assert.throws(() => buildNetworkInfo([P1], answers([p]), opts), /subnet 3e4f5a6b.* is not on network/);
});
