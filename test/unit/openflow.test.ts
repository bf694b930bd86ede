import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tapName, type Vif } from '../../src/domain/network-model.js';
import { planVif } from '../../src/domain/vif-plug.js';
import { buildFlows, flowCookie, portMasks } from '../../src/host/openflow.js';

// The pure half of the OpenFlow driver: the bundle file of an instance.

const instanceUuid = '0b7e8c4a-1111-4222-8333-444455556666';
const portId = '6f1c2d3e-4a5b-4c6d-8e7f-901a2b3c4d5e';
const cookie = '0x0b7e8c4a11114222';

function vif(over: Partial<Vif> = {}): Vif {
  return {
    id: portId,
    address: 'fa:16:3e:12:34:56',
    devname: tapName(portId),
    type: 'ovs',
    vnicType: 'normal',
    network: {
      id: 'net',
      label: 'private',
      bridge: 'br-int',
      mtu: 1450,
      subnets: [{ id: 's', cidr: '10.0.0.0/24', gateway: null, ips: [{ address: '10.0.0.5', version: 4 }] }],
    },
    active: false,
    details: { ovsHybridPlug: false, portFilter: false },
    portSecurityEnabled: true,
    allowedAddressPairs: [{ ipAddress: '10.0.1.0/24', macAddress: 'fa:16:3e:aa:bb:cc' }],
    securityGroupRules: [
      {
        direction: 'ingress',
        ethertype: 'IPv4',
        protocol: 'tcp',
        portRangeMin: 22,
        portRangeMax: 22,
        remoteIpPrefix: '192.168.0.0/16',
      },
      {
        direction: 'egress',
        ethertype: 'IPv4',
        protocol: null,
        portRangeMin: null,
        portRangeMax: null,
        remoteIpPrefix: null,
      },
    ],
    ...over,
  };
}

const flows = (v: Vif = vif(), ofport = 7) =>
  buildFlows(instanceUuid, [
    { plan: planVif(v, { firewallDriver: 'openvswitch', integrationBridge: 'br-int' }), ofport },
  ])
    .split('\n')
    .filter(Boolean);

test('the cookie is the first 64 bits of the instance uuid; the bundle first deletes the old flows', () => {
  assert.equal(flowCookie(instanceUuid), cookie);
  const f = flows();
  assert.equal(f[0], `delete cookie=${cookie}/-1`);
  assert.ok(
    f.slice(2).every((l) => l.startsWith(`add cookie=${cookie},`)),
    'every flow carries the cookie',
  );
});

test('anti-spoofing in table 0: the (MAC, address) pairs go to conntrack, the rest of the port is dropped', () => {
  const f = flows().map((l) => l.replace(`add cookie=${cookie},`, ''));
  for (const line of [
    'table=0,priority=180,in_port=7,dl_src=fa:16:3e:12:34:56,ip,nw_src=10.0.0.5,actions=ct(table=71,zone=7)',
    'table=0,priority=180,in_port=7,dl_src=fa:16:3e:aa:bb:cc,ip,nw_src=10.0.1.0/24,actions=ct(table=71,zone=7)',
    'table=0,priority=180,in_port=7,dl_src=fa:16:3e:12:34:56,arp,arp_sha=fa:16:3e:12:34:56,arp_spa=10.0.0.5,actions=NORMAL',
    'table=0,priority=200,in_port=7,udp,tp_src=67,tp_dst=68,actions=drop',
    'table=0,priority=200,in_port=7,vlan_tci=0x1000/0x1000,actions=drop',
    'table=0,priority=170,in_port=7,actions=drop',
    'table=0,priority=160,dl_dst=fa:16:3e:12:34:56,ip,actions=set_field:7->reg5,ct(table=82,zone=7)',
  ]) {
    assert.ok(f.includes(line), `missing: ${line}`);
  }
});

test('security-group rules commit new connections; ranges become masks', () => {
  const f = flows().map((l) => l.replace(`add cookie=${cookie},`, ''));
  assert.ok(
    f.includes(
      'table=82,priority=170,reg5=7,ct_state=+new+trk,tcp,nw_src=192.168.0.0/16,tp_dst=22,actions=ct(commit,zone=7),output:7',
    ),
  );
  assert.ok(f.includes('table=71,priority=170,in_port=7,ct_state=+new+trk,ip,actions=ct(commit,zone=7),resubmit(,73)'));
  assert.ok(f.includes('table=82,priority=1,reg5=7,actions=drop'));
  assert.deepEqual(portMasks(1000, 1999), [
    '0x3e8/0xfff8',
    '0x3f0/0xfff0',
    '0x400/0xfe00',
    '0x600/0xff00',
    '0x700/0xff80',
    '0x780/0xffc0',
    '0x7c0/0xfff0',
  ]);
  assert.deepEqual(portMasks(22, 22), ['22']);
  assert.deepEqual(portMasks(0, 65535), ['0x0/0x0']);
});

test('hostile values never reach ovs-ofctl', () => {
  assert.throws(() => flows(vif(), 0), /ofport: 0 is not an OpenFlow port/);
  assert.throws(
    () => flows(vif({ allowedAddressPairs: [{ ipAddress: '10.0.0.1,actions=NORMAL', macAddress: '' }] })),
    /allowedAddressPairs\[0\]\.ipAddress: .* is not an IPv4 or IPv6 address/,
  );
  assert.throws(
    () =>
      flows(
        vif({
          securityGroupRules: [
            {
              direction: 'ingress',
              ethertype: 'IPv4',
              protocol: 'dccp',
              portRangeMin: 1,
              portRangeMax: 2,
              remoteIpPrefix: null,
            },
          ],
        }),
      ),
    /securityGroupRules\[0\]\.protocol: 33 is not tcp, udp or sctp/,
  );
  assert.throws(() => buildFlows('x,actions=drop', []), /instanceUuid: .* is not a UUID/);
});
