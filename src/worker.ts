import { Runtime } from '@temporalio/worker';
import { loadConfig } from './config.js';
import { createComputeWorker } from './compute-worker.js';
import { logger } from './log.js';
import { connectWorker } from './temporal.js';

// Entry point of the compute worker (one per compute host).
async function main(): Promise<void> {
  const config = loadConfig();
  const metricsListen = process.env.NT_SDK_METRICS_LISTEN ?? '127.0.0.1:9465';
  if (metricsListen !== 'off') {
    Runtime.install({ telemetryOptions: { metrics: { prometheus: { bindAddress: metricsListen } } } });
  }
  const connection = await connectWorker(config);
  const { worker, host } = await createComputeWorker(config, connection);
  logger.info({ host: config.host, taskQueue: `compute.${config.host}` }, 'compute worker started');
  try {
    await worker.run();
  } finally {
    await host.close();
    await connection.close();
  }
}

main().catch((err) => {
  logger.fatal({ err }, 'compute worker failed');
  process.exit(1);
});
