import { access, readFile, writeFile } from 'node:fs/promises';
import { CommandFailed, run } from './exec.js';

// Linux network devices for the vif plugs, in os-vif's linux_net words. Each
// call checks first or tolerates "already so", so a retry changes nothing.
// Device names are validated by the caller (domain/vif-plug.ts).

export async function deviceExists(dev: string): Promise<boolean> {
  return access(`/sys/class/net/${dev}`).then(
    () => true,
    () => false,
  );
}

/** A second `ip tuntap add` fails, so look first (DESIGN section 8). */
export async function createTap(dev: string): Promise<void> {
  if (await deviceExists(dev)) return;
  await run('ip', ['tuntap', 'add', 'dev', dev, 'mode', 'tap', 'vnet_hdr']);
}

/** Removes any device (a veth takes its peer with it); a missing one is success. */
export async function deleteDevice(dev: string): Promise<void> {
  if (!(await deviceExists(dev))) return;
  try {
    await run('ip', ['link', 'del', 'dev', dev]);
  } catch (err) {
    if (await deviceExists(dev)) throw err;
  }
}

export async function setUp(dev: string, mtu?: number): Promise<void> {
  await run('ip', ['link', 'set', 'dev', dev, ...(mtu === undefined ? [] : ['mtu', String(mtu)]), 'up']);
}

/**
 * Stops the kernel's own IPv6 on a device that only switches frames, so it
 * sends no MLD/ND of its own into the guest's network.
 */
export async function disableIpv6(dev: string): Promise<void> {
  const file = `/proc/sys/net/ipv6/conf/${dev}/disable_ipv6`;
  if ((await readFile(file, 'utf8')).trim() !== '1') await writeFile(file, '1');
}

/** os-vif's ensure_bridge: no STP, no forward delay, no IGMP snooping. */
export async function ensureBridge(dev: string): Promise<void> {
  if (!(await deviceExists(dev))) {
    try {
      await run('ip', ['link', 'add', 'name', dev, 'type', 'bridge']);
    } catch (err) {
      if (!(await deviceExists(dev))) throw err; // a concurrent retry made it
    }
  }
  await run('ip', [
    'link',
    'set',
    'dev',
    dev,
    'type',
    'bridge',
    'forward_delay',
    '0',
    'stp_state',
    '0',
    'mcast_snooping',
    '0',
  ]);
  await disableIpv6(dev);
}

/** os-vif's _create_veth_pair; an existing pair is kept. */
export async function ensureVethPair(dev: string, peer: string): Promise<void> {
  if ((await deviceExists(dev)) && (await deviceExists(peer))) return;
  await deleteDevice(dev);
  await deleteDevice(peer);
  await run('ip', ['link', 'add', dev, 'type', 'veth', 'peer', 'name', peer]);
}

/** Without this conntrack sees TCP with partial checksums and drops it as invalid. */
export async function disableTxChecksum(dev: string): Promise<void> {
  await run('ethtool', ['-K', dev, 'tx', 'off']);
}

export async function masterOf(dev: string): Promise<string | null> {
  try {
    const { stdout } = await run('ip', ['-j', 'link', 'show', 'dev', dev]);
    const links: unknown = JSON.parse(stdout);
    const master = Array.isArray(links) ? (links[0] as { master?: unknown } | undefined)?.master : undefined;
    return typeof master === 'string' ? master : null;
  } catch (err) {
    if (err instanceof CommandFailed && !(await deviceExists(dev))) return null;
    throw err;
  }
}

export async function addToBridge(bridge: string, dev: string): Promise<void> {
  if ((await masterOf(dev)) === bridge) return;
  await run('ip', ['link', 'set', 'dev', dev, 'master', bridge]);
}

/** nft's inet hooks see bridged frames only with br_netfilter on (built in here). */
export async function ensureBridgeNetfilter(): Promise<void> {
  for (const family of ['iptables', 'ip6tables']) {
    const file = `/proc/sys/net/bridge/bridge-nf-call-${family}`;
    if ((await readFile(file, 'utf8')).trim() !== '1') await writeFile(file, '1');
  }
}
