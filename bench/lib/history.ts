import type { WorkflowHandle } from '@temporalio/client';

// Where a workflow run's time goes, read from its Temporal history (server
// timestamps, same host clock as the bench): per activity the wait in the task
// queue (scheduled -> started) and the execution (started -> completed, which
// includes the worker's completion RPC); per workflow task the dispatch
// (scheduled -> started) and the run of workflow code (started -> completed).

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;
type HistoryEvent = NonNullable<History['events']>[number];

export interface ActivitySpan {
  name: string;
  scheduledAt: number;
  startedAt: number | null;
  closedAt: number | null;
  attempt: number;
  /** why the previous attempt failed (timeout type or error message), when attempt > 1 */
  lastFailure: string | null;
  /** scheduled -> started of the attempt that completed */
  queueMs: number | null;
  /** started -> completed */
  execMs: number | null;
}

export interface HistoryBreakdown {
  events: number;
  startedAt: number;
  completedAt: number | null;
  activities: ActivitySpan[];
  signals: { name: string; at: number }[];
  workflowTasks: number;
  totals: {
    spanMs: number | null;
    activityQueueMs: number;
    activityExecMs: number;
    workflowTaskQueueMs: number;
    workflowTaskRunMs: number;
  };
}

const TIMEOUT_TYPES = ['unspecified', 'start-to-close', 'schedule-to-start', 'schedule-to-close', 'heartbeat'];

type LongLike = number | string | { toNumber(): number } | null | undefined;

const num = (v: LongLike): number => {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return Number(v);
  return v.toNumber();
};

const timeOf = (e: HistoryEvent): number => {
  const t = e.eventTime;
  return num(t?.seconds as LongLike) * 1000 + (t?.nanos ?? 0) / 1e6;
};

export function breakdown(history: History): HistoryBreakdown {
  const events = history.events ?? [];
  const activities = new Map<number, ActivitySpan>();
  const wftScheduled = new Map<number, number>();
  const wftStarted = new Map<number, { at: number; scheduledId: number }>();
  const signals: { name: string; at: number }[] = [];
  let startedAt = NaN;
  let completedAt: number | null = null;
  let wftQueue = 0;
  let wftRun = 0;
  let wftCount = 0;
  for (const e of events) {
    const at = timeOf(e);
    const id = num(e.eventId as LongLike);
    if (e.workflowExecutionStartedEventAttributes) startedAt = at;
    else if (e.workflowExecutionCompletedEventAttributes || e.workflowExecutionFailedEventAttributes) completedAt = at;
    else if (e.workflowTaskScheduledEventAttributes) wftScheduled.set(id, at);
    else if (e.workflowTaskStartedEventAttributes) {
      const scheduledId = num(e.workflowTaskStartedEventAttributes.scheduledEventId as LongLike);
      wftStarted.set(id, { at, scheduledId });
      wftQueue += at - (wftScheduled.get(scheduledId) ?? at);
    } else if (e.workflowTaskCompletedEventAttributes) {
      const started = wftStarted.get(num(e.workflowTaskCompletedEventAttributes.startedEventId as LongLike));
      if (started) wftRun += at - started.at;
      wftCount++;
    } else if (e.activityTaskScheduledEventAttributes) {
      activities.set(id, {
        name: e.activityTaskScheduledEventAttributes.activityType?.name ?? '?',
        scheduledAt: at,
        startedAt: null,
        closedAt: null,
        attempt: 0,
        lastFailure: null,
        queueMs: null,
        execMs: null,
      });
    } else if (e.activityTaskStartedEventAttributes) {
      const a = activities.get(num(e.activityTaskStartedEventAttributes.scheduledEventId as LongLike));
      if (a) {
        a.startedAt = at;
        a.attempt = e.activityTaskStartedEventAttributes.attempt ?? 1;
        const f = e.activityTaskStartedEventAttributes.lastFailure;
        if (f) {
          const timeout = f.timeoutFailureInfo?.timeoutType;
          a.lastFailure =
            timeout !== undefined && timeout !== null
              ? `${TIMEOUT_TYPES[Number(timeout)] ?? String(timeout)} timeout`
              : (f.message ?? 'failed');
        }
        a.queueMs = at - a.scheduledAt;
      }
    } else if (e.activityTaskCompletedEventAttributes) {
      const a = activities.get(num(e.activityTaskCompletedEventAttributes.scheduledEventId as LongLike));
      if (a) {
        a.closedAt = at;
        if (a.startedAt !== null) a.execMs = at - a.startedAt;
      }
    } else if (e.workflowExecutionSignaledEventAttributes) {
      signals.push({ name: e.workflowExecutionSignaledEventAttributes.signalName ?? '?', at });
    }
  }
  const list = [...activities.values()];
  const sum = (xs: (number | null)[]) => xs.reduce<number>((s, x) => s + (x ?? 0), 0);
  return {
    events: events.length,
    startedAt,
    completedAt,
    activities: list,
    signals,
    workflowTasks: wftCount,
    totals: {
      spanMs: completedAt === null ? null : completedAt - startedAt,
      activityQueueMs: sum(list.map((a) => a.queueMs)),
      activityExecMs: sum(list.map((a) => a.execMs)),
      workflowTaskQueueMs: wftQueue,
      workflowTaskRunMs: wftRun,
    },
  };
}
