import { ApplicationFailure } from '@temporalio/common';
import type { NetworkInfoSource } from '../activities/control-plane.js';
import type { InstanceSpec } from '../domain/instance.js';
import type { NetworkInfo } from '../domain/network-model.js';

/** Without a Neutron endpoint an instance has no network: only port-less instances power on. */
export class NoNeutron implements NetworkInfoSource {
  async getNetworkInfo(instance: InstanceSpec): Promise<NetworkInfo> {
    if (instance.ports.length === 0) return [];
    throw ApplicationFailure.nonRetryable(
      `instance ${instance.uuid} has ports but no Neutron endpoint is configured`,
      'InvalidNetworkInfo',
    );
  }
}
