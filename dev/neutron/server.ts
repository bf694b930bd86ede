import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { logger as defaultLogger, type Logger } from '../../src/log.js';
import { L2Agent } from './agent.js';
import { NovaNotifier } from './notifier.js';
import {
  ApiError,
  behaviourBody,
  DevNeutronState,
  networkCreate,
  portCreate,
  portUpdate,
  ruleCreate,
  securityGroupCreate,
  subnetCreate,
  type Snapshot,
} from './state.js';

// A Neutron-compatible dev server: Neutron's v2.0 JSON for networks, subnets,
// ports, security groups and rules (the calls Nova and our tooling make), plus
// the L2 agent and the nova notifier. Test controls live under /dev (not Neutron).

export interface NeutronDevServerOptions {
  /** default 127.0.0.1; port 0 picks a free port */
  host?: string;
  port?: number;
  /** The X-Auth-Token it accepts. */
  token: string;
  /** The control plane's /v2.1 base for os-server-external-events; null: events are only recorded. */
  apiUrl?: string | null;
  /** The token it presents to the control plane. */
  apiToken?: string | null;
  integrationBridge?: string;
  /** JSON file keeping networks, subnets, ports and groups across restarts. */
  statePath?: string | null;
  /** OVS poll interval (ms), default 100. */
  pollIntervalMs?: number;
  /** false: do not watch OVS (no plug/unplug detection). */
  watchOvs?: boolean;
  logger?: Logger;
}

export interface NeutronDevServer {
  /** Endpoint root, e.g. http://127.0.0.1:9696 (no /v2.0), as NT_NEUTRON_URL. */
  url: string;
  close(): Promise<void>;
}

const neutronError = (type: string, message: string) => ({ NeutronError: { type, message, detail: '' } });

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

function parse<S extends z.ZodType>(schema: S, value: unknown, resource: string): z.output<S> {
  if (value === null || typeof value !== 'object' || !(resource in value)) {
    throw new ApiError(400, 'HTTPBadRequest', `Resource body required with key '${resource}'.`);
  }
  const r = schema.safeParse((value as Record<string, unknown>)[resource]);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    throw new ApiError(400, 'HTTPBadRequest', `Unrecognized attribute(s) '${issue.keys.join(', ')}'`);
  }
  const field = issue.path.map(String).join('.') || resource;
  throw new ApiError(400, 'HTTPBadRequest', `Invalid input for ${field}. Reason: ${issue.message}.`);
}

const PAGING_KEYS = new Set(['fields', 'limit', 'marker', 'sort_key', 'sort_dir', 'page_reverse']);

/** Neutron's list filters: equality on attributes, repeated keys OR-ed, list attributes by membership. */
function filterList<T extends Record<string, unknown>>(items: T[], query: Record<string, unknown>): Partial<T>[] {
  const filters = Object.entries(query).filter(([k]) => !PAGING_KEYS.has(k));
  const known = new Set(items.length > 0 ? Object.keys(items[0]!) : []);
  for (const [k] of filters) {
    if (items.length > 0 && !known.has(k))
      throw new ApiError(400, 'HTTPBadRequest', `${k} is invalid attribute for filtering`);
  }
  const wanted = filters.map(([k, v]) => [k, (Array.isArray(v) ? v : [v]).map(String)] as const);
  const matches = (item: T) =>
    wanted.every(([k, values]) => {
      const have = item[k];
      if (Array.isArray(have)) return values.some((v) => have.map(String).includes(v));
      return values.includes(have === null ? '' : String(have));
    });
  const fields =
    query.fields === undefined ? null : (Array.isArray(query.fields) ? query.fields : [query.fields]).map(String);
  return items
    .filter(matches)
    .map((item) =>
      fields ? (Object.fromEntries(fields.filter((f) => f in item).map((f) => [f, item[f]])) as Partial<T>) : item,
    );
}

async function loadState(path: string | null | undefined): Promise<DevNeutronState> {
  if (!path || !existsSync(path)) return new DevNeutronState();
  let snap: Snapshot;
  try {
    snap = JSON.parse(readFileSync(path, 'utf8')) as Snapshot;
  } catch (err) {
    throw new Error(`NT_NEUTRON_STATE ${path}: ${(err as Error).message}`);
  }
  if (snap?.version !== 1) throw new Error(`NT_NEUTRON_STATE ${path}: not a state file of this server (version)`);
  return new DevNeutronState(snap);
}

