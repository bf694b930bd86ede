import type { Logger } from '../log.js';
import { buildPowerOnNotification } from './payload.js';
import type { NotificationInstance, Notifier, NotifyContext, PowerOnEventType } from './types.js';

/** Writes each versioned notification to the structured log (oslo's `log` driver). */
export class LogNotifier implements Notifier {
  constructor(private readonly logger: Pick<Logger, 'info' | 'error'>) {}

  async notify(eventType: PowerOnEventType, instance: NotificationInstance, context: NotifyContext): Promise<void> {
    const n = buildPowerOnNotification({
      eventType,
      instance,
      requestId: context.requestId,
      fault: context.fault ?? null,
      networkInfo: context.networkInfo,
    });
    const fields = { instanceUuid: instance.uuid, requestId: context.requestId, notification: n };
    if (n.priority === 'ERROR') this.logger.error(fields, eventType);
    else this.logger.info(fields, eventType);
  }
}
