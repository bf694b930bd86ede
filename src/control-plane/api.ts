import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import Fastify, { type FastifyReply } from 'fastify';
import type { Config } from '../config.js';
import { canTransition } from '../domain/instance-state.js';
import type { Logger } from '../log.js';
import type { PowerOnMetrics } from '../metrics.js';
import { InstanceExists, type InstanceStore } from '../store/instance-store.js';
import { tokenChecker } from './auth.js';
import { startPowerOn } from './power-on.js';
import { deliverExternalEvents } from './external-events.js';
import { openApiDocument } from './openapi.js';
import { describeZodError, externalEventsBody, registerServerBody, serverActionBody, uuid } from './schemas.js';
import { actionView, novaError, serverView } from './views.js';

export interface PortBinder {
  /** Binds each port to the instance (device_id, device_owner, binding:host_id); all or nothing. */
  bindPorts(instanceUuid: string, host: string, ports: string[]): Promise<void>;
}

export interface ApiDeps {
  metrics?: PowerOnMetrics;
  /** The Temporal SDK's own Prometheus endpoint, appended to /metrics. */
  sdkMetricsUrl?: string;
  config: Config;
  store: InstanceStore;
  temporal: Client;
  ports: PortBinder | null;
  logger: Logger;
}

export class BadRequest extends Error {}

const notFound = (reply: FastifyReply, id: string) =>
  reply.code(404).send(novaError('itemNotFound', 404, `Instance ${id} could not be found.`));

