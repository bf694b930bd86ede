import { hybridDeviceNames, tapName, type NetworkInfo } from '../domain/network-model.js';
import { buildRuleset, removalRuleset } from '../domain/nft-ruleset.js';
import { checkUuid, InvalidVifValue, planVif, type FirewallDriver, type VifPlan } from '../domain/vif-plug.js';
import * as net from '../host/linux-net.js';
import * as nft from '../host/nft.js';
import * as openflow from '../host/openflow.js';
import * as ovs from '../host/ovs.js';
import { permanent } from './failures.js';

// Host activities for vifs and the firewall (os-vif's plug/unplug, then the
// per-instance nftables ruleset or OpenFlow port security). Each one
// converges: it creates only what is missing and removes only what is there,
// so a retry after a crash half-way ends where a single run would.

const DEVICE = /^[A-Za-z0-9_.-]{1,15}$/;

type PortDevices = { tap: string; qbr: string; qvb: string; qvo: string };

export interface NetworkDeps {
  integrationBridge: string;
  firewallDriver: FirewallDriver;
}

export interface NetworkInput {
  instanceUuid: string;
  networkInfo: NetworkInfo;
}

/** Bad values from Neutron are permanent: no retry makes them good. */
function validated<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof InvalidVifValue) throw permanent('InvalidNetworkInfo', err.message, err);
    throw err;
  }
}

async function plugOvs(plan: VifPlan, ids: ovs.OvsPortIds): Promise<void> {
  const mtu = plan.vif.network.mtu;
  await net.createTap(plan.tap);
  await net.disableIpv6(plan.tap);
  await net.setUp(plan.tap, mtu);
  await ovs.addPort(plan.bridge, plan.tap, ids);
}

/** os-vif's _plug_bridge_with_port: tap -> qbr -> qvb=qvo -> OVS. */
async function plugHybrid(plan: VifPlan, ids: ovs.OvsPortIds): Promise<void> {
  const { qbr, qvb, qvo } = plan.hybrid!;
  const mtu = plan.vif.network.mtu;
  await net.ensureBridge(qbr);
  await net.setUp(qbr);
  await net.ensureVethPair(qvb, qvo);
  for (const veth of [qvb, qvo]) {
    await net.disableIpv6(veth);
    await net.disableTxChecksum(veth);
    await net.setUp(veth, mtu);
  }
  await net.addToBridge(qbr, qvb);
  await net.createTap(plan.tap);
  await net.disableIpv6(plan.tap);
  await net.setUp(plan.tap, mtu);
  await net.addToBridge(qbr, plan.tap);
  await ovs.addPort(plan.bridge, qvo, ids);
}

/** os-vif's linux_bridge plug: the network's bridge is shared and never removed here. */
async function plugBridge(plan: VifPlan): Promise<void> {
  if (!(await net.deviceExists(plan.bridge))) await net.ensureBridge(plan.bridge);
  await net.setUp(plan.bridge);
  await net.createTap(plan.tap);
  await net.disableIpv6(plan.tap);
  await net.setUp(plan.tap, plan.vif.network.mtu);
  await net.addToBridge(plan.bridge, plan.tap);
}

/** Everything one port id can have on this host, whichever plug made it. */
async function unplugPort(devices: PortDevices): Promise<void> {
  const { tap, qbr, qvb, qvo } = devices;
  await ovs.deletePort(qvo);
  await ovs.deletePort(tap);
  await net.deleteDevice(tap);
  await net.deleteDevice(qvb); // takes qvo with it
  await net.deleteDevice(qvo);
  await net.deleteDevice(qbr);
}

/** The device names of an OVS port we made (tapXXX or qvoXXX), from its name. */
function devicesOfOvsPort(name: string): PortDevices | null {
  if (!/^(tap|qvo)./.test(name) || !DEVICE.test(name)) return null;
  const suffix = name.slice(3);
  return { tap: 'tap' + suffix, qbr: 'qbr' + suffix, qvb: 'qvb' + suffix, qvo: 'qvo' + suffix };
}

