import { create } from 'xmlbuilder2';
import type { InstanceSpec } from './instance.js';
import type { NetworkInfo } from './network-model.js';

export type VirtType = 'kvm' | 'qemu';

export interface GuestConfig {
  instance: InstanceSpec;
  virtType: VirtType;
  diskPath: string;
  consoleLogPath: string;
  networkInfo: NetworkInfo;
}

export function domainName(instanceUuid: string): string {
  return `instance-${instanceUuid}`;
}

/**
 * The libvirt domain XML for a guest, like Nova's LibvirtConfigGuest: the uuid is
 * the instance uuid so `virsh domstate <uuid>` finds it. Every value goes through
 * the XML builder, which escapes it; nothing is concatenated into markup.
 */
export function buildDomainXml(config: GuestConfig): string {
  const { instance, virtType } = config;
  const doc = create({ version: '1.0' }).ele('domain', { type: virtType });
  doc.ele('name').txt(domainName(instance.uuid));
  doc.ele('uuid').txt(instance.uuid);
  doc
    .ele('metadata')
    .ele('http://openstack.org/xmlns/libvirt/nova/1.1', 'nova:instance')
    .ele('nova:name')
    // xmlbuilder2 leaves anything that looks like an entity (&x; &#0;) as it is:
    // escape '&' first so a name is always text, never a reference.
    .txt(instance.name.replace(/&/g, '&amp;'))
    .up()
    .ele('nova:flavor')
    .ele('nova:memory')
    .txt(String(instance.flavor.ramMb))
    .up()
    .ele('nova:disk')
    .txt(String(instance.flavor.diskGb))
    .up()
    .ele('nova:vcpus')
    .txt(String(instance.flavor.vcpus));
  doc.ele('memory', { unit: 'MiB' }).txt(String(instance.flavor.ramMb));
  doc.ele('vcpu').txt(String(instance.flavor.vcpus));
  const os = doc.ele('os');
  os.ele('type', { arch: 'x86_64', machine: 'pc' }).txt('hvm');
  os.ele('boot', { dev: 'hd' });
  doc.ele('features').ele('acpi');
  doc.ele('clock', { offset: 'utc' });
  doc.ele('on_poweroff').txt('destroy');
  doc.ele('on_reboot').txt('restart');
  doc.ele('on_crash').txt('destroy');

  const devices = doc.ele('devices');
  devices.ele('emulator').txt('/usr/bin/qemu-system-x86_64');
  const disk = devices.ele('disk', { type: 'file', device: 'disk' });
  disk.ele('driver', { name: 'qemu', type: 'qcow2', cache: 'none' });
  disk.ele('source', { file: config.diskPath });
  disk.ele('target', { dev: 'vda', bus: 'virtio' });

  for (const vif of config.networkInfo) {
    // The tap is made by plugVifs (os-vif style) before the guest starts, so
    // libvirt gets it as an unmanaged ethernet device and never renames it.
    const iface = devices.ele('interface', { type: 'ethernet' });
    iface.ele('mac', { address: vif.address });
    iface.ele('target', { dev: vif.devname, managed: 'no' });
    iface.ele('model', { type: 'virtio' });
    iface.ele('mtu', { size: String(vif.network.mtu) });
  }

  const serial = devices.ele('serial', { type: 'file' });
  serial.ele('source', { path: config.consoleLogPath });
  serial.ele('target', { port: '0' });
  devices.ele('memballoon', { model: 'none' });
  return doc.end({ prettyPrint: true });
}
