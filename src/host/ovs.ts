import { z } from 'zod';
import { run } from './exec.js';

// Open vSwitch through ovs-vsctl, as os-vif's vif_plug_ovs does: every call is
// idempotent (--may-exist, --if-exists) and bounded (--timeout). Values are
// validated by the caller (domain/vif-plug.ts) before they get here.

const VSCTL = 'ovs-vsctl';
const TIMEOUT = '--timeout=10';

export interface OvsPortIds {
  portId: string;
  mac: string;
  instanceUuid: string;
}

/** os-vif's create_ovs_vif_port: the external_ids Neutron's agent keys on. */
export async function addPort(bridge: string, dev: string, ids: OvsPortIds): Promise<void> {
  await run(VSCTL, [
    TIMEOUT,
    '--',
    '--may-exist',
    'add-port',
    bridge,
    dev,
    '--',
    'set',
    'Interface',
    dev,
    `external_ids:iface-id=${ids.portId}`,
    'external_ids:iface-status=active',
    `external_ids:attached-mac=${ids.mac}`,
    `external_ids:vm-uuid=${ids.instanceUuid}`,
  ]);
}

export async function deletePort(dev: string): Promise<void> {
  await run(VSCTL, [TIMEOUT, '--', '--if-exists', 'del-port', dev]);
}

// ovs-vsctl --format=json: {"headings": [...], "data": [[name, ["map", [[k, v], ...]]], ...]}
const findAnswer = z.object({
  headings: z.tuple([z.literal('name'), z.literal('external_ids')]),
  data: z.array(z.tuple([z.string(), z.tuple([z.literal('map'), z.array(z.tuple([z.string(), z.string()]))])])),
});

export interface OvsInterface {
  name: string;
  externalIds: Record<string, string>;
}

/** The interfaces plugged for an instance, found by os-vif's vm-uuid. */
export async function interfacesOfInstance(instanceUuid: string): Promise<OvsInterface[]> {
  return findInterfaces(`external_ids:vm-uuid=${instanceUuid}`);
}

/** `condition` is ovs-vsctl find syntax, e.g. `name=qvo...`; callers pass validated values only. */
export async function findInterfaces(condition: string): Promise<OvsInterface[]> {
  const { stdout } = await run(VSCTL, [
    TIMEOUT,
    '--format=json',
    '--columns=name,external_ids',
    'find',
    'Interface',
    condition,
  ]);
  const answer = findAnswer.parse(JSON.parse(stdout));
  return answer.data.map(([name, [, pairs]]) => ({ name, externalIds: Object.fromEntries(pairs) }));
}

/** The OpenFlow port number of an interface, or null while OVS has none for it (-1 or []). */
export async function ofport(dev: string): Promise<number | null> {
  const { stdout } = await run(VSCTL, [TIMEOUT, 'get', 'Interface', dev, 'ofport']);
  const n = Number(stdout.trim());
  return Number.isInteger(n) && n > 0 ? n : null;
}
