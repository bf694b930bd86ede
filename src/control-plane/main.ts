import { Runtime } from '@temporalio/worker';
import type { NetworkInfoSource } from '../activities/control-plane.js';
import { ConfigError, loadConfig, type Config } from '../config.js';
import { logger } from '../log.js';
import { PowerOnMetrics } from '../metrics.js';
import { createNotifier, notificationDefaults } from '../notifications/index.js';
import { NeutronClient } from '../neutron/client.js';
import { NeutronNetworkInfoSource, NeutronPortBinder } from '../neutron/source.js';
import { openInstanceStore } from '../store/open-store.js';
import { connectClient, connectWorker } from '../temporal.js';
import { buildApi, type PortBinder } from './api.js';
import { NoNeutron } from './no-neutron.js';
import { createControlPlaneWorker } from './worker.js';

function neutron(config: Config): { network: NetworkInfoSource; ports: PortBinder | null } {
  if (!config.neutron.url || !config.neutron.token) return { network: new NoNeutron(), ports: null };
  const client = new NeutronClient({ url: config.neutron.url, auth: { token: config.neutron.token }, logger });
  return {
    network: new NeutronNetworkInfoSource(client, { integrationBridge: config.integration_bridge, logger }),
    ports: new NeutronPortBinder(client, { logger }),
  };
}

// Entry point of the control plane: HTTP API + instance store + control-plane worker.
async function main(): Promise<void> {
  const config = loadConfig();
  if (config.api.tokens.length === 0) throw new ConfigError('config api.tokens: the control plane needs NT_API_TOKENS');
  // The SDK's own metrics (task latencies, slots, polls) on a loopback port; /metrics merges them in.
  const sdkMetrics = process.env.NT_SDK_METRICS_LISTEN ?? '127.0.0.1:9464';
  if (sdkMetrics !== 'off') {
    Runtime.install({ telemetryOptions: { metrics: { prometheus: { bindAddress: sdkMetrics } } } });
  }
  const metrics = new PowerOnMetrics();
  const store = await openInstanceStore(config);
  const { network, ports } = neutron(config);
  const client = await connectClient(config);
  const connection = await connectWorker(config);
  const notifier = createNotifier(config.notifications ?? notificationDefaults(), { store, logger });
  const worker = await createControlPlaneWorker(config, connection, {
    store,
    notifier,
    network,
    metrics,
  });
  const api = buildApi({
    config,
    store,
    temporal: client,
    ports,
    logger,
    metrics,
    sdkMetricsUrl: sdkMetrics === 'off' ? undefined : `http://${sdkMetrics}/metrics`,
  });
  const [host, port] = config.api.listen.split(':') as [string, string];
  await api.listen({ host, port: Number(port) });
  const stop = async () => {
    worker.shutdown();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  await worker.run();
  await api.close();
  await notifier.close?.();
  await store.close();
  await connection.close();
}

main().catch((err) => {
  logger.fatal({ err }, 'control plane failed');
  process.exit(1);
});