/** OVS assigns the ofport a moment after add-port. */
async function ofportOf(dev: string): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const n = await ovs.ofport(dev);
    if (n !== null) return n;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${dev} has no OpenFlow port: is it plugged?`);
}

/** Defaults are config.ts's; only plugVifs, applyFirewall and removeFirewall use them. */
export function createNetworkActivities(options: Partial<NetworkDeps> = {}) {
  const deps: NetworkDeps = {
    integrationBridge: options.integrationBridge ?? 'br-int',
    firewallDriver: options.firewallDriver ?? 'nftables',
  };
  const plans = (input: NetworkInput): VifPlan[] =>
    validated(() => {
      checkUuid('instanceUuid', input.instanceUuid);
      return input.networkInfo.map((vif) => planVif(vif, deps));
    });

  /** The OVS bridges an instance's flows may be in: the integration bridge and its ovs vifs' bridges. */
  const ovsBridges = (all: VifPlan[]): string[] => [
    ...new Set([deps.integrationBridge, ...all.filter((p) => p.kind !== 'bridge').map((p) => p.bridge)]),
  ];

  return {
    /** plug_vifs: per vif the tap and its way into the bridge, before the guest opens the tap. */
    async plugVifs(input: NetworkInput): Promise<void> {
      const instanceUuid = input.instanceUuid;
      for (const plan of plans(input)) {
        const ids = { portId: plan.vif.id, mac: plan.vif.address.toLowerCase(), instanceUuid };
        if (plan.kind === 'ovs') await plugOvs(plan, ids);
        else if (plan.kind === 'ovs-hybrid') await plugHybrid(plan, ids);
        else await plugBridge(plan);
      }
    },

    /**
     * unplug_vifs: the vifs of the NetworkInfo, and any OVS port still tagged
     * with this instance's vm-uuid (a port Neutron no longer lists). Whatever
     * is gone already is success. Shared Linux bridges are left alone.
     */
    async unplugVifs(input: { instanceUuid: string; networkInfo?: NetworkInfo }): Promise<void> {
      const instanceUuid = validated(() => checkUuid('instanceUuid', input.instanceUuid));
      const ports = new Map<string, PortDevices>();
      for (const vif of input.networkInfo ?? []) {
        const id = validated(() => checkUuid('vif id', vif.id));
        ports.set(tapName(id), { tap: tapName(id), ...hybridDeviceNames(id) });
      }
      for (const iface of await ovs.interfacesOfInstance(instanceUuid)) {
        const devices = devicesOfOvsPort(iface.name);
        if (devices) ports.set(devices.tap, devices);
      }
      for (const devices of ports.values()) await unplugPort(devices);
    },

    /**
     * One nft transaction replaces the instance's tables (none filtered: they
     * go); with firewall_driver openvswitch one OpenFlow bundle per bridge
     * replaces its flows the same way.
     */
    async applyFirewall(input: NetworkInput): Promise<void> {
      const all = plans(input);
      const filtered = all.filter((p) => p.firewall === 'nftables');
      if (filtered.length === 0) {
        await nft.applyRuleset(removalRuleset(input.instanceUuid));
      } else {
        const ruleset = validated(() => buildRuleset(input.instanceUuid, filtered));
        await net.ensureBridgeNetfilter();
        await nft.applyRuleset(ruleset);
      }
      if (deps.firewallDriver !== 'openvswitch') return;
      for (const bridge of ovsBridges(all)) {
        const ports: openflow.OpenFlowPort[] = [];
        for (const plan of all.filter((p) => p.firewall === 'openvswitch' && p.bridge === bridge)) {
          ports.push({ plan, ofport: await ofportOf(plan.hybrid?.qvo ?? plan.tap) });
        }
        await openflow.applyFlows(
          bridge,
          validated(() => openflow.buildFlows(input.instanceUuid, ports)),
        );
      }
    },

    /** Works from the instance uuid alone: the table names and flow cookie derive from it. */
    async removeFirewall(input: { instanceUuid: string; networkInfo?: NetworkInfo }): Promise<void> {
      await nft.applyRuleset(validated(() => removalRuleset(input.instanceUuid)));
      if (deps.firewallDriver !== 'openvswitch') return;
      // Lenient on purpose: a NetworkInfo that no longer validates must not keep flows alive.
      const named = (input.networkInfo ?? []).filter((v) => v.type === 'ovs' && DEVICE.test(v.network.bridge));
      for (const bridge of new Set([deps.integrationBridge, ...named.map((v) => v.network.bridge)])) {
        await openflow.deleteFlows(bridge, input.instanceUuid);
      }
    },
  };
}
