import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NovaNotifier } from '../../dev/neutron/notifier.js';
import { startNeutronDevServer, type NeutronDevServer } from '../../dev/neutron/server.js';
import { createControlPlaneActivities, createHostActivities } from '../../src/activities/index.js';
import { loadConfig, type Config } from '../../src/config.js';
import { domainName } from '../../src/domain/domain-xml.js';
import { LogNotifier } from '../../src/control-plane/notifier.js';
import { ImageSource } from '../../src/host/image-source.js';
import { Host } from '../../src/libvirt/host.js';
import { logger } from '../../src/log.js';
import { PowerOnMetrics } from '../../src/metrics.js';
import { NeutronClient } from '../../src/neutron/client.js';
import { NeutronNetworkInfoSource, NeutronPortBinder } from '../../src/neutron/source.js';
import { SqliteInstanceStore } from '../../src/store/sqlite-store.js';
import type { InstanceEvent } from '../../src/workflows/definitions.js';
import { LifecycleWatch, PostTap } from './observe.js';
import { ChildProc } from './procs.js';
import { freePort, log, mapLimit, sleep, until, wall } from './util.js';

// The real stack, owned by the bench and named uniquely per run: the Temporal
// dev server, the control plane and the compute worker as separate processes
// (as `make up` runs them), two Neutron dev servers in this process (one
// notifying the control plane, one notifying the bare baseline's receiver), and
// libvirtd / OVS / nftables of this host. Everything it creates is tracked and
// removed by stop(), also after a failure.

export const repoRoot = path.resolve(import.meta.dirname, '../../..');
const dist = path.join(repoRoot, 'dist');

export const quiet = logger.child({ component: 'bench' });
quiet.level = process.env.NT_BENCH_LOG_LEVEL ?? 'warn';

export type Side = 'workflow' | 'bare';

interface Tracked {
  side: Side;
  ports: string[];
}

export interface NeutronSide {
  server: NeutronDevServer;
  client: NeutronClient;
  networkId: string;
}

/** network-vif-* events for the bare baseline: recorded per instance from subscribe() on, as the workflow's signal handler does. */
export class BareEvents {
  private readonly subs = new Map<string, { events: InstanceEvent[]; wake: () => void }>();

  deliver(uuid: string, event: InstanceEvent): void {
    const sub = this.subs.get(uuid);
    if (!sub) return; // no power-on in progress: accepted and dropped, as Nova does
    sub.events.push(event);
    sub.wake();
  }

  subscribe(uuid: string) {
    let wake: () => void = () => {};
    const sub = { events: [] as InstanceEvent[], wake: () => wake() };
    this.subs.set(uuid, sub);
    const plugged = (status: string) =>
      new Set(sub.events.filter((e) => e.name === 'network-vif-plugged' && e.status === status).map((e) => e.tag));
    return {
      /** Resolves when every port reported completed; rejects on a failed one or after timeoutMs. */
      waitAll: (ports: string[], timeoutMs: number): Promise<void> =>
        new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('VirtualInterfacePlugTimeout')), timeoutMs);
          const check = () => {
            const failed = plugged('failed');
            if (ports.some((p) => failed.has(p))) {
              clearTimeout(timer);
              reject(new Error('VirtualInterfaceCreateException'));
            } else if (ports.every((p) => plugged('completed').has(p))) {
              clearTimeout(timer);
              resolve();
            }
          };
          wake = check;
          check();
        }),
      close: () => this.subs.delete(uuid),
    };
  }
}

export interface ServerView {
  id: string;
  status: string;
  updated: string;
  'OS-EXT-STS:task_state': string | null;
  fault?: { message: string; created: string };
}

export interface StartOptions {
  hostHeartbeatTimeout: number;
  /** nice value for the guests' QEMU threads, or null to leave them alone */
  guestNice: number | null;
}

export class BenchStack {
  readonly run = randomBytes(3).toString('hex');
  readonly root = mkdtempSync('/var/tmp/nt-bench-');
  readonly hostName = `bench-${this.run}`;
  readonly token = `bench-token-${randomBytes(8).toString('hex')}`;
  readonly imageId = `bench-image-${this.run}`;
  readonly bareEvents = new BareEvents();
  readonly tap = new PostTap();
  readonly procs: ChildProc[] = [];
  private readonly tracked = new Map<string, Tracked>();

