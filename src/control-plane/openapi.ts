import { z } from 'zod';
import { externalEventsBody, registerServerBody, serverActionBody } from './schemas.js';

// The OpenAPI document of the control-plane API, derived from the same zod
// schemas that validate the requests, so the two cannot drift apart.

const json = (schema: z.ZodType) => {
  const rest = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  delete rest.$schema;
  return { content: { 'application/json': { schema: rest } } };
};

const error = (description: string) => ({
  description,
  content: { 'application/json': { schema: { type: 'object' } } },
});
const serverId = { name: 'server_id', in: 'path', required: true, schema: { type: 'string' } } as const;

export function openApiDocument() {
  return {
    openapi: '3.1.0',
    info: {
      title: 'nova-temporal control plane',
      version: '2.1',
      description: "A Nova-compatible subset of OpenStack Compute's API: power-on as a Temporal workflow.",
    },
    servers: [{ url: '/v2.1' }],
    components: {
      securitySchemes: { token: { type: 'apiKey', in: 'header', name: 'X-Auth-Token' } },
    },
    security: [{ token: [] }],
    paths: {
      '/servers': {
        post: {
          operationId: 'registerServer',
          summary: 'Register an existing stopped instance (binds its Neutron ports)',
          requestBody: { required: true, ...json(registerServerBody) },
          responses: {
            '201': {
              description: 'Registered; status SHUTOFF',
              content: { 'application/json': { schema: { type: 'object' } } },
            },
            '400': error('Invalid body, or a port is missing or bound to another device'),
            '401': error('No valid X-Auth-Token'),
            '409': error('An instance with that id exists'),
          },
        },
      },
      '/servers/{server_id}': {
        get: {
          operationId: 'showServer',
          parameters: [serverId],
          responses: {
            '200': { description: 'The server', content: { 'application/json': { schema: { type: 'object' } } } },
            '401': error('No valid X-Auth-Token'),
            '404': error('Unknown server'),
          },
        },
      },
      '/servers/{server_id}/action': {
        post: {
          operationId: 'serverAction',
          summary: 'os-start: power on (starts or joins the PowerOnInstance workflow)',
          parameters: [serverId],
          requestBody: { required: true, ...json(serverActionBody) },
          responses: {
            '202': { description: 'Accepted' },
            '400': error('Invalid body'),
            '401': error('No valid X-Auth-Token'),
            '404': error('Unknown server'),
            '409': error('vm_state is not stopped or a task is in progress'),
          },
        },
      },
      '/servers/{server_id}/os-instance-actions': {
        get: {
          operationId: 'listInstanceActions',
          parameters: [serverId],
          responses: {
            '200': { description: 'instanceActions', content: { 'application/json': { schema: { type: 'object' } } } },
            '401': error('No valid X-Auth-Token'),
            '404': error('Unknown server'),
          },
        },
      },
      '/servers/{server_id}/os-instance-actions/{request_id}': {
        get: {
          operationId: 'showInstanceAction',
          parameters: [serverId, { name: 'request_id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            '200': {
              description: 'instanceAction with events',
              content: { 'application/json': { schema: { type: 'object' } } },
            },
            '401': error('No valid X-Auth-Token'),
            '404': error('Unknown server or action'),
          },
        },
      },
      '/os-server-external-events': {
        post: {
          operationId: 'createExternalEvents',
          summary: "Neutron's network-vif-* events, delivered as signals to the instance's power-on",
          requestBody: { required: true, ...json(externalEventsBody) },
          responses: {
            '200': {
              description: 'Every event delivered',
              content: { 'application/json': { schema: { type: 'object' } } },
            },
            '207': {
              description: 'Per-event codes differ',
              content: { 'application/json': { schema: { type: 'object' } } },
            },
            '400': error('Malformed body'),
            '401': error('No valid X-Auth-Token'),
          },
        },
      },
      '/openapi.json': {
        get: { operationId: 'openapi', responses: { '200': { description: 'This document' } } },
      },
    },
  };
}
