import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { InstanceStore } from '../store/instance-store.js';
import { instanceEventSignal, powerOnWorkflowId } from '../workflows/definitions.js';
import type { ExternalEvent } from './schemas.js';

// Delivery of Neutron's external events (Nova's ServerExternalEventsController):
// each event gets its own code, and one bad event never fails the batch, because
// Neutron does not retry.

export type EventReply = ExternalEvent & { code: 200 | 400 | 404 | 422 | 500; status: string };

/** Long enough to ride out a Temporal frontend restart; Neutron waits far longer for an answer. */
const SIGNAL_DEADLINE_MS = 15_000;

async function signalWithRetry(send: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + SIGNAL_DEADLINE_MS;
  for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
    try {
      return await send();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError || Date.now() + delay > deadline) throw err;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

const NEEDS_TAG = new Set(['network-vif-plugged', 'network-vif-unplugged', 'network-vif-deleted']);

export async function deliverExternalEvents(
  events: ExternalEvent[],
  deps: { store: InstanceStore; temporal: Client; requestId: string },
): Promise<EventReply[]> {
  const actions = new Map<string, Promise<void>>();

  // No power-on is waiting: Nova accepts and drops such an event; we keep a trace
  // in the instance's actions, one `external_event` action per request.
  const recordDropped = async (e: ExternalEvent) => {
    let started = actions.get(e.server_uuid);
    if (!started) {
      started = deps.store.startAction({
        action: 'external_event',
        instanceUuid: e.server_uuid,
        requestId: deps.requestId,
        startTime: new Date().toISOString(),
        message: 'no power-on in progress; events accepted and dropped',
      });
      actions.set(e.server_uuid, started);
    }
    await started;
    const now = new Date().toISOString();
    await deps.store.recordActionEvent(e.server_uuid, deps.requestId, {
      event: `${e.name}${e.tag ? `:${e.tag}` : ''}`,
      startTime: now,
      finishTime: now,
      result: 'Success',
      details: `status ${e.status}; no power-on in progress`,
    });
  };

  const deliver = async (e: ExternalEvent): Promise<EventReply> => {
    if (NEEDS_TAG.has(e.name) && !e.tag) return { ...e, code: 400, status: 'failed' };
    const instance = await deps.store.getInstance(e.server_uuid);
    if (!instance) return { ...e, code: 404, status: 'failed' };
    if (!instance.host) return { ...e, code: 422, status: 'failed' };
    try {
      const workflow = deps.temporal.workflow.getHandle(powerOnWorkflowId(e.server_uuid));
      await signalWithRetry(() =>
        workflow.signal(instanceEventSignal, { name: e.name, tag: e.tag ?? null, status: e.status }),
      );
    } catch (err) {
      // Temporal unreachable past the deadline: this event could not be delivered,
      // the others in the batch still are (Neutron does not retry a failed batch).
      if (!(err instanceof WorkflowNotFoundError)) return { ...e, code: 500, status: 'failed' };
      await recordDropped(e);
    }
    return { ...e, code: 200, status: 'completed' };
  };

  return Promise.all(events.map(deliver));
}
