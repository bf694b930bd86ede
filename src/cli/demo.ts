import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NeutronClient } from '../neutron/client.js';
import { powerOnWorkflowId } from '../workflows/definitions.js';
import { ComputeApi } from './api-client.js';
import { stackSettings } from './stack-env.js';
import { watchPowerOn } from './watch.js';

// `make demo`: registers a small stopped instance and powers it on through the
// HTTP API, printing each step as it finishes and the Web UI link.

async function main(): Promise<number> {
  const s = stackSettings();
  for (const k of ['NT_API_URL', 'NT_API_TOKEN', 'NT_TEMPORAL_ADDRESS', 'NT_DEMO_IMAGE_ID']) {
    if (!s[k]) throw new Error(`${k} missing from state/stack.env: run 'make up' first`);
  }
  const api = new ComputeApi(s.NT_API_URL!, s.NT_API_TOKEN!);
  const id = randomUUID();
  const name = `demo-${id.slice(0, 8)}`;
  const ports = await demoPorts(s);
  await api.register({
    id,
    name,
    imageRef: s.NT_DEMO_IMAGE_ID,
    flavor: { vcpus: 1, ram: 64, disk: 1 },
    networks: ports.map((port) => ({ port })),
  });
  console.log(`registered ${name} (${id}), stopped, ${ports.length} port(s): ${ports.join(', ')}`);
  await api.start(id);
  console.log(`os-start accepted; workflow ${powerOnWorkflowId(id)}`);

  const connection = await Connection.connect({ address: s.NT_TEMPORAL_ADDRESS! });
  const client = new Client({ connection, namespace: s.NT_TEMPORAL_NAMESPACE ?? 'default' });
  try {
    const progress = await watchPowerOn(client, id, (line) => console.log(line));
    const { server } = await api.show(id);
    const runId = (await client.workflow.getHandle(powerOnWorkflowId(id)).describe()).runId;
    console.log(
      `\n${server.name}: status ${server.status}, vm_state ${server['OS-EXT-STS:vm_state']}, ` +
        `power_state ${server['OS-EXT-STS:power_state']} (1 = running)` +
        (server.fault ? `\nfault: ${server.fault.message}` : ''),
    );
    if (s.NT_UI_URL) {
      console.log(
        `Temporal Web UI: ${s.NT_UI_URL}/namespaces/${s.NT_TEMPORAL_NAMESPACE ?? 'default'}/workflows/` +
          `${encodeURIComponent(powerOnWorkflowId(id))}/${runId}/history`,
      );
    }
    console.log(`virsh -c qemu:///system domstate ${id}`);
    return progress.outcome === 'succeeded' ? 0 : 1;
  } finally {
    await connection.close();
  }
}

/** Two ports on the demo network, made the way an operator makes them on Neutron. */
async function demoPorts(s: Record<string, string>): Promise<string[]> {
  if (!s.NT_NEUTRON_URL || !s.NT_NEUTRON_TOKEN) return [];
  const neutron = new NeutronClient({ url: s.NT_NEUTRON_URL, auth: { token: s.NT_NEUTRON_TOKEN } });
  let [network] = await neutron.listNetworks({ name: 'demo-net' });
  if (!network) {
    network = await neutron.createNetwork({ name: 'demo-net' });
    await neutron.createSubnet({ network_id: network.id, cidr: '10.99.0.0/24', ip_version: 4, name: 'demo-subnet' });
  }
  const ports = [];
  for (let i = 0; i < 2; i++) ports.push((await neutron.createPort({ network_id: network.id })).id);
  return ports;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`demo: ${(err as Error).message ?? err}`);
    process.exit(1);
  },
);