  temporal!: ChildProc;
  temporalAddress = '';
  temporalMetricsUrl = '';
  client!: Client;
  private clientConnection: Connection | null = null;
  apiPort = 0;
  apiUrl = '';
  api!: ChildProc;
  compute!: ChildProc;
  env: NodeJS.ProcessEnv = {};
  config!: Config;
  neutron!: Record<Side, NeutronSide>;
  /** The dev server's nova notifier, driven by the bench for the event-to-resume runs. */
  notifiers!: Record<Side, NovaNotifier>;
  private bareReceiver: http.Server | null = null;
  watch!: LifecycleWatch;
  libvirt!: Host;
  host!: ReturnType<typeof createHostActivities>;
  bareStore!: SqliteInstanceStore;
  bareControlPlane!: ReturnType<typeof createControlPlaneActivities>;
  bareNetwork!: NeutronNetworkInfoSource;
  private bareBinder!: NeutronPortBinder;

  private logPath(name: string): string {
    return path.join(this.root, `${name}.log`);
  }

  async start(opts: StartOptions): Promise<void> {
    const t0 = wall();
    execFileSync('bash', [path.join(repoRoot, 'scripts/host-setup.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });
    await this.startTemporal();
    this.apiPort = await freePort();
    this.apiUrl = `http://127.0.0.1:${this.apiPort}/v2.1`;

    // The two Neutron dev servers (default 100 ms agent poll, as `make up`), "answering at once".
    const receiverPort = await this.startBareReceiver();
    const receiverUrl = `http://127.0.0.1:${receiverPort}/v2.1`;
    this.neutron = {
      workflow: await this.startNeutron(this.apiUrl),
      bare: await this.startNeutron(receiverUrl),
    };
    const notifier = (apiUrl: string) => new NovaNotifier({ apiUrl, apiToken: this.token, logger: quiet });
    this.notifiers = { workflow: notifier(this.apiUrl), bare: notifier(receiverUrl) };

    const imageFile = path.join(this.root, 'base.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', imageFile, '64M']);
    const base: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('NT_')) base[k] = v;
    this.env = {
      ...base,
      NT_HOST: this.hostName,
      NT_TEMPORAL_ADDRESS: this.temporalAddress,
      NT_TEMPORAL_NAMESPACE: 'default',
      NT_STATE_DIR: this.root,
      NT_INSTANCES_PATH: path.join(this.root, 'instances'),
      NT_IMAGES_PATH: path.join(this.root, 'images'),
      NT_DATABASE_PATH: path.join(this.root, 'nova-temporal.sqlite'),
      NT_API_LISTEN: `127.0.0.1:${this.apiPort}`,
      NT_API_TOKENS: this.token,
      NT_NEUTRON_URL: this.neutron.workflow.server.url,
      NT_NEUTRON_TOKEN: this.token,
      NT_HOST_HEARTBEAT_TIMEOUT: String(opts.hostHeartbeatTimeout),
    };
    this.config = loadConfig(this.env);
    await new ImageSource(this.config.images_path).create(this.imageId, 'bench image', imageFile);

    this.libvirt = new Host(this.config.libvirt.uri);
    this.watch = await LifecycleWatch.open(this.config.libvirt.uri);
    this.watch.guestNice = opts.guestNice;
    this.host = createHostActivities({
      host: this.libvirt,
      instancesPath: this.config.instances_path,
      virtType: this.config.libvirt.virt_type,
      images: new ImageSource(this.config.images_path),
      integrationBridge: this.config.integration_bridge,
      firewallDriver: this.config.firewall_driver,
    });
    this.bareStore = new SqliteInstanceStore(path.join(this.root, 'bare.sqlite'));
    this.bareNetwork = new NeutronNetworkInfoSource(this.neutron.bare.client, {
      integrationBridge: this.config.integration_bridge,
    });
    this.bareBinder = new NeutronPortBinder(this.neutron.bare.client);
    this.bareControlPlane = createControlPlaneActivities({
      store: this.bareStore,
      notifier: new LogNotifier(quiet),
      network: this.bareNetwork,
      metrics: new PowerOnMetrics(),
    });

    await this.startControlPlane();
    await this.startCompute();
    log(`stack up in ${Math.round(wall() - t0)} ms (root ${this.root}, host ${this.hostName})`);
  }

  private async startTemporal(): Promise<void> {
    const cli = execFileSync('bash', [path.join(repoRoot, 'scripts/temporal-cli.sh')], { encoding: 'utf8' }).trim();
    const port = await freePort();
    const uiPort = await freePort();
    const metricsPort = await freePort();
    this.temporalAddress = `127.0.0.1:${port}`;
    this.temporalMetricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    // As scripts/temporal-server.sh starts it (SQLite file, UI, log level warn), on our own ports.
    this.temporal = ChildProc.start(
      'temporal',
      cli,
      [
        'server',
        'start-dev',
        '--db-filename',
        path.join(this.root, 'temporal.db'),
        '--ip',
        '127.0.0.1',
        '--port',
        String(port),
        '--ui-port',
        String(uiPort),
        '--metrics-port',
        String(metricsPort),
        '--log-level',
        'warn',
        ...['InstanceUuid', 'ComputeHost', 'PowerOnStep'].flatMap((n) => ['--search-attribute', `${n}=Keyword`]),
      ],
      process.env,
      this.logPath('temporal'),
    );
    this.procs.push(this.temporal);
    this.clientConnection = await until(
      'the Temporal dev server',
      async () => {
        if (!this.temporal.alive) throw new Error('the Temporal dev server exited; see its log');
        try {
          const c = await Connection.connect({ address: this.temporalAddress, connectTimeout: 1000 });
          await c.workflowService.describeNamespace({ namespace: 'default' });
          return c;
        } catch {
          return undefined;
        }
      },
      60_000,
      100,
    );
    this.client = new Client({ connection: this.clientConnection, namespace: 'default' });
  }

  private async startBareReceiver(): Promise<number> {
    const server = http.createServer((req, res) => {
      if (req.method !== 'POST' || !req.url?.endsWith('/os-server-external-events')) {
        res.writeHead(404).end();
        return;
      }
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        let events: { server_uuid: string; name: string; status?: string; tag?: string }[];
        try {
          events = (JSON.parse(body) as { events: typeof events }).events;
        } catch {
          res.writeHead(400).end();
          return;
        }
        const replies = events.map((e) => {
          this.bareEvents.deliver(e.server_uuid, {
            name: e.name as InstanceEvent['name'],
            tag: e.tag ?? null,
            status: (e.status ?? 'completed') as InstanceEvent['status'],
          });
          return { ...e, code: 200, status: 'completed' };
        });
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ events: replies }));
      });
    });
    this.bareReceiver = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    return typeof address === 'object' && address ? address.port : 0;
  }

  private async startNeutron(apiUrl: string): Promise<NeutronSide> {
    const server = await startNeutronDevServer({
      port: 0,
      token: this.token,
      apiUrl,
      apiToken: this.token,
      pollIntervalMs: 100,
      logger: quiet,
    });
    const client = new NeutronClient({ url: server.url, auth: { token: this.token } });
    const net = await client.createNetwork({ name: `nt-bench-${this.run}` });
    await client.createSubnet({ network_id: net.id, cidr: '10.78.0.0/24', ip_version: 4 });
    return { server, client, networkId: net.id };
  }

  async startControlPlane(extra: NodeJS.ProcessEnv = {}): Promise<void> {
    const metrics = await freePort();
    this.api = ChildProc.start(
      'api',
      process.execPath,
      [path.join(dist, 'src/control-plane/main.js')],
      // Requests are not logged (warn): the bench polls GET /servers/{id} every 10 ms.
      { ...this.env, NT_SERVICE: 'api', NT_LOG_LEVEL: 'warn', NT_SDK_METRICS_LISTEN: `127.0.0.1:${metrics}`, ...extra },
      this.logPath('api'),
    );
    this.procs.push(this.api);
    await until(
      'the control plane API',
      async () => {
        if (!this.api.alive) throw new Error(`the control plane exited; see ${this.logPath('api')}`);
        try {
          const r = await this.call('GET', '/servers/00000000-0000-0000-0000-000000000000');
          return r.status === 404 ? true : undefined;
        } catch {
          return undefined;
        }
      },
      60_000,
      50,
    );
  }

  async stopControlPlane(): Promise<void> {
    await this.api.stop();
  }

  /**
   * Starts the compute worker (node dist/src/worker.js); resolves with wall() of the spawn and
   * of its "started" log line. A worker that exits before that is reported and started again.
   */
  async startCompute(extra: NodeJS.ProcessEnv = {}): Promise<{ spawnedAt: number; readyAt: number }> {
    for (let attempt = 1; ; attempt++) {
      const metrics = await freePort();
      const spawnedAt = wall();
      this.compute = ChildProc.start(
        'compute',
        process.execPath,
        [path.join(dist, 'src/worker.js')],
        {
          ...this.env,
          NT_SERVICE: 'compute',
          NT_LOG_LEVEL: 'info',
          NT_SDK_METRICS_LISTEN: `127.0.0.1:${metrics}`,
          ...extra,
        },
        this.logPath('compute'),
      );
      this.procs.push(this.compute);
      try {
        const readyAt = await this.compute.waitForLine('"msg":"compute worker started"', 60_000);
        return { spawnedAt, readyAt };
      } catch (err) {
        await this.compute.stop();
        const tail = readFileSync(this.logPath('compute'), 'utf8').trimEnd().split('\n').slice(-12).join('\n');
        log(`compute worker start failed (attempt ${attempt}): ${(err as Error).message}\n${tail}`);
        if (attempt >= 3) throw err;
      }
    }
  }

  async call(method: string, url: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const res = await fetch(`${this.apiUrl}${url}`, {
      method,
      headers: { 'x-auth-token': this.token, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as unknown) : null };
  }

  /** The processes whose CPU a power-on uses (libvirtd's QEMU children excepted). */
  pids(): Record<string, number> {
    let libvirtd = NaN;
    try {
      libvirtd = Number(readFileSync('/run/libvirtd.pid', 'utf8').trim());
    } catch {
      // not ours to know
    }
    return {
      controlPlane: this.api.pid,
      computeWorker: this.compute.pid,
      temporal: this.temporal.pid,
      bench: process.pid,
      libvirtd,
    };
  }

  async getServer(id: string): Promise<ServerView> {
    const res = await this.call('GET', `/servers/${id}`);
    if (res.status !== 200) throw new Error(`GET /servers/${id}: HTTP ${res.status}`);
    return (res.body as { server: ServerView }).server;
  }

  private async createPorts(side: Side, count: number, behaviour?: { mode: string; delayMs?: number }) {
    const n = this.neutron[side];
    const ports: string[] = [];
    for (let i = 0; i < count; i++) {
      const port = await n.client.createPort({ network_id: n.networkId });
      ports.push(port.id);
      if (behaviour) {
        const res = await fetch(`${n.server.url}/dev/ports/${port.id}/behaviour`, {
          method: 'PUT',
          headers: { 'x-auth-token': this.token, 'content-type': 'application/json' },
          body: JSON.stringify(behaviour),
        });
        if (res.status !== 200) throw new Error(`setting port behaviour: HTTP ${res.status}`);
      }
    }
    return ports;
  }

  /**
   * A stopped instance with `ports` new Neutron ports, registered (not timed):
   * through the API for the workflow, straight into the bare baseline's store
   * (with the same port binding) for the bare steps.
   */
  async register(
    side: Side,
    portCount: number,
    behaviour?: { mode: string; delayMs?: number },
  ): Promise<{ id: string; ports: string[] }> {
    if (this.interrupted) throw new Error('interrupted');
    const id = randomUUID();
    this.tracked.set(id, { side, ports: [] });
    const ports = await this.createPorts(side, portCount, behaviour);
    this.tracked.set(id, { side, ports });
    this.watch.watch(id);
    if (side === 'workflow') {
      const res = await this.call('POST', '/servers', {
        server: {
          id,
          name: `bench-${id.slice(0, 8)}`,
          flavor: { vcpus: 1, ram: 64, disk: 1 },
          imageRef: this.imageId,
          networks: ports.map((port) => ({ port })),
        },
      });
      if (res.status !== 201) throw new Error(`register: HTTP ${res.status} ${JSON.stringify(res.body)}`);
    } else {
      if (ports.length > 0) await this.bareBinder.bindPorts(id, this.hostName, ports);
      await this.bareStore.createInstance({
        uuid: id,
        name: `bench-${id.slice(0, 8)}`,
        host: this.hostName,
        flavor: { vcpus: 1, ramMb: 64, diskGb: 1 },
        imageRef: this.imageId,
        ports,
      });
    }
    return { id, ports };
  }

  /** Set on SIGINT/SIGTERM: no new instance is made; the current step ends and everything is cleaned up. */
  interrupted = false;

  /** Removes an instance's guest, vifs and rules (as `make down`), then its Neutron ports; its disk goes with the root. */
  async cleanup(id: string): Promise<void> {
    const t = this.tracked.get(id);
    this.watch.restorePriority(domainName(id));
    // Again on error: a guest that vanished between lookup and destroy is what we wanted, and
    // a daemon restarted by someone else on this shared host (OVS, libvirtd) comes back.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.host.cleanupInstance({ instanceUuid: id, portIds: [] });
        break;
      } catch (err) {
        if (attempt >= 4) throw err;
        await sleep(250 * attempt);
      }
    }
    if (t) {
      for (const port of t.ports) {
        await this.neutron[t.side].client.deletePort(port).catch(() => undefined);
      }
    }
    this.tracked.delete(id);
    this.watch.forget(id);
  }

  async cleanupAll(): Promise<void> {
    await mapLimit([...this.tracked.keys()], 6, (id) => this.cleanup(id));
  }

  /** Lets the Neutron agents report the unplug/delete of the last cleanup before the next measurement. */
  async settle(ms = 150): Promise<void> {
    await sleep(ms);
  }

  /** ERROR lines of the Temporal dev server's log so far, counted by message and error. */
  temporalLogErrors(): Record<string, number> {
    const out: Record<string, number> = {};
    const file = this.logPath('temporal');
    if (!existsSync(file)) return out;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line.includes('level=ERROR')) continue;
      const msg = /msg="([^"]*)"/.exec(line)?.[1] ?? '?';
      const err = /error="([^"]*)"/.exec(line)?.[1];
      const key = err ? `${msg} (${err})` : msg;
      out[key] = (out[key] ?? 0) + 1;
    }
    return out;
  }

  /** The end of each child's log, for a failed run (the logs go with the temp root). */
  showLogs(lines = 30): void {
    for (const name of ['temporal', 'api', 'compute']) {
      const file = this.logPath(name);
      if (!existsSync(file)) continue;
      const text = readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
      process.stderr.write(`--- ${name}.log (last ${lines} lines) ---\n${text}\n`);
    }
  }

  private stopping: Promise<void> | null = null;

  /** Idempotent: a signal and the failure path may both ask. */
  stop(): Promise<void> {
    return (this.stopping ??= this.doStop());
  }

  private async doStop(): Promise<void> {
    const errors: unknown[] = [];
    const attempt = async (what: string, fn: () => Promise<unknown> | unknown) => {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
        log(`cleanup: ${what} failed: ${(err as Error).message}`);
      }
    };
    if (this.host) await attempt('instances', () => this.cleanupAll());
    for (const p of [...this.procs].reverse()) await attempt(`stopping ${p.name} (pid ${p.pid})`, () => p.stop());
    for (const side of ['workflow', 'bare'] as const) {
      const n = this.neutron?.[side];
      if (n) await attempt(`neutron ${side}`, () => n.server.close());
    }
    if (this.bareReceiver) {
      const r = this.bareReceiver;
      await attempt('bare receiver', () => new Promise<void>((resolve) => r.close(() => resolve())));
    }
    this.tap.close();
    await attempt('libvirt watch', () => this.watch?.close());
    await attempt('libvirt host', () => this.libvirt?.close());
    await attempt('bare store', () => this.bareStore?.close());
    await attempt('temporal client', () => this.clientConnection?.close());
    if (errors.length > 0) this.showLogs();
    // NT_BENCH_KEEP_LOGS=<dir>: the children's logs are copied there before the root goes.
    const keep = process.env.NT_BENCH_KEEP_LOGS;
    if (keep) {
      mkdirSync(keep, { recursive: true });
      for (const name of ['temporal', 'api', 'compute']) {
        if (existsSync(this.logPath(name))) copyFileSync(this.logPath(name), path.join(keep, `${name}.log`));
      }
    }
    if (existsSync(this.root)) rmSync(this.root, { recursive: true, force: true });
    if (errors.length > 0) throw new Error(`cleanup had ${errors.length} error(s)`);
  }
}
