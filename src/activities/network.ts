import type { NetworkInfo } from '../domain/network-model.js';

// Host activities for vifs and the firewall. This first cut supports instances
// without ports; plugging and filtering land with the networking work.

function requireNoVifs(networkInfo: NetworkInfo, what: string): void {
  if (networkInfo.length > 0) {
    throw new Error(`${what}: vif plugging is not available on this host yet`);
  }
}

export function createNetworkActivities() {
  return {
    async plugVifs(input: { instanceUuid: string; networkInfo: NetworkInfo }): Promise<void> {
      requireNoVifs(input.networkInfo, 'plugVifs');
    },
    async unplugVifs(input: { instanceUuid: string; networkInfo: NetworkInfo }): Promise<void> {
      requireNoVifs(input.networkInfo, 'unplugVifs');
    },
    async applyFirewall(input: { instanceUuid: string; networkInfo: NetworkInfo }): Promise<void> {
      requireNoVifs(input.networkInfo, 'applyFirewall');
    },
    async removeFirewall(input: { instanceUuid: string; networkInfo: NetworkInfo }): Promise<void> {
      requireNoVifs(input.networkInfo, 'removeFirewall');
    },
  };
}
