import type { NetworkInfoSource } from '../activities/control-plane.js';
import { permanent } from '../activities/failures.js';
import { BadRequest, type PortBinder } from '../control-plane/api.js';
import type { InstanceSpec } from '../domain/instance.js';
import type { NetworkInfo } from '../domain/network-model.js';
import type { Logger } from '../log.js';
import type { NeutronClient } from './client.js';
import { NeutronError, NeutronNotFound, NeutronRequestFailed, NeutronUnavailable } from './errors.js';
import {
  buildNetworkInfo,
  memberAddresses,
  NetworkInfoError,
  remoteGroupIds,
  type NetworkInfoOptions,
} from './network-info.js';
import type { NeutronPort } from './schemas.js';

// The two places the control plane talks to Neutron: reading an instance's
// NetworkInfo (getNetworkInfo) and binding ports at registration (Nova's
// allocate_for_instance for pre-made ports).

export const COMPUTE_DEVICE_OWNER = 'compute:nova';

/**
 * NetworkInfoSource over Neutron. Failures that retrying cannot fix (a port gone,
 * an unsupported binding, an invalid answer) are non-retryable InvalidNetworkInfo;
 * NeutronUnavailable stays retryable so the activity's backoff rides out an outage.
 */
export class NeutronNetworkInfoSource implements NetworkInfoSource {
  constructor(
    private readonly client: NeutronClient,
    private readonly options: NetworkInfoOptions & { logger?: Logger },
  ) {}

  async getNetworkInfo(instance: InstanceSpec): Promise<NetworkInfo> {
    try {
      return await this.build(instance);
    } catch (err) {
      if (err instanceof NeutronUnavailable) throw err;
      if (err instanceof NetworkInfoError || err instanceof NeutronError) {
        throw permanent('InvalidNetworkInfo', `instance ${instance.uuid}: ${err.message}`, err);
      }
      throw err;
    }
  }

  private async build(instance: InstanceSpec): Promise<NetworkInfo> {
    // Only the instance's own ports: without a project to scope the query, a port
    // that merely claims this device_id must not become a NIC of the guest.
    if (instance.ports.length === 0) return [];
    const expected = instance.ports.map((p) => p.toLowerCase());
    const ports = await this.client.listPorts({ device_id: instance.uuid });
    const mine = ports.filter((p) => expected.includes(p.id));
    for (const id of expected) {
      if (!mine.some((p) => p.id === id)) throw await this.whyMissing(instance.uuid, id);
    }
    const extra = ports.filter((p) => !expected.includes(p.id)).map((p) => p.id);
    if (extra.length > 0) {
      this.options.logger?.warn(
        { instanceUuid: instance.uuid, ports: extra },
        'ignoring ports not registered with the instance',
      );
    }

    const networkIds = [...new Set(mine.map((p) => p.network_id))];
    const subnetIds = [...new Set(mine.flatMap((p) => p.fixed_ips.map((ip) => ip.subnet_id)))];
    const groupIds = [
      ...new Set(mine.filter((p) => p.port_security_enabled !== false).flatMap((p) => p.security_groups)),
    ];
    const [networks, subnets, securityGroups] = await Promise.all([
      Promise.all(networkIds.map((id) => this.client.showNetwork(id))),
      subnetIds.length ? this.client.listSubnets({ id: subnetIds }) : [],
      groupIds.length ? this.client.listSecurityGroups({ id: groupIds }) : [],
    ]);
    const remoteGroupAddresses = await this.remoteGroupAddresses(instance.uuid, remoteGroupIds(mine, securityGroups));
    return buildNetworkInfo(
      instance.ports,
      { ports: mine, networks, subnets, securityGroups, remoteGroupAddresses },
      { integrationBridge: this.options.integrationBridge },
    );
  }

