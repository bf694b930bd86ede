import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Client, Connection, type TLSConfig } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { ConfigError, type Config } from './config.js';

/** The compiled workflow module the workers bundle. */
export const workflowsPath = fileURLToPath(new URL('./workflows/index.js', import.meta.url));

/** config.temporal.tls as the SDK's TLS options (both connection kinds take the same shape); undefined: plaintext. */
export function temporalTls(config: Config): TLSConfig | undefined {
  const t = config.temporal.tls;
  if (!t) return undefined;
  const pem = (field: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ConfigError(`config temporal.tls.${field}: cannot read ${file}: ${(err as Error).message}`);
    }
  };
  return {
    ...(t.server_name ? { serverNameOverride: t.server_name } : {}),
    ...(t.ca ? { serverRootCACertificate: pem('ca', t.ca) } : {}),
    ...(t.cert && t.key ? { clientCertPair: { crt: pem('cert', t.cert), key: pem('key', t.key) } } : {}),
  };
}

export async function connectClient(config: Config): Promise<Client> {
  const connection = await Connection.connect({ address: config.temporal.address, tls: temporalTls(config) });
  return new Client({ connection, namespace: config.temporal.namespace });
}

export async function connectWorker(config: Config): Promise<NativeConnection> {
  return NativeConnection.connect({ address: config.temporal.address, tls: temporalTls(config) });
}
