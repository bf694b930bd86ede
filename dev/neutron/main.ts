import { logger } from '../../src/log.js';
import { startNeutronDevServer } from './server.js';

// Entry of the dev Neutron (dist/dev/neutron/main.js), configured by environment:
//   NT_NEUTRON_LISTEN      host:port, default 127.0.0.1:9696
//   NT_NEUTRON_TOKEN       the X-Auth-Token it accepts (required)
//   NT_API_URL             the control plane's /v2.1 base for os-server-external-events
//   NT_API_TOKEN           the token it sends there
//   NT_INTEGRATION_BRIDGE  the OVS bridge its L2 agent watches, default br-int
//   NT_NEUTRON_STATE       JSON file keeping its resources across restarts (optional)
//   NT_NEUTRON_POLL_MS     OVS poll interval, default 100

function fail(message: string): never {
  logger.fatal(message);
  process.exit(2);
}

async function main(): Promise<void> {
  const env = process.env;
  const listen = env.NT_NEUTRON_LISTEN || '127.0.0.1:9696';
  const m = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):(\d{1,5})$/.exec(listen);
  if (!m || Number(m[2]) > 65535) fail(`NT_NEUTRON_LISTEN: expected host:port, got ${JSON.stringify(listen)}`);
  const token = env.NT_NEUTRON_TOKEN;
  if (!token) fail('NT_NEUTRON_TOKEN is required (the X-Auth-Token this server accepts)');
  const apiUrl = env.NT_API_URL || null;
  if (apiUrl !== null && !/^https?:\/\/\S+$/.test(apiUrl))
    fail(`NT_API_URL: expected an http(s) URL, got ${JSON.stringify(apiUrl)}`);
  if (apiUrl === null) logger.warn('NT_API_URL is not set: port events are recorded but not sent');
  const bridge = env.NT_INTEGRATION_BRIDGE || 'br-int';
  if (!/^[A-Za-z0-9_-]{1,15}$/.test(bridge))
    fail(`NT_INTEGRATION_BRIDGE: not a device name: ${JSON.stringify(bridge)}`);
  const poll = env.NT_NEUTRON_POLL_MS || '100';
  if (!/^\d{1,6}$/.test(poll) || Number(poll) < 10) fail('NT_NEUTRON_POLL_MS: expected a whole number >= 10');

  const server = await startNeutronDevServer({
    host: m[1]!.replace(/^\[|\]$/g, ''),
    port: Number(m[2]),
    token,
    apiUrl,
    apiToken: env.NT_API_TOKEN || null,
    integrationBridge: bridge,
    statePath: env.NT_NEUTRON_STATE || null,
    pollIntervalMs: Number(poll),
    logger: logger.child({ component: 'neutron-dev' }),
  });
  const stop = () => {
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'dev neutron did not close cleanly');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  logger.fatal({ err }, 'dev neutron failed');
  process.exit(1);
});
