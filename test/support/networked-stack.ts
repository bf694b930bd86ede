import { randomUUID } from 'node:crypto';
import { startNeutronDevServer, type NeutronDevServer } from '../../dev/neutron/server.js';
import { logger } from '../../src/log.js';
import { NeutronClient } from '../../src/neutron/client.js';
import { NeutronNetworkInfoSource, NeutronPortBinder } from '../../src/neutron/source.js';
import { freePort, startStack, type StackOptions, type TestStack } from './stack.js';

// The in-process stack wired to a Neutron dev server (the L2 agent watching
// br-int, the nova notifier posting to our API) and one network with a subnet.

export interface NetworkedStack {
  stack: TestStack;
  neutron: NeutronDevServer;
  client: NeutronClient;
  networkId: string;
  /** Sets the dev server's behaviour for a port (normal|failed|silent|late|early). */
  behaviour(portId: string, mode: string, delayMs?: number): Promise<void>;
  /** Registers an instance with `count` new ports through the API. */
  register(
    count: number,
    opts?: { mode?: string; delayMs?: number; name?: string },
  ): Promise<{ id: string; ports: Awaited<ReturnType<NeutronClient['createPort']>>[] }>;
  stop(): Promise<void>;
}

export async function startNetworkedStack(opts: StackOptions = {}, cidr = '10.77.0.0/24'): Promise<NetworkedStack> {
  const apiPort = await freePort();
  const token = `test-token-${randomUUID().slice(0, 8)}`;
  const neutron = await startNeutronDevServer({
    port: 0,
    token,
    apiUrl: `http://127.0.0.1:${apiPort}/v2.1`,
    apiToken: token,
    pollIntervalMs: 50,
    logger: logger.child({ component: 'neutron-dev' }, { level: 'warn' }),
  });
  const client = new NeutronClient({ url: neutron.url, auth: { token } });
  const stack = await startStack({
    ...opts,
    apiPort,
    token,
    network: new NeutronNetworkInfoSource(client, { integrationBridge: 'br-int' }),
    ports: new NeutronPortBinder(client),
    config: { vif_plugging_timeout: 20, neutron: { url: neutron.url, token }, ...opts.config },
  });
  const net = await client.createNetwork({ name: `nt-test-${randomUUID().slice(0, 6)}` });
  await client.createSubnet({ network_id: net.id, cidr, ip_version: 4 });

  const ns: NetworkedStack = {
    stack,
    neutron,
    client,
    networkId: net.id,
    async behaviour(portId, mode, delayMs) {
      const res = await fetch(`${neutron.url}/dev/ports/${portId}/behaviour`, {
        method: 'PUT',
        headers: { 'x-auth-token': token, 'content-type': 'application/json' },
        body: JSON.stringify({ mode, ...(delayMs !== undefined ? { delayMs } : {}) }),
      });
      if (res.status !== 200) throw new Error(`behaviour ${mode} for ${portId}: HTTP ${res.status}`);
    },
    async register(count, o = {}) {
      const ports = [];
      for (let i = 0; i < count; i++) {
        const port = await client.createPort({ network_id: net.id });
        if (o.mode) await ns.behaviour(port.id, o.mode, o.delayMs);
        ports.push(port);
      }
      const id = randomUUID();
      const res = await stack.api('POST', '/servers', {
        server: {
          id,
          name: o.name ?? 'net-test',
          flavor: { vcpus: 1, ram: 64, disk: 1 },
          imageRef: stack.imageId,
          networks: ports.map((p) => ({ port: p.id })),
        },
      });
      if (res.status !== 201) throw new Error(`register: HTTP ${res.status} ${JSON.stringify(res.body)}`);
      return { id, ports };
    },
    async stop() {
      await stack.stop();
      await neutron.close();
    },
  };
  return ns;
}
