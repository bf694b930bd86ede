import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tapName, type Vif } from '../../src/domain/network-model.js';
import { InvalidVifValue, firewallFor, planVif, plugKind, type FirewallDriver } from '../../src/domain/vif-plug.js';

const portId = '6f1c2d3e-4a5b-4c6d-8e7f-901a2b3c4d5e';

function vif(over: Partial<Vif> = {}, details: Partial<Vif['details']> = {}): Vif {
  return {
    id: portId,
    address: 'fa:16:3e:12:34:56',
    devname: tapName(portId),
    type: 'ovs',
    vnicType: 'normal',
    network: { id: 'net', label: 'private', bridge: 'br-int', mtu: 1450, subnets: [] },
    active: false,
    details: { ovsHybridPlug: false, portFilter: false, ...details },
    portSecurityEnabled: true,
    allowedAddressPairs: [],
    securityGroupRules: [],
    ...over,
  };
}

const opts = (firewallDriver: FirewallDriver) => ({ firewallDriver, integrationBridge: 'br-int' });

test('the binding ovs_hybrid_plug asks for the hybrid plug whatever the driver', () => {
  for (const driver of ['nftables', 'openvswitch', 'noop'] as const) {
    assert.equal(plugKind(vif({}, { ovsHybridPlug: true, portFilter: true }), driver), 'ovs-hybrid', driver);
  }
});

test('nftables filters through qbr: an unfiltered ovs port gets the hybrid plug', () => {
  assert.equal(plugKind(vif(), 'nftables'), 'ovs-hybrid');
  assert.equal(plugKind(vif({}, { portFilter: true }), 'nftables'), 'ovs', 'Neutron filters: a plain OVS port');
  assert.equal(plugKind(vif(), 'openvswitch'), 'ovs', 'OpenFlow filters in br-int');
  assert.equal(plugKind(vif(), 'noop'), 'ovs');
});

test('a bridge vif goes into the Linux bridge of its network', () => {
  const plan = planVif(
    vif({ type: 'bridge', network: { ...vif().network, bridge: 'brq1234' } }, { portFilter: true }),
    opts('nftables'),
  );
  assert.equal(plan.kind, 'bridge');
  assert.equal(plan.bridge, 'brq1234');
  assert.equal(plan.hybrid, null);
});

test('our firewall leaves a port alone when Neutron filters it, port security is off, or the driver is noop', () => {
  assert.equal(firewallFor(vif(), 'nftables'), 'nftables');
  assert.equal(firewallFor(vif(), 'openvswitch'), 'openvswitch');
  assert.equal(firewallFor(vif({}, { portFilter: true }), 'nftables'), null);
  assert.equal(firewallFor(vif({ portSecurityEnabled: false }), 'nftables'), null);
  assert.equal(firewallFor(vif(), 'noop'), null);
});

test('a plan names the os-vif devices and the bridge', () => {
  const plan = planVif(vif({ network: { ...vif().network, bridge: '' } }), opts('nftables'));
  assert.equal(plan.kind, 'ovs-hybrid');
  assert.equal(plan.bridge, 'br-int', 'no bridge in the network: the integration bridge');
  assert.equal(plan.tap, 'tap6f1c2d3e-4a');
  assert.deepEqual(plan.hybrid, { qbr: 'qbr6f1c2d3e-4a', qvb: 'qvb6f1c2d3e-4a', qvo: 'qvo6f1c2d3e-4a' });
  assert.equal(plan.firewall, 'nftables');
});

test('a bridge vif that nftables would have to filter is refused: nft cannot tell its direction', () => {
  assert.throws(() => planVif(vif({ type: 'bridge' }), opts('nftables')), InvalidVifValue);
  assert.equal(planVif(vif({ type: 'bridge' }), opts('noop')).firewall, null);
});

test('bad identities from Neutron are refused with the field named', () => {
  const cases: [Partial<Vif>, RegExp][] = [
    [{ id: 'x; reboot' }, /: id: "x; reboot" is not a UUID/],
    [{ address: 'fa:16:3e:12:34:56;' }, /: address: .* is not a MAC address/],
    [{ address: '01:00:5e:00:00:01' }, /: address: .* is not a unicast MAC address/],
    [{ devname: 'tap 6f1c2d3e' }, /: devname: .* is not a network device name/],
    [{ devname: 'tapother' }, /: devname: "tapother" is not tap6f1c2d3e-4a/],
    [{ network: { ...vif().network, mtu: 10 } }, /network\.mtu: 10 is not an MTU/],
    [{ network: { ...vif().network, bridge: 'br int' } }, /network\.bridge: "br int" is not a network device name/],
  ];
  for (const [over, message] of cases) {
    assert.throws(() => planVif(vif(over), opts('nftables')), message);
  }
});
