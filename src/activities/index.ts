import type { NetworkInfo } from '../domain/network-model.js';
import { createControlPlaneActivities } from './control-plane.js';
import { createDiskActivities, type DiskDeps } from './disk.js';
import { createGuestActivities, type GuestDeps } from './guest.js';
import { createNetworkActivities, type NetworkDeps } from './network.js';

export type ControlPlaneActivities = ReturnType<typeof createControlPlaneActivities>;
export type HostActivities = ReturnType<typeof createHostActivities>;

export type HostDeps = GuestDeps & DiskDeps & Partial<NetworkDeps>;

/** Everything a compute host runs on its `compute.<host>` task queue. */
export function createHostActivities(deps: HostDeps) {
  const guest = createGuestActivities(deps);
  const disk = createDiskActivities(deps);
  const network = createNetworkActivities(deps);
  return {
    ...guest,
    ...disk,
    ...network,
    /** _destroy in _hard_reboot: the domain, then its vifs and rules; never a disk. */
    async destroyGuest(input: { instanceUuid: string; networkInfo: NetworkInfo }): Promise<void> {
      await guest.destroyDomain(input.instanceUuid);
      await network.unplugVifs(input);
      await network.removeFirewall(input);
    },
    /** Operator teardown (`make down`): like destroyGuest, knowing only the port ids. */
    async cleanupInstance(input: { instanceUuid: string; portIds: string[] }): Promise<void> {
      await guest.destroyDomain(input.instanceUuid);
      const networkInfo: NetworkInfo = [];
      await network.unplugVifs({ instanceUuid: input.instanceUuid, networkInfo });
      await network.removeFirewall({ instanceUuid: input.instanceUuid, networkInfo });
    },
  };
}

export { createControlPlaneActivities };
