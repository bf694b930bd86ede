import { connect, type ChannelModel, type ConfirmChannel, type Options } from 'amqplib';
import type { Logger } from '../log.js';
import {
  DEFAULT_CONTROL_EXCHANGE,
  DEFAULT_TOPICS,
  osloEnvelope,
  parseTransportUrl,
  publishOptions,
  redactUrl,
  routingKey,
} from './oslo.js';
import { buildPowerOnNotification, type VersionedNotification } from './payload.js';
import type { NotificationInstance, Notifier, NotifyContext, PowerOnEventType } from './types.js';

// Publishes versioned notifications to RabbitMQ the way oslo.messaging's
// messagingv2 driver does (see oslo.ts), with publisher confirms: notify()
// resolves only once the broker has taken the message, and rejects when it
// cannot (broker down, refused, no confirm in time), so the calling Temporal
// activity retries. Nova's oslo driver logs and drops instead; a retried
// activity makes delivery at-least-once, and the stable message_id lets
// consumers drop the duplicates.
//
// One connection and one confirm channel, opened on first use. A connection
// that dies is dropped; the next notify() opens a new one. A notify() that finds
// its (older) connection dead tries once more on a fresh one before it rejects.

export type NotifierLog = Pick<Logger, 'info' | 'warn'>;

export interface AmqpNotifierOptions {
  /** amqp://user:password@host:5672/vhost (or oslo's rabbit://...). Never logged with its password. */
  url: string;
  /** [DEFAULT]control_exchange (Nova: "nova"). */
  exchange?: string;
  /** [notifications]versioned_notifications_topics. */
  topics?: readonly string[];
  /** [oslo_messaging_rabbit]amqp_durable_queues: durable exchange and default queues (false). */
  durable?: boolean;
  /**
   * Like oslo's notifier, declare and bind a queue named after each routing key
   * (e.g. versioned_notifications.info) so that nothing is lost before a
   * consumer comes (true).
   */
  declareDefaultQueues?: boolean;
  /** TCP + AMQP handshake limit (5000 ms). */
  connectTimeoutMs?: number;
  /** How long to wait for the broker's confirm (10000 ms). */
  confirmTimeoutMs?: number;
  /** AMQP heartbeat in seconds (60, oslo's heartbeat_timeout_threshold). */
  heartbeatSeconds?: number;
  logger?: NotifierLog;
}

interface Link {
  model: ChannelModel;
  channel: ConfirmChannel;
  /** exchange and queues declared on this connection */
  declared: Set<string>;
  dead: boolean;
}

/** close() of a connection that is already gone throws or rejects: neither matters here. */
function closeQuietly(model: ChannelModel): Promise<void> {
  return Promise.resolve()
    .then(() => model.close())
    .catch(() => undefined);
}

export class AmqpPublishError extends Error {
  override readonly name = 'AmqpPublishError';
}

export class AmqpNotifier implements Notifier {
  /** The broker URL with the password masked. */
  readonly safeUrl: string;
  private readonly connectOptions: Options.Connect;
  private readonly exchange: string;
  private readonly topics: readonly string[];
  private readonly durable: boolean;
  private readonly declareDefaultQueues: boolean;
  private readonly connectTimeoutMs: number;
  private readonly confirmTimeoutMs: number;
  private readonly logger: NotifierLog | undefined;
  private current: Link | null = null;
  private pending: Promise<Link> | null = null;
  private closed = false;

  constructor(options: AmqpNotifierOptions) {
    this.safeUrl = redactUrl(options.url);
    this.connectOptions = parseTransportUrl(options.url, options.heartbeatSeconds ?? 60);
    this.exchange = options.exchange ?? DEFAULT_CONTROL_EXCHANGE;
    this.topics = options.topics ?? DEFAULT_TOPICS;
    if (this.topics.length === 0) throw new TypeError('AmqpNotifier: at least one topic is needed');
    this.durable = options.durable ?? false;
    this.declareDefaultQueues = options.declareDefaultQueues ?? true;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    this.confirmTimeoutMs = options.confirmTimeoutMs ?? 10_000;
    this.logger = options.logger;
  }

  async notify(eventType: PowerOnEventType, instance: NotificationInstance, context: NotifyContext): Promise<void> {
    const notification = buildPowerOnNotification({
      eventType,
      instance,
      requestId: context.requestId,
      fault: context.fault ?? null,
      networkInfo: context.networkInfo,
    });
    await this.publish(notification);
  }

  /** Publishes one notification to every topic; resolves when the broker confirmed each. */
  async publish(notification: VersionedNotification): Promise<void> {
    if (this.closed) throw new AmqpPublishError('notifier is closed');
    const body = Buffer.from(JSON.stringify(osloEnvelope(notification)), 'utf8');
    const options = publishOptions(notification);
    for (const topic of this.topics) {
      const key = routingKey(topic, notification.priority);
      await this.publishOne(key, body, options);
    }
  }

