import type { Options } from 'amqplib';
import type { VersionedNotification } from './payload.js';

// What oslo.messaging's messagingv2 driver over RabbitMQ puts on the wire, so
// that consumers written for Nova (Ceilometer, Searchlight, oslo listeners)
// read our notifications unchanged. Pure: no I/O.
//
// - exchange: [DEFAULT]control_exchange, which Nova sets to "nova"; a topic
//   exchange, durable only with amqp_durable_queues (default false),
//   auto_delete false;
// - routing key: "<topic>.<priority lower-case>" for each topic in
//   [notifications]versioned_notifications_topics (["versioned_notifications"]);
// - body: {"oslo.version": "2.0", "oslo.message": "<JSON string>"}, where the
//   inner message is the notification plus _unique_id and the request context
//   flattened into _context_* keys; JSON, utf-8, persistent (kombu's default).

export const OSLO_ENVELOPE_VERSION = '2.0';
export const DEFAULT_CONTROL_EXCHANGE = 'nova';
export const DEFAULT_TOPICS: readonly string[] = ['versioned_notifications'];

export interface OsloEnvelope {
  'oslo.version': string;
  'oslo.message': string;
}

export function routingKey(topic: string, priority: string): string {
  return `${topic}.${priority.toLowerCase()}`;
}

/**
 * The inner message: the notification, oslo's duplicate-detection id and the
 * (sanitised) request context. _unique_id is derived from message_id, so a
 * retried publish is recognised as a duplicate by oslo listeners too.
 */
export function osloMessage(n: VersionedNotification): Record<string, unknown> {
  return {
    ...n,
    _unique_id: n.message_id.replace(/-/g, ''),
    _context_request_id: n.payload['nova_object.data'].request_id,
    _context_global_request_id: null,
    _context_user_id: null,
    _context_project_id: null,
  };
}

export function osloEnvelope(n: VersionedNotification): OsloEnvelope {
  return { 'oslo.version': OSLO_ENVELOPE_VERSION, 'oslo.message': JSON.stringify(osloMessage(n)) };
}

export function publishOptions(n: VersionedNotification): Options.Publish {
  return {
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    deliveryMode: 2,
    messageId: n.message_id,
  };
}

/** A broker address without its password, for logs and errors. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable URL>';
  }
}

export class TransportUrlError extends Error {
  override readonly name = 'TransportUrlError';
}

/**
 * amqp://user:pass@host:5672/vhost (also amqps://, and oslo's rabbit:// form of
 * the same) -> amqplib connect options. The vhost is the URL-decoded path
 * without its leading "/"; an empty path is the default vhost "/".
 * One host only: oslo's multi-host form is refused.
 */
export function parseTransportUrl(url: string, heartbeat: number): Options.Connect {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TransportUrlError('transport URL: not a URL (expected amqp://user:password@host:port/vhost)');
  }
  const scheme = u.protocol.replace(/:$/, '');
  const protocol = scheme === 'rabbit' ? 'amqp' : scheme;
  if (protocol !== 'amqp' && protocol !== 'amqps') {
    throw new TransportUrlError(`transport URL: scheme must be amqp, amqps or rabbit, not ${JSON.stringify(scheme)}`);
  }
  if (!u.hostname) throw new TransportUrlError('transport URL: no host');
  if (
    url
      .slice(url.indexOf('//') + 2)
      .split('/')[0]!
      .includes(',')
  ) {
    throw new TransportUrlError('transport URL: only one host is supported');
  }
  const path = u.pathname.replace(/^\//, '');
  let vhost: string;
  try {
    vhost = path === '' ? '/' : decodeURIComponent(path);
  } catch {
    throw new TransportUrlError('transport URL: the virtual host is not URL-encoded correctly');
  }
  return {
    protocol,
    hostname: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : protocol === 'amqps' ? 5671 : 5672,
    username: decodeURIComponent(u.username) || 'guest',
    password: decodeURIComponent(u.password) || 'guest',
    vhost,
    heartbeat,
  };
}
