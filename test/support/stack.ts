import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { SearchAttributeType } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, type Worker } from '@temporalio/worker';
import { createHostActivities } from '../../src/activities/index.js';
import { createComputeWorker } from '../../src/compute-worker.js';
import type { Config } from '../../src/config.js';
import { buildApi, type PortBinder } from '../../src/control-plane/api.js';
import { NoNeutron } from '../../src/control-plane/no-neutron.js';
import { createNotifier, notificationDefaults, type NotificationSettings } from '../../src/notifications/index.js';
import type { InstanceStore } from '../../src/store/instance-store.js';
import { createControlPlaneWorker } from '../../src/control-plane/worker.js';
import type { NetworkInfoSource } from '../../src/activities/control-plane.js';
import { ImageSource } from '../../src/host/image-source.js';
import type { Host } from '../../src/libvirt/host.js';
import { logger } from '../../src/log.js';
import { PowerOnMetrics } from '../../src/metrics.js';
import { SqliteInstanceStore } from '../../src/store/sqlite-store.js';
import { temporalCli } from './temporal-cli.js';

// A whole stack in one test process: the real Temporal dev server (the CLI's),
// both workers, the HTTP API on a real port, real libvirtd and qemu-img. Only
// names are unique per run, so parallel runs never touch each other's things.

// The SDK's INFO lines (worker state changes) drown the test report.
Runtime.install({ logger: new DefaultLogger((process.env.NT_TEST_SDK_LOG_LEVEL as 'WARN') ?? 'WARN') });

export interface TestStack {
  config: Config;
  env: TestWorkflowEnvironment;
  store: InstanceStore;
  host: Host;
  apiUrl: string;
  /** The dev server's Web UI (http://127.0.0.1:<port>) when started with `ui: true`, else null. */
  uiUrl: string | null;
  token: string;
  imageId: string;
  root: string;
  api(method: string, url: string, body?: unknown): Promise<{ status: number; body: any; headers: Headers }>;
  stop(): Promise<void>;
}

export interface StackOptions {
  /** Listen on this API port (0: any), so a Neutron started first can be told where to send events. */
  apiPort?: number;
  token?: string;
  config?: Partial<Config>;
  network?: NetworkInfoSource;
  ports?: PortBinder | null;
  /** The instance store to use (default: SQLite in the stack's temp dir). */
  openStore?: (config: Config) => Promise<InstanceStore>;
  /** Notification settings (default: the action log and the log). */
  notifications?: NotificationSettings;
  /** Start the dev server with its Web UI on a free port (returned as `uiUrl`). */
  ui?: boolean;
}

export async function startStack(opts: StackOptions = {}): Promise<TestStack> {
  const run = randomBytes(3).toString('hex');
  const root = mkdtempSync('/var/tmp/nt-test-');
  const token = opts.token ?? `test-token-${run}`;
  const uiPort = opts.ui ? await freePort() : undefined;
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: temporalCli() },
      ...(uiPort !== undefined ? { ui: true, uiPort } : {}),
      searchAttributes: [
        { name: 'InstanceUuid', type: SearchAttributeType.KEYWORD },
        { name: 'ComputeHost', type: SearchAttributeType.KEYWORD },
        { name: 'PowerOnStep', type: SearchAttributeType.KEYWORD },
      ],
      extraArgs: ['--log-level', 'error'],
    },
  });
  const config: Config = {
    host: `test-${run}`,
    instances_path: path.join(root, 'instances'),
    images_path: path.join(root, 'images'),
    vif_plugging_timeout: 300,
    vif_plugging_is_fatal: true,
    wait_for_vif_plugged: 'inactive',
    host_unavailable_timeout: 120,
    host_heartbeat_timeout: 10,
    firewall_driver: 'nftables',
    integration_bridge: 'br-int',
    libvirt: { uri: 'qemu:///system', virt_type: 'kvm' },
    neutron: { url: null, token: null },
    temporal: { address: env.address, namespace: env.namespace ?? 'default' },
    api: { listen: `127.0.0.1:${opts.apiPort ?? 0}`, tokens: [token] },
    database: { path: path.join(root, 'nova-temporal.sqlite') },
    ...opts.config,
  };

  const imageFile = path.join(root, 'base.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', imageFile, '64M']);
  const imageId = `test-image-${run}`;
  await new ImageSource(config.images_path).create(imageId, 'test image', imageFile);

  const store = opts.openStore ? await opts.openStore(config) : new SqliteInstanceStore(config.database.path);
  const metrics = new PowerOnMetrics();
  const quiet = logger.child({ test: run });
  quiet.level = process.env.NT_TEST_LOG_LEVEL ?? 'warn';
  const notifier = createNotifier(opts.notifications ?? notificationDefaults(), { store, logger: quiet });
  const cpWorker = await createControlPlaneWorker(config, env.nativeConnection, {
    store,
    notifier,
    network: opts.network ?? new NoNeutron(),
    metrics,
  });
  const compute = await createComputeWorker(config, env.nativeConnection);
  const workers: Worker[] = [cpWorker, compute.worker];
  const running = workers.map((w) => w.run());

  const app = buildApi({ config, store, temporal: env.client, ports: opts.ports ?? null, logger: quiet, metrics });
  const address = await app.listen({ host: '127.0.0.1', port: opts.apiPort ?? 0 });
  const apiUrl = `${address}/v2.1`;

  return {
    config,
    env,
    store,
    host: compute.host,
    apiUrl,
    uiUrl: uiPort !== undefined ? `http://127.0.0.1:${uiPort}` : null,
    token,
    imageId,
    root,
    async api(method, url, body) {
      const res = await fetch(`${apiUrl}${url}`, {
        method,
        headers: { 'x-auth-token': token, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
    },
    async stop() {
      await app.close();
      for (const w of workers) w.shutdown();
      await Promise.allSettled(running);
      // Whatever a test registered (through the API, the CLI or a fuzzer): no guest,
      // tap, OVS port or nft table outlives the stack. Disks go with the temp dir.
      const host = createHostActivities({
        host: compute.host,
        instancesPath: config.instances_path,
        virtType: config.libvirt.virt_type,
        images: new ImageSource(config.images_path),
        integrationBridge: config.integration_bridge,
        firewallDriver: config.firewall_driver,
      });
      for (const { uuid } of await store.listInstances()) {
        await host.cleanupInstance({ instanceUuid: uuid, portIds: [] });
      }
      await compute.host.close();
      await notifier.close?.();
      await store.close();
      await env.teardown();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Removes the libvirt domain of each instance (the tests' own cleanup; never disks of others). */
export async function destroyDomains(stack: TestStack, uuids: string[]): Promise<void> {
  for (const uuid of uuids) {
    const guest = await stack.host.getGuest(uuid);
    if (!guest) continue;
    await guest.poweroff();
    await guest.deleteConfiguration();
  }
}

/** A free TCP port on loopback (for servers that must know each other's address up front). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
