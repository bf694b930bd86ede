import type { Logger } from '../log.js';
import type { InstanceStore } from '../store/instance-store.js';
import { AmqpNotifier } from './amqp-notifier.js';
import { LogNotifier } from './log-notifier.js';
import { resolvedDriver, type NotificationSettings } from './settings.js';
import { FanoutNotifier, StoreNotifier } from './store-notifier.js';
import type { Notifier } from './types.js';

export { AmqpNotifier, AmqpPublishError, type AmqpNotifierOptions } from './amqp-notifier.js';
export { LogNotifier } from './log-notifier.js';
export { redactUrl } from './oslo.js';
export * from './settings.js';
export { buildPowerOnNotification, type VersionedNotification } from './payload.js';
export { FanoutNotifier, NotifyFanoutError, StoreNotifier } from './store-notifier.js';
export * from './types.js';

/**
 * The control plane's notifier: every notification goes to the instance action
 * log (StoreNotifier) and to the configured driver, RabbitMQ or the log.
 */
export function createNotifier(
  settings: NotificationSettings,
  deps: { store: Pick<InstanceStore, 'recordActionEvent'>; logger: Logger },
): Notifier {
  const notifiers: Notifier[] = [new StoreNotifier(deps.store)];
  const driver = resolvedDriver(settings);
  if (driver === 'log') notifiers.push(new LogNotifier(deps.logger));
  if (driver === 'messagingv2') {
    const amqp = new AmqpNotifier({
      url: settings.transport_url!,
      exchange: settings.control_exchange,
      topics: settings.versioned_notifications_topics,
      durable: settings.amqp_durable_queues,
      logger: deps.logger,
    });
    deps.logger.info({ broker: amqp.safeUrl, exchange: settings.control_exchange }, 'notifications go to RabbitMQ');
    notifiers.push(amqp);
  }
  return new FanoutNotifier(notifiers);
}
