import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildDomainXml, domainName } from '../../src/domain/domain-xml.js';
import type { InstanceSpec } from '../../src/domain/instance.js';
import type { Vif } from '../../src/domain/network-model.js';

const instance: InstanceSpec = {
  uuid: '2f6c1c1e-8b1a-4b8e-9d6e-3d2f0c1b2a10',
  name: 'web-1',
  host: 'compute-1',
  flavor: { vcpus: 2, ramMb: 128, diskGb: 1 },
  imageRef: 'cirros',
  ports: [],
};

const base = {
  instance,
  virtType: 'kvm' as const,
  diskPath: '/var/lib/nt/instances/x/disk',
  consoleLogPath: '/var/lib/nt/instances/x/console.log',
  networkInfo: [],
};

test('the domain uuid is the instance uuid and the name derives from it', () => {
  const xml = buildDomainXml(base);
  assert.match(xml, /<uuid>2f6c1c1e-8b1a-4b8e-9d6e-3d2f0c1b2a10<\/uuid>/);
  assert.match(xml, new RegExp(`<name>${domainName(instance.uuid)}</name>`));
  assert.match(xml, /<domain type="kvm">/);
  assert.match(xml, /<memory unit="MiB">128<\/memory>/);
  assert.match(xml, /<vcpu>2<\/vcpu>/);
  assert.match(xml, /<driver name="qemu" type="qcow2" cache="none"\/>/);
  assert.match(xml, /<source file="\/var\/lib\/nt\/instances\/x\/disk"\/>/);
});

test('every value put into the XML is escaped', () => {
  const hostile = { ...instance, name: `</nova:name><devices><disk type='file'>&"'` };
  const xml = buildDomainXml({ ...base, instance: hostile });
  assert.ok(!xml.includes("<disk type='file'>"), 'markup from the name must not appear unescaped');
  assert.match(xml, /&lt;\/nova:name&gt;&lt;devices&gt;/);
  assert.match(xml, /&amp;/);
  assert.equal((xml.match(/<devices>/g) ?? []).length, 1);
});

test('a vif becomes an unmanaged ethernet interface on its pre-made tap', () => {
  const vif: Vif = {
    id: '8f3e5a52-1c4b-4a57-9d3f-0e2b6f1a7c01',
    address: 'fa:16:3e:11:22:33',
    devname: 'tap8f3e5a52-1c',
    type: 'ovs',
    vnicType: 'normal',
    network: { id: 'n1', label: 'private', bridge: 'br-int', mtu: 1450, subnets: [] },
    active: false,
    details: { ovsHybridPlug: false, portFilter: false },
    portSecurityEnabled: true,
    allowedAddressPairs: [],
    securityGroupRules: [],
  };
  const xml = buildDomainXml({ ...base, networkInfo: [vif] });
  assert.match(xml, /<interface type="ethernet">/);
  assert.match(xml, /<mac address="fa:16:3e:11:22:33"\/>/);
  assert.match(xml, /<target dev="tap8f3e5a52-1c" managed="no"\/>/);
  assert.match(xml, /<mtu size="1450"\/>/);
});
