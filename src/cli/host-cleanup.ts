import { createHostActivities } from '../activities/index.js';
import { loadConfig } from '../config.js';
import { ImageSource } from '../host/image-source.js';
import { Host } from '../libvirt/host.js';
import { logger } from '../log.js';
import { openInstanceStore } from '../store/open-store.js';

// `make down`, first half: remove the guest, taps, OVS ports and rules of every
// instance in the local store, so no QEMU outlives the stack. Disks stay.
async function main(): Promise<void> {
  const config = loadConfig();
  const store = await openInstanceStore(config);
  const host = new Host(config.libvirt.uri);
  const activities = createHostActivities({
    host,
    instancesPath: config.instances_path,
    virtType: config.libvirt.virt_type,
    images: new ImageSource(config.images_path),
    integrationBridge: config.integration_bridge,
    firewallDriver: config.firewall_driver,
  });
  try {
    for (const instance of await store.listInstances()) {
      if (instance.host !== config.host) continue;
      await activities.cleanupInstance({ instanceUuid: instance.uuid, portIds: instance.ports });
      logger.info({ instanceUuid: instance.uuid }, 'guest, vifs and rules removed');
    }
  } finally {
    await host.close();
    await store.close();
  }
}

main().catch((err) => {
  logger.fatal({ err }, 'host cleanup failed');
  process.exit(1);
});