  /** A clear reason for an expected port missing from the device_id listing. */
  private async whyMissing(instanceUuid: string, portId: string): Promise<Error> {
    try {
      const port = await this.client.showPort(portId);
      return new NetworkInfoError(
        portId,
        `port ${portId} is no longer bound to instance ${instanceUuid} in Neutron (device_id ${JSON.stringify(port.device_id)})`,
      );
    } catch (err) {
      if (err instanceof NeutronNotFound) {
        return new NetworkInfoError(portId, `port ${portId} of instance ${instanceUuid} no longer exists in Neutron`);
      }
      return err as Error;
    }
  }

  /** Members of groups named by remote_group_id rules (port-security-groups-filtering). */
  private async remoteGroupAddresses(instanceUuid: string, groupIds: string[]): Promise<Record<string, string[]>> {
    const out: Record<string, string[]> = {};
    for (const id of groupIds) {
      try {
        out[id] = memberAddresses(await this.client.listPorts({ security_groups: [id] }));
      } catch (err) {
        if (!(err instanceof NeutronRequestFailed)) throw err;
        // This Neutron cannot filter ports by group: leave those rules out (fail closed).
        this.options.logger?.warn(
          { instanceUuid, securityGroup: id, err: err.message },
          'cannot resolve remote security group; its rules are left out',
        );
      }
    }
    return out;
  }
}

/**
 * Nova's allocate_for_instance for existing ports: every port is checked before
 * any is changed; then each gets device_id, device_owner compute:nova and
 * binding:host_id. A failure half-way puts the already-updated ports back.
 */
export class NeutronPortBinder implements PortBinder {
  constructor(
    private readonly client: NeutronClient,
    private readonly options: { logger?: Logger } = {},
  ) {}

  async bindPorts(instanceUuid: string, host: string, ports: string[]): Promise<void> {
    const before: NeutronPort[] = [];
    for (const id of ports) before.push(await this.checkBindable(instanceUuid, id));

    const done: NeutronPort[] = [];
    let current = '';
    try {
      for (const port of before) {
        current = port.id;
        await this.client.updatePort(
          port.id,
          { device_id: instanceUuid, device_owner: COMPUTE_DEVICE_OWNER, 'binding:host_id': host },
          { ifRevision: port.revision_number },
        );
        done.push(port);
      }
    } catch (err) {
      await this.restore(instanceUuid, done);
      if (err instanceof NeutronRequestFailed && err.statusCode === 412) {
        throw new BadRequest(`Port ${current} was changed by someone else while binding; try again.`);
      }
      if (err instanceof NeutronNotFound) throw new BadRequest(`Port ${current} could not be found.`);
      if (err instanceof NeutronRequestFailed && err.statusCode !== 401 && err.statusCode !== 403) {
        throw new BadRequest(`Port ${current} could not be bound: ${err.message}`);
      }
      throw err;
    }
    this.options.logger?.info({ instanceUuid, host, ports }, 'ports bound to instance');
  }

  private async checkBindable(instanceUuid: string, id: string): Promise<NeutronPort> {
    let port: NeutronPort;
    try {
      port = await this.client.showPort(id);
    } catch (err) {
      if (err instanceof NeutronNotFound) throw new BadRequest(`Port ${id} could not be found.`);
      throw err;
    }
    if (port.device_id !== '' && port.device_id !== instanceUuid) {
      throw new BadRequest(`Port ${id} is still in use (bound to device ${port.device_id}).`);
    }
    return port;
  }

  /** Best effort: put back device_id, device_owner and binding:host_id of the ports already changed. */
  private async restore(instanceUuid: string, ports: NeutronPort[]): Promise<void> {
    for (const port of ports.reverse()) {
      try {
        await this.client.updatePort(port.id, {
          device_id: port.device_id,
          device_owner: port.device_owner,
          'binding:host_id': port['binding:host_id'] ?? '',
        });
      } catch (err) {
        this.options.logger?.error({ instanceUuid, port: port.id, err }, 'could not undo port binding');
      }
    }
  }
}