/** Writes the state after changes: coalesced, temp file + rename, one write at a time. */
function persistence(state: DevNeutronState, path: string, logger: Logger) {
  let dirty = false;
  let writing: Promise<void> | null = null;
  const write = async (): Promise<void> => {
    while (dirty) {
      dirty = false;
      const tmp = `${path}.tmp`;
      try {
        await writeFile(tmp, JSON.stringify(state.snapshot()), { mode: 0o600 });
        await rename(tmp, path);
      } catch (err) {
        logger.error({ err, path }, 'cannot write dev neutron state');
      }
    }
  };
  state.on('changed', () => {
    dirty = true;
    writing ??= write().finally(() => (writing = null));
  });
  return {
    flush: async () => {
      while (writing) await writing;
    },
  };
}

export async function startNeutronDevServer(opts: NeutronDevServerOptions): Promise<NeutronDevServer> {
  const logger = opts.logger ?? defaultLogger.child({ component: 'neutron-dev' });
  const bridge = opts.integrationBridge ?? 'br-int';
  if (!/^[A-Za-z0-9_-]{1,15}$/.test(bridge))
    throw new Error(`integration bridge ${JSON.stringify(bridge)}: not a device name`);
  if (!opts.token) throw new Error('a token is required');
  const state = await loadState(opts.statePath);
  const saved = opts.statePath ? persistence(state, opts.statePath, logger) : null;
  const notifier = new NovaNotifier({ apiUrl: opts.apiUrl ?? null, apiToken: opts.apiToken ?? null, logger });
  const agent = new L2Agent(state, notifier, {
    bridge,
    intervalMs: opts.pollIntervalMs,
    watchOvs: opts.watchOvs,
    logger,
  });
  const accepted = digest(opts.token);

  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: 1024 * 1024,
    genReqId: () => `req-${randomUUID()}`,
    requestIdHeader: false,
  });

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    reply.header('x-openstack-request-id', req.id);
    if (req.url === '/' || req.url.startsWith('/?')) return;
    const presented = req.headers['x-auth-token'];
    if (typeof presented !== 'string' || !timingSafeEqual(digest(presented), accepted)) {
      // keystonemiddleware's answer
      return reply.code(401).send({
        error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' },
      });
    }
  });

  app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    if (err instanceof ApiError) return reply.code(err.statusCode).send(neutronError(err.type, err.message));
    if (err.statusCode && err.statusCode < 500) {
      return reply.code(err.statusCode).send(neutronError('HTTPBadRequest', err.message));
    }
    req.log.error({ err }, 'request failed');
    return reply.code(500).send(neutronError('HTTPInternalServerError', 'Request Failed: internal server error.'));
  });

  app.setNotFoundHandler((_req, reply) =>
    reply.code(404).send(neutronError('HTTPNotFound', 'The resource could not be found.')),
  );

  type Id = { Params: { id: string } };
  type Q = { Querystring: Record<string, unknown> };

  // Version discovery, unauthenticated as in Neutron.
  app.get('/', async (req) => ({
    versions: [
      {
        id: 'v2.0',
        status: 'CURRENT',
        links: [{ rel: 'self', href: `${req.protocol}://${req.headers.host ?? ''}/v2.0/` }],
      },
    ],
  }));

  app.get('/v2.0/extensions', async () => ({
    extensions: [
      'binding',
      'security-group',
      'port-security',
      'allowed-address-pairs',
      'net-mtu',
      'revision-if-match',
      'standard-attr-revisions',
      'port-security-groups-filtering',
    ].map((alias) => ({ alias, name: alias, description: '', updated: '2024-01-01T00:00:00-00:00', links: [] })),
  }));

  // ---- networks ----
  app.get<Q>('/v2.0/networks', async (req) => ({ networks: filterList(state.listNetworks(), req.query) }));
  app.get<Id>('/v2.0/networks/:id', async (req) => ({ network: state.networkView(state.network(req.params.id)) }));
  app.post('/v2.0/networks', async (req, reply) =>
    reply.code(201).send({ network: state.createNetwork(parse(networkCreate, req.body, 'network')) }),
  );
  app.delete<Id>('/v2.0/networks/:id', async (req, reply) => {
    state.deleteNetwork(req.params.id);
    return reply.code(204).send();
  });

  // ---- subnets ----
  app.get<Q>('/v2.0/subnets', async (req) => ({ subnets: filterList(state.listSubnets(), req.query) }));
  app.get<Id>('/v2.0/subnets/:id', async (req) => ({ subnet: state.subnetView(state.subnet(req.params.id)) }));
  app.post('/v2.0/subnets', async (req, reply) =>
    reply.code(201).send({ subnet: state.createSubnet(parse(subnetCreate, req.body, 'subnet')) }),
  );
  app.delete<Id>('/v2.0/subnets/:id', async (req, reply) => {
    state.deleteSubnet(req.params.id);
    return reply.code(204).send();
  });

  // ---- ports ----
  app.get<Q>('/v2.0/ports', async (req) => ({ ports: filterList(state.listPorts(), req.query) }));
  app.get<Id>('/v2.0/ports/:id', async (req) => ({ port: state.portView(state.port(req.params.id)) }));
  app.post('/v2.0/ports', async (req, reply) =>
    reply.code(201).send({ port: state.createPort(parse(portCreate, req.body, 'port')) }),
  );
  app.put<Id>('/v2.0/ports/:id', async (req) => {
    const body = parse(portUpdate, req.body, 'port');
    const ifMatch = req.headers['if-match'];
    let revision: number | null = null;
    if (typeof ifMatch === 'string') {
      const m = /^revision_number=(\d{1,15})$/.exec(ifMatch.trim());
      if (!m) throw new ApiError(400, 'HTTPBadRequest', 'If-Match header must be revision_number=<number>');
      revision = Number(m[1]);
    }
    return { port: state.updatePort(req.params.id, body, revision) };
  });
  app.delete<Id>('/v2.0/ports/:id', async (req, reply) => {
    state.deletePort(req.params.id);
    return reply.code(204).send();
  });

  // ---- security groups and rules ----
  app.get<Q>('/v2.0/security-groups', async (req) => ({
    security_groups: filterList(state.listSecurityGroups(), req.query),
  }));
  app.get<Id>('/v2.0/security-groups/:id', async (req) => ({
    security_group: state.groupView(state.group(req.params.id)),
  }));
  app.post('/v2.0/security-groups', async (req, reply) =>
    reply.code(201).send({
      security_group: state.createSecurityGroup(parse(securityGroupCreate, req.body, 'security_group')),
    }),
  );
  app.delete<Id>('/v2.0/security-groups/:id', async (req, reply) => {
    state.deleteSecurityGroup(req.params.id);
    return reply.code(204).send();
  });
  app.get<Q>('/v2.0/security-group-rules', async (req) => ({
    security_group_rules: filterList(state.listRules(), req.query),
  }));
  app.get<Id>('/v2.0/security-group-rules/:id', async (req) => ({
    security_group_rule: state.ruleView(state.rule(req.params.id)),
  }));
  app.post('/v2.0/security-group-rules', async (req, reply) =>
    reply.code(201).send({ security_group_rule: state.createRule(parse(ruleCreate, req.body, 'security_group_rule')) }),
  );
  app.delete<Id>('/v2.0/security-group-rules/:id', async (req, reply) => {
    state.deleteRule(req.params.id);
    return reply.code(204).send();
  });

  // ---- dev-only test controls (not part of Neutron's API) ----
  app.get<Id>('/dev/ports/:id/behaviour', async (req) => ({ behaviour: state.port(req.params.id).behaviour }));
  app.put<Id>('/dev/ports/:id/behaviour', async (req) => {
    const r = behaviourBody.safeParse(req.body);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      throw new ApiError(
        400,
        'HTTPBadRequest',
        `Invalid input for ${issue.path.join('.') || 'body'}: ${issue.message}`,
      );
    }
    const behaviour = { mode: r.data.mode, delayMs: r.data.delayMs ?? state.port(req.params.id).behaviour.delayMs };
    state.setBehaviour(req.params.id, behaviour);
    return { behaviour };
  });
  app.get('/dev/events', async () => ({ events: notifier.history() }));
  app.delete('/dev/events', async (_req, reply) => {
    notifier.clear();
    return reply.code(204).send();
  });

  await app.listen({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 9696 });
  agent.start();
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : (opts.port ?? 9696);
  const host = opts.host ?? '127.0.0.1';
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  logger.info({ url, bridge, apiUrl: opts.apiUrl ?? null, statePath: opts.statePath ?? null }, 'dev neutron listening');

  let closing: Promise<void> | null = null;
  return {
    url,
    close: () =>
      (closing ??= (async () => {
        await agent.stop();
        await app.close();
        await notifier.drain();
        await saved?.flush();
      })()),
  };
}