export function buildApi({ config, store, temporal, ports, logger, metrics, sdkMetricsUrl }: ApiDeps) {
  const authorized = tokenChecker(config.api.tokens);
  const app = Fastify({
    // Request lines are logged without their query string: a token sent there must not reach a log.
    loggerInstance: logger.child(
      {},
      {
        serializers: {
          req: (r: { method: string; url: string; ip?: string }) => ({
            method: r.method,
            url: r.url.split('?')[0],
            remoteAddress: r.ip,
          }),
        },
      },
    ),
    bodyLimit: 256 * 1024,
    genReqId: () => `req-${randomUUID()}`,
    requestIdHeader: false,
    // Routing errors (bad URL encoding, over-long ids) answer like every route: token first.
    frameworkErrors: (err, req, rawReply) => {
      const reply = rawReply as unknown as FastifyReply;
      reply.header('x-openstack-request-id', req.id);
      if (!authorized(req.headers['x-auth-token'] as string | undefined)) {
        return reply
          .code(401)
          .send(novaError('unauthorized', 401, 'The request you have made requires authentication.'));
      }
      const code = (err as { statusCode?: number }).statusCode ?? 400;
      return reply.code(code).send(novaError('badRequest', code, 'Malformed request URL'));
    },
  });

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-openstack-request-id', req.id);
    // Prometheus sends a bearer token; everything else uses X-Auth-Token as Nova does.
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const token = (req.headers['x-auth-token'] as string | undefined) ?? (req.url === '/metrics' ? bearer : undefined);
    if (!authorized(token)) {
      return reply.code(401).send(novaError('unauthorized', 401, 'The request you have made requires authentication.'));
    }
  });

  app.setNotFoundHandler((req, reply) =>
    reply
      .code(404)
      .send(novaError('itemNotFound', 404, `The resource could not be found: ${req.method} ${req.url.split('?')[0]}`)),
  );

  app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    if (err.statusCode && err.statusCode < 500) {
      return reply.code(err.statusCode).send(novaError('badRequest', err.statusCode, err.message));
    }
    req.log.error({ err }, 'request failed');
    return reply.code(500).send({ computeFault: { code: 500, message: 'Unexpected API Error.' } });
  });

  app.get('/metrics', async (_req, reply) => {
    let text = metrics ? await metrics.text() : '';
    if (sdkMetricsUrl) {
      const sdk = await fetch(sdkMetricsUrl).then(
        (r) => r.text(),
        () => '',
      );
      text += sdk;
    }
    return reply.type('text/plain; version=0.0.4').send(text);
  });

  const openapi = openApiDocument();
  app.get('/v2.1/openapi.json', async () => openapi);

  app.post('/v2.1/servers', async (req, reply) => {
    const parsed = registerServerBody.safeParse(req.body);
    if (!parsed.success) return reply.code(400).send(novaError('badRequest', 400, describeZodError(parsed.error)));
    const s = parsed.data.server;
    const instanceUuid = s.id ?? randomUUID();
    const host = s['OS-EXT-SRV-ATTR:host'] ?? config.host;
    const portIds = s.networks.map((n) => n.port);
    if (new Set(portIds).size !== portIds.length) {
      return reply
        .code(400)
        .send(novaError('badRequest', 400, 'Invalid input for field/attribute networks: duplicate port'));
    }
    if (await store.getInstance(instanceUuid)) {
      return reply.code(409).send(novaError('conflictingRequest', 409, `Instance ${instanceUuid} already exists.`));
    }
    if (portIds.length > 0) {
      if (!ports) {
        return reply
          .code(400)
          .send(novaError('badRequest', 400, 'Invalid input for field/attribute networks: no Neutron is configured'));
      }
      try {
        await ports.bindPorts(instanceUuid, host, portIds);
      } catch (err) {
        if (err instanceof BadRequest) return reply.code(400).send(novaError('badRequest', 400, err.message));
        throw err;
      }
    }
    try {
      const record = await store.createInstance({
        uuid: instanceUuid,
        name: s.name,
        host,
        flavor: { vcpus: s.flavor.vcpus, ramMb: s.flavor.ram, diskGb: s.flavor.disk },
        imageRef: s.imageRef,
        ports: portIds,
      });
      return reply.code(201).send({ server: serverView(record) });
    } catch (err) {
      if (err instanceof InstanceExists) {
        return reply.code(409).send(novaError('conflictingRequest', 409, err.message));
      }
      throw err;
    }
  });

  app.get<{ Params: { id: string } }>('/v2.1/servers/:id', async (req, reply) => {
    const record = uuid.safeParse(req.params.id).success ? await store.getInstance(req.params.id) : null;
    if (!record) return notFound(reply, req.params.id);
    return { server: serverView(record) };
  });

  app.post<{ Params: { id: string } }>('/v2.1/servers/:id/action', async (req, reply) => {
    const record = uuid.safeParse(req.params.id).success ? await store.getInstance(req.params.id) : null;
    if (!record) return notFound(reply, req.params.id);
    const parsed = serverActionBody.safeParse(req.body);
    if (!parsed.success) return reply.code(400).send(novaError('badRequest', 400, describeZodError(parsed.error)));
    if (!('os-start' in parsed.data)) {
      return reply.code(400).send(novaError('badRequest', 400, 'Only os-start is supported by this service'));
    }
    if (!record.host) {
      return reply.code(409).send(novaError('conflictingRequest', 409, `Instance ${record.uuid} has no compute host`));
    }
    const status = { vmState: record.vmState, taskState: record.taskState };
    if (!canTransition(status, 'begin')) {
      return reply
        .code(409)
        .send(
          novaError(
            'conflictingRequest',
            409,
            `Cannot 'start' instance ${record.uuid} while it is in vm_state ${record.vmState}` +
              (record.taskState ? `, task_state ${record.taskState}` : ''),
          ),
        );
    }
    const started = await startPowerOn(temporal, config, record, req.id);
    req.log.info({ instanceUuid: record.uuid, workflowId: started.workflowId }, 'power-on requested');
    return reply.code(202).send();
  });

  app.get<{ Params: { id: string } }>('/v2.1/servers/:id/os-instance-actions', async (req, reply) => {
    const record = uuid.safeParse(req.params.id).success ? await store.getInstance(req.params.id) : null;
    if (!record) return notFound(reply, req.params.id);
    const actions = await store.listActions(record.uuid);
    return { instanceActions: actions.map((a) => actionView(a, false)) };
  });

  app.get<{ Params: { id: string; requestId: string } }>(
    '/v2.1/servers/:id/os-instance-actions/:requestId',
    async (req, reply) => {
      const record = uuid.safeParse(req.params.id).success ? await store.getInstance(req.params.id) : null;
      if (!record) return notFound(reply, req.params.id);
      const action = await store.getAction(record.uuid, req.params.requestId);
      if (!action) {
        return reply
          .code(404)
          .send(novaError('itemNotFound', 404, `Action for request_id ${req.params.requestId} not found`));
      }
      return { instanceAction: actionView(action, true) };
    },
  );

  app.post('/v2.1/os-server-external-events', async (req, reply) => {
    const parsed = externalEventsBody.safeParse(req.body);
    if (!parsed.success) return reply.code(400).send(novaError('badRequest', 400, describeZodError(parsed.error)));
    const events = await deliverExternalEvents(parsed.data.events, { store, temporal, requestId: req.id });
    for (const e of events) {
      req.log.info({ instanceUuid: e.server_uuid, event: e.name, tag: e.tag, code: e.code }, 'external event');
    }
    return reply.code(events.every((e) => e.code === 200) ? 200 : 207).send({ events });
  });

  return app;
}
