import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { Config } from './config.js';

/** The compiled workflow module the workers bundle. */
export const workflowsPath = fileURLToPath(new URL('./workflows/index.js', import.meta.url));

export async function connectClient(config: Config): Promise<Client> {
  const connection = await Connection.connect({ address: config.temporal.address });
  return new Client({ connection, namespace: config.temporal.namespace });
}

export async function connectWorker(config: Config): Promise<NativeConnection> {
  return NativeConnection.connect({ address: config.temporal.address });
}
