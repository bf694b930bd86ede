import { z } from 'zod';
import { DEFAULT_CONTROL_EXCHANGE, DEFAULT_TOPICS, parseTransportUrl, TransportUrlError } from './oslo.js';

// The `notifications` config section, with oslo.messaging's and Nova's option
// names: [oslo_messaging_notifications] driver and transport_url, [DEFAULT]
// control_exchange, [notifications] versioned_notifications_topics,
// [oslo_messaging_rabbit] amqp_durable_queues. No I/O and no amqplib here, so
// config.ts may import it in every process.

const transportUrl = z
  .string()
  .refine(
    (s) => {
      try {
        parseTransportUrl(s, 0);
        return true;
      } catch (err) {
        if (err instanceof TransportUrlError) return false;
        throw err;
      }
    },
    { message: 'must be amqp://user:password@host:port/vhost (one host; amqps:// and rabbit:// also accepted)' },
  )
  .nullable();

export const notificationSettingsSchema = z
  .object({
    /**
     * messagingv2: RabbitMQ (needs transport_url); log: the structured log;
     * noop: neither. null: messagingv2 when transport_url is set, else log.
     */
    driver: z.enum(['messagingv2', 'log', 'noop']).nullable(),
    transport_url: transportUrl,
    control_exchange: z.string().regex(/^[A-Za-z0-9_.:-]{1,255}$/, 'must be an exchange name'),
    versioned_notifications_topics: z.array(z.string().regex(/^[A-Za-z0-9_.-]{1,200}$/, 'must be a topic name')).min(1),
    amqp_durable_queues: z.boolean(),
  })
  .strict()
  .refine((s) => s.driver !== 'messagingv2' || s.transport_url !== null, {
    message: 'driver messagingv2 needs transport_url',
    path: ['transport_url'],
  });

export type NotificationSettings = z.infer<typeof notificationSettingsSchema>;

export function notificationDefaults(): NotificationSettings {
  return {
    driver: null,
    transport_url: null,
    control_exchange: DEFAULT_CONTROL_EXCHANGE,
    versioned_notifications_topics: [...DEFAULT_TOPICS],
    amqp_durable_queues: false,
  };
}

export function resolvedDriver(s: NotificationSettings): 'messagingv2' | 'log' | 'noop' {
  return s.driver ?? (s.transport_url ? 'messagingv2' : 'log');
}