  private async publishOne(key: string, body: Buffer, options: Options.Publish): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const hadLink = this.current !== null && !this.current.dead;
      const link = await this.connection();
      try {
        await this.declare(link, key);
        await this.confirmPublish(link, key, body, options);
        return;
      } catch (err) {
        this.forget(link);
        // An old connection may have died unnoticed (broker restarted): one more try on a new one.
        if (attempt === 1 && hadLink) {
          this.logger?.warn(
            { broker: this.safeUrl, err: this.clean(err) },
            'notification publish failed; reconnecting',
          );
          continue;
        }
        throw new AmqpPublishError(`publishing to ${this.exchange}/${key} on ${this.safeUrl}: ${this.clean(err)}`);
      }
    }
  }

  private async connection(): Promise<Link> {
    if (this.current && !this.current.dead) return this.current;
    if (!this.pending) {
      this.pending = this.open().then(
        (link) => {
          this.pending = null;
          if (this.closed) {
            this.forget(link);
            throw new AmqpPublishError('notifier is closed');
          }
          this.current = link;
          return link;
        },
        (err: unknown) => {
          this.pending = null;
          throw err;
        },
      );
    }
    return this.pending;
  }

  private async open(): Promise<Link> {
    let model: ChannelModel;
    try {
      model = await connect(this.connectOptions, {
        timeout: this.connectTimeoutMs,
        // Small frames and a wait for the confirm: Nagle + delayed ACK would add ~40 ms to each.
        noDelay: true,
        clientProperties: { connection_name: 'nova-temporal notifier' },
      });
    } catch (err) {
      throw new AmqpPublishError(`connecting to ${this.safeUrl}: ${this.clean(err)}`);
    }
    const link: Link = { model, channel: undefined as unknown as ConfirmChannel, declared: new Set(), dead: false };
    const forget = (why: string, err?: unknown) => {
      if (link.dead) return;
      this.forget(link);
      this.logger?.warn({ broker: this.safeUrl, err: err ? this.clean(err) : undefined }, why);
    };
    // Without 'error' listeners a broker going away would crash the process.
    model.on('error', (err: Error) => forget('notification broker connection error', err));
    model.on('close', () => forget('notification broker connection closed'));
    model.on('blocked', (reason: string) => this.logger?.warn({ broker: this.safeUrl, reason }, 'broker blocked us'));
    try {
      link.channel = await model.createConfirmChannel();
    } catch (err) {
      await closeQuietly(model);
      throw new AmqpPublishError(`opening a channel on ${this.safeUrl}: ${this.clean(err)}`);
    }
    link.channel.on('error', (err: Error) => forget('notification channel error', err));
    link.channel.on('close', () => forget('notification channel closed'));
    this.logger?.info({ broker: this.safeUrl, exchange: this.exchange }, 'connected to the notification broker');
    return link;
  }

  /** The exchange, and (like oslo) the default queue named after the routing key; once per connection. */
  private async declare(link: Link, key: string): Promise<void> {
    const ch = link.channel;
    if (!link.declared.has(`exchange:${this.exchange}`)) {
      await ch.assertExchange(this.exchange, 'topic', { durable: this.durable, autoDelete: false });
      link.declared.add(`exchange:${this.exchange}`);
    }
    if (this.declareDefaultQueues && !link.declared.has(`queue:${key}`)) {
      await ch.assertQueue(key, { durable: this.durable, autoDelete: false });
      await ch.bindQueue(key, this.exchange, key);
      link.declared.add(`queue:${key}`);
    }
  }

  private confirmPublish(link: Link, key: string, body: Buffer, options: Options.Publish): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no publisher confirm within ${this.confirmTimeoutMs} ms`)),
        this.confirmTimeoutMs,
      );
      try {
        link.channel.publish(this.exchange, key, body, options, (err: unknown) => {
          clearTimeout(timer);
          if (err) reject(err instanceof Error ? err : new Error('the broker refused the message (nack)'));
          else resolve();
        });
      } catch (err) {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  /** Drops a link (after a failure, or when it closed): the next publish opens a new connection. */
  private forget(link: Link): void {
    link.dead = true;
    if (this.current === link) this.current = null;
    closeQuietly(link.model);
  }

  /** An error's message with the password, should a library ever include it, masked. */
  private clean(err: unknown): string {
    const msg = err instanceof Error ? err.message : String(err);
    const pw = this.connectOptions.password;
    return pw && pw.length >= 4 ? msg.split(pw).join('***') : msg;
  }

  /** Closes the connection; notify() rejects afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    const link = this.current;
    this.current = null;
    if (link && !link.dead) {
      link.dead = true;
      await closeQuietly(link.model);
    }
  }
}
