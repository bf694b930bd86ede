import type { InstanceStore } from '../store/instance-store.js';
import { buildPowerOnNotification } from './payload.js';
import type { NotificationInstance, Notifier, NotifyContext, PowerOnEventType } from './types.js';

// Two notifiers that are not a message bus: one that writes each notification
// into the instance action log, and one that hands a notification to several.

/**
 * Records each notification as an event `notification:<event_type>` of the
 * instance action with the request id, so that os-instance-actions shows what
 * was announced and under which message_id (to find it on the bus). The event's
 * result says the notification was emitted ("Success"), not how the power-on
 * went: that is in the event type. Idempotent: the store replaces an event of
 * the same name, so a retried activity leaves one event.
 */
export class StoreNotifier implements Notifier {
  constructor(private readonly store: Pick<InstanceStore, 'recordActionEvent'>) {}

  async notify(eventType: PowerOnEventType, instance: NotificationInstance, context: NotifyContext): Promise<void> {
    const n = buildPowerOnNotification({
      eventType,
      instance,
      requestId: context.requestId,
      fault: context.fault ?? null,
    });
    const at = new Date().toISOString();
    const fault = context.fault ? ` fault=${context.fault.exception}` : '';
    await this.store.recordActionEvent(instance.uuid, context.requestId, {
      event: `notification:${eventType}`,
      startTime: at,
      finishTime: at,
      result: 'Success',
      details: `priority=${n.priority} message_id=${n.message_id} publisher_id=${n.publisher_id}${fault}`,
    });
  }
}

/** One of a FanoutNotifier's notifiers failed; `errors` holds each failure. */
export class NotifyFanoutError extends AggregateError {
  override readonly name = 'NotifyFanoutError';
}

/**
 * Calls every notifier, all of them even when one fails, and resolves when all
 * resolved; rejects (after all settled) with every failure. Each notifier must
 * be idempotent, as the caller's retry calls all of them again.
 */
export class FanoutNotifier implements Notifier {
  readonly notifiers: readonly Notifier[];

  constructor(notifiers: readonly Notifier[]) {
    this.notifiers = [...notifiers];
  }

  async notify(eventType: PowerOnEventType, instance: NotificationInstance, context: NotifyContext): Promise<void> {
    const results = await Promise.allSettled(this.notifiers.map((n) => n.notify(eventType, instance, context)));
    const errors = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    if (errors.length > 0) {
      const first = errors[0] instanceof Error ? errors[0].message : String(errors[0]);
      throw new NotifyFanoutError(
        errors,
        `${errors.length} of ${this.notifiers.length} notifiers failed for ${eventType}: ${first}`,
      );
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.notifiers.map((n) => n.close?.()));
  }
}
