import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { startNeutronDevServer, type NeutronDevServer } from '../../dev/neutron/server.js';
import { ImageSource } from '../../src/host/image-source.js';
import { logger } from '../../src/log.js';
import { execFileSync } from 'node:child_process';
import { freePort } from './stack.js';
import { repoRoot, temporalCli } from './temporal-cli.js';

// The stack as separate processes, as `make up` runs it, so tests can SIGKILL any
// part by PID and start it again with the same configuration: the Temporal dev
// server (SQLite file), the control plane, the compute worker; the Neutron dev
// server runs in the test process and can be stopped and started on its port.

export type Part = 'temporal' | 'api' | 'compute';

export interface ProcessStack {
  env: Record<string, string>;
  apiUrl: string;
  token: string;
  imageId: string;
  root: string;
  client(): Promise<Client>;
  start(part: Part, extraEnv?: Record<string, string>): Promise<ChildProcess>;
  kill(part: Part, signal?: NodeJS.Signals): Promise<void>;
  /** Resolves when the part's process has exited (e.g. after a failpoint). */
  exited(part: Part): Promise<number | null>;
  stopNeutron(): Promise<void>;
  startNeutron(): Promise<void>;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs = 30000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export async function startProcessStack(overrides: Record<string, string> = {}): Promise<ProcessStack> {
  const run = randomBytes(3).toString('hex');
  const root = mkdtempSync('/var/tmp/nt-crash-');
  mkdirSync(path.join(root, 'log'));
  const token = `crash-token-${run}`;
  const [temporalPort, apiPort, neutronPort] = [await freePort(), await freePort(), await freePort()];
  const env: Record<string, string> = {
    NT_HOST: `crash-${run}`,
    NT_TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`,
    NT_API_LISTEN: `127.0.0.1:${apiPort}`,
    NT_API_TOKENS: token,
    NT_NEUTRON_URL: `http://127.0.0.1:${neutronPort}`,
    NT_NEUTRON_TOKEN: token,
    NT_INSTANCES_PATH: path.join(root, 'instances'),
    NT_IMAGES_PATH: path.join(root, 'images'),
    NT_DATABASE_PATH: path.join(root, 'nova-temporal.sqlite'),
    NT_STATE_DIR: root,
    NT_SDK_METRICS_LISTEN: 'off',
    NT_HOST_HEARTBEAT_TIMEOUT: '2',
    NT_VIF_PLUGGING_TIMEOUT: '60',
    NT_LOG_LEVEL: 'warn',
    ...overrides,
  };
  const imageFile = path.join(root, 'base.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', imageFile, '64M']);
  const imageId = `crash-image-${run}`;
  await new ImageSource(env.NT_IMAGES_PATH!).create(imageId, 'crash test image', imageFile);

  const children = new Map<Part, ChildProcess>();
  const exits = new Map<Part, Promise<number | null>>();
  let neutron: NeutronDevServer | null = null;
  let connection: Connection | null = null;

  const commands: Record<Part, () => [string, string[]]> = {
    temporal: () => [
      temporalCli(),
      [
        'server',
        'start-dev',
        '--db-filename',
        path.join(root, 'temporal.db'),
        '--port',
        String(temporalPort),
        '--headless',
        '--log-level',
        'error',
        '--search-attribute',
        'InstanceUuid=Keyword',
        '--search-attribute',
        'ComputeHost=Keyword',
        '--search-attribute',
        'PowerOnStep=Keyword',
      ],
    ],
    api: () => ['node', [path.join(repoRoot, 'dist/src/control-plane/main.js')]],
    compute: () => ['node', [path.join(repoRoot, 'dist/src/worker.js')]],
  };

  const stack: ProcessStack = {
    env,
    apiUrl: `http://127.0.0.1:${apiPort}/v2.1`,
    token,
    imageId,
    root,
    async client() {
      connection ??= await Connection.connect({ address: env.NT_TEMPORAL_ADDRESS! });
      return new Client({ connection });
    },
    async start(part, extraEnv = {}) {
      const [cmd, args] = commands[part]();
      const log = openSync(path.join(root, 'log', `${part}.log`), 'a');
      const child = spawn(cmd, args, {
        env: { ...process.env, ...env, ...extraEnv, NT_SERVICE: part },
        stdio: ['ignore', log, log],
      });
      children.set(part, child);
      exits.set(part, new Promise((resolve) => child.once('exit', (code) => resolve(code))));
      if (part === 'temporal') {
        await waitFor('the Temporal dev server', async () => {
          const c = await Connection.connect({ address: env.NT_TEMPORAL_ADDRESS!, connectTimeout: 500 });
          await c.close();
          return true;
        });
      }
      if (part === 'api') {
        await waitFor('the control plane', async () => {
          const r = await fetch(`${stack.apiUrl}/openapi.json`, { headers: { 'x-auth-token': token } });
          return r.status === 200;
        });
      }
      return child;
    },
    async kill(part, signal = 'SIGKILL') {
      const child = children.get(part);
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      await exits.get(part);
    },
    exited(part) {
      return exits.get(part) ?? Promise.resolve(null);
    },
    async stopNeutron() {
      await neutron?.close();
      neutron = null;
    },
    async startNeutron() {
      neutron = await startNeutronDevServer({
        port: neutronPort,
        token,
        apiUrl: stack.apiUrl,
        apiToken: token,
        pollIntervalMs: 50,
        statePath: path.join(root, 'neutron.json'),
        logger: logger.child({ component: 'neutron-dev' }, { level: 'warn' }),
      });
    },
    async stop() {
      await connection?.close().catch(() => undefined);
      for (const part of ['compute', 'api', 'temporal'] as Part[]) await stack.kill(part, 'SIGTERM');
      await stack.stopNeutron();
      rmSync(root, { recursive: true, force: true });
    },
  };
  return stack;
}
