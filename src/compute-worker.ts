import { Runtime, Worker, type NativeConnection } from '@temporalio/worker';
import { createHostActivities } from './activities/index.js';
import { activityInterceptors } from './activity-interceptors.js';
import type { Config } from './config.js';
import { ImageSource } from './host/image-source.js';
import { Host } from './libvirt/host.js';
import { computeTaskQueue } from './workflows/definitions.js';

/** The compute host's worker: host activities only, on `compute.<host>`. */
export async function createComputeWorker(config: Config, connection: NativeConnection) {
  const host = new Host(config.libvirt.uri);
  const worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: computeTaskQueue(config.host),
    activities: createHostActivities({
      host,
      instancesPath: config.instances_path,
      virtType: config.libvirt.virt_type,
      images: new ImageSource(config.images_path),
      integrationBridge: config.integration_bridge,
      firewallDriver: config.firewall_driver,
    }),
    interceptors: { activity: [activityInterceptors] },
  });
  return { worker, host };
}

export { Runtime };
