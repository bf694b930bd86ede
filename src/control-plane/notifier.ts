import type { Notifier } from '../activities/control-plane.js';
import type { Logger } from '../log.js';

/** Emits Nova-style versioned notifications to the structured log. */
export class LogNotifier implements Notifier {
  constructor(private readonly logger: Logger) {}

  async notify(eventType: string, instanceUuid: string, payload: Record<string, unknown>): Promise<void> {
    this.logger.info({ event_type: eventType, instanceUuid, payload }, eventType);
  }
}
