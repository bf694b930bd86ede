import { readFile } from 'node:fs/promises';
import { domainXmlPath } from '../src/domain/image-cache.js';
import type { InstanceSpec } from '../src/domain/instance.js';
import type { BenchStack } from './lib/stack.js';
import { wall } from './lib/util.js';

// The hardware floor: libvirt define + start paused + resume of the very domain
// XML the power-on writes, and nothing else. What the domain needs first (disk
// overlay, XML file, plugged vifs and rules for the 2-port case) is prepared
// untimed with the same adapters.

export interface FloorResult {
  defineMs: number;
  startPausedMs: number;
  resumeMs: number;
  totalMs: number;
}

export async function floorPowerOn(stack: BenchStack, id: string, ports: string[]): Promise<FloorResult> {
  const instance: InstanceSpec = {
    uuid: id,
    name: `bench-${id.slice(0, 8)}`,
    host: stack.hostName,
    flavor: { vcpus: 1, ramMb: 64, diskGb: 1 },
    imageRef: stack.imageId,
    ports,
  };
  const networkInfo = await stack.bareNetwork.getNetworkInfo(instance);
  await stack.host.destroyGuest({ instanceUuid: id, networkInfo });
  await stack.host.writeDomainXml({ instance, networkInfo });
  await stack.host.createBacking({ instanceUuid: id, imageRef: instance.imageRef, diskGb: 1 });
  await stack.host.plugVifs({ instanceUuid: id, networkInfo });
  await stack.host.applyFirewall({ instanceUuid: id, networkInfo });
  const xml = await readFile(domainXmlPath(stack.config.instances_path, id), 'utf8');

  const t0 = wall();
  const guest = await stack.libvirt.writeInstanceConfig(xml);
  const t1 = wall();
  await guest.launch(true);
  const t2 = wall();
  await guest.resume();
  const t3 = wall();
  return { defineMs: t1 - t0, startPausedMs: t2 - t1, resumeMs: t3 - t2, totalMs: t3 - t0 };
}
