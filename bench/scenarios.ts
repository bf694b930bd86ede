import { VIR_DOMAIN_EVENT_DEFINED, VIR_DOMAIN_EVENT_SUSPENDED } from '@nova-temporal/libvirt';
import { readFileSync } from 'node:fs';
import { domainName } from '../src/domain/domain-xml.js';
import { powerOnWorkflowId, type PowerOnProgress } from '../src/workflows/definitions.js';
import { barePowerOn } from './bare.js';
import { floorPowerOn, type FloorResult } from './floor.js';
import { breakdown, type HistoryBreakdown } from './lib/history.js';
import { cpuDelta, cpuMs, cpuSnapshot, ResourceSampler, rssKb } from './lib/procs.js';
import type { BenchStack, ServerView, Side } from './lib/stack.js';
import { mapLimit, sleep, wall } from './lib/util.js';

const VIR_DOMAIN_RUNNING = 1;
/**
 * GET /servers/{id} poll interval while waiting for ACTIVE (NT_BENCH_POLL_MS); 0, the default,
 * waits on the workflow result instead: polling every 10 ms costs the control plane and the
 * bench ~1 ms of CPU per GET, which slowed the 0-port power-on measurably on 2 cores.
 */
export const POLL_MS = Number(process.env.NT_BENCH_POLL_MS ?? 0);

export interface RunSample {
  id: string;
  /** os-start sent (workflow) or first step called (bare) -> ACTIVE observed */
  totalMs: number;
  /** -> the guest's RESUMED/STARTED lifecycle event */
  runningMs: number | null;
  /** per step, ms: the workflow's progress query (workflow clock) or the bare script's own timing */
  steps: Record<string, number>;
  /** CPU ms each process used from os-start (or the first step) to the end of the power-on */
  cpuMs: Record<string, number>;
}

export interface WorkflowSample extends RunSample {
  /** wall() when os-start was sent */
  sentAt: number;
  /** os-start sent -> 202 received */
  acceptedMs: number;
  /** os-start sent -> the record's `updated` time of the ACTIVE transition (ms resolution, no poll delay) */
  committedMs: number;
  polls: number;
  history: HistoryBreakdown;
}

const handle = (stack: BenchStack, id: string) => stack.client.workflow.getHandle(powerOnWorkflowId(id));

async function guestState(stack: BenchStack, id: string): Promise<number | null> {
  const guest = await stack.libvirt.getGuest(id);
  return guest ? guest.getState() : null;
}

/**
 * Waits until the instance is ACTIVE. With POLL_MS > 0: GET /servers/{id} every POLL_MS ms,
 * `at` is when a GET first read ACTIVE. With POLL_MS = 0 (the default): waits on the
 * workflow's result (one long poll, no load meanwhile), then reads the record once; `at` is
 * the record's `updated` time of the ACTIVE transition, when any GET would first read ACTIVE.
 */
async function awaitActive(
  stack: BenchStack,
  id: string,
  since: number,
  timeoutMs = 120_000,
): Promise<{ at: number; server: ServerView; polls: number }> {
  if (POLL_MS <= 0) {
    await handle(stack, id).result();
    const server = await stack.getServer(id);
    if (server.status !== 'ACTIVE') throw new Error(`${id}: ${server.status} after its workflow completed`);
    return { at: Date.parse(server.updated), server, polls: 0 };
  }
  const deadline = since + timeoutMs;
  for (let polls = 1; ; polls++) {
    const server = await stack.getServer(id);
    const at = wall();
    if (server.status === 'ACTIVE') return { at, server, polls };
    if (server.fault && Date.parse(server.fault.created) >= since - 1000) {
      throw new Error(`power-on of ${id} failed: ${server.fault.message}`);
    }
    if (at > deadline) throw new Error(`${id} not ACTIVE after ${timeoutMs} ms (status ${server.status})`);
    await sleep(POLL_MS);
  }
}

async function osStart(stack: BenchStack, id: string): Promise<{ sentAt: number; acceptedAt: number }> {
  const sentAt = wall();
  const res = await stack.call('POST', `/servers/${id}/action`, { 'os-start': null });
  const acceptedAt = wall();
  if (res.status !== 202) throw new Error(`os-start ${id}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
  return { sentAt, acceptedAt };
}

const stepMap = (steps: { name: string; durationMs: number | null }[]): Record<string, number> =>
  Object.fromEntries(steps.filter((s) => s.durationMs !== null).map((s) => [s.name, s.durationMs as number]));

/** Item 1: one power-on through the API, the workflow and the compute worker. */
export async function workflowRun(
  stack: BenchStack,
  portCount: number,
  behaviour?: { mode: string; delayMs?: number },
): Promise<WorkflowSample> {
  const { id } = await stack.register('workflow', portCount, behaviour);
  try {
    const pids = stack.pids();
    const cpu0 = cpuSnapshot(pids);
    const { sentAt, acceptedAt } = await osStart(stack, id);
    const active = await awaitActive(stack, id, sentAt);
    const state = await guestState(stack, id);
    if (state !== VIR_DOMAIN_RUNNING) throw new Error(`${id} is ACTIVE but its guest is in state ${state}`);
    const h = handle(stack, id);
    await h.result();
    const cpu = cpuDelta(cpu0, cpuSnapshot(pids));
    const progress = await h.query<PowerOnProgress>('progress');
    const history = breakdown(await h.fetchHistory());
    const running = stack.watch.runningAt(id, sentAt);
    return {
      id,
      sentAt,
      totalMs: active.at - sentAt,
      acceptedMs: acceptedAt - sentAt,
      committedMs: Date.parse(active.server.updated) - sentAt,
      runningMs: running === null ? null : running - sentAt,
      polls: active.polls,
      steps: stepMap(progress.steps),
      cpuMs: cpu,
      history,
    };
  } finally {
    await stack.cleanup(id);
  }
}

export interface BareSample extends RunSample {
  waitBeganAt: number | null;
}

/** Item 2: the same steps, called directly. */
export async function bareRun(stack: BenchStack, portCount: number): Promise<BareSample> {
  const { id } = await stack.register('bare', portCount);
  try {
    const pids = stack.pids();
    const cpu0 = cpuSnapshot(pids);
    const t0 = wall();
    const r = await barePowerOn(stack, id);
    const t1 = wall();
    const cpu = cpuDelta(cpu0, cpuSnapshot(pids));
    const state = await guestState(stack, id);
    if (state !== VIR_DOMAIN_RUNNING) throw new Error(`bare ${id}: guest in state ${state}`);
    const running = stack.watch.runningAt(id, t0);
    return {
      id,
      totalMs: t1 - t0,
      runningMs: running === null ? null : running - t0,
      steps: Object.fromEntries(r.steps.map((s) => [s.name, s.ms])),
      cpuMs: cpu,
      waitBeganAt: r.waitBeganAt,
    };
  } finally {
    await stack.cleanup(id);
  }
}

/** Item 2: the floor, libvirt define + start paused + resume alone. */
export async function floorRun(stack: BenchStack, portCount: number): Promise<FloorResult & { id: string }> {
  const { id, ports } = await stack.register('bare', portCount);
  try {
    const r = await floorPowerOn(stack, id, ports);
    const state = await guestState(stack, id);
    if (state !== VIR_DOMAIN_RUNNING) throw new Error(`floor ${id}: guest in state ${state}`);
    return { id, ...r };
  } finally {
    await stack.cleanup(id);
  }
}

// ---------------------------------------------------------------------------
// Item 4: from the network-vif-plugged POST to the domain RUNNING.

export interface EventSample {
  id: string;
  side: Side;
  /** the guest was already started paused and waiting when the deciding POST was sent */
  valid: boolean;
  /** POST (carrying the last awaited port's event) sent -> RESUMED lifecycle event */
  eventToRunningMs: number | null;
  /** POST sent -> its HTTP answer (the workflow side answers after the signal was accepted) */
  postAnsweredMs: number | null;
  /** POST sent -> WorkflowExecutionSignaled (workflow only) */
  postToSignalMs: number | null;
  /** signal -> resumeDomain scheduled / started / completed (workflow only) */
  signalToResumeScheduledMs: number | null;
  resumeQueueMs: number | null;
  resumeExecMs: number | null;
  /** how long the power-on had been waiting when the POST was sent */
  waitBeganBeforePostMs: number | null;
  totalMs: number;
}

/**
 * The ports are "silent" (the agent marks them ACTIVE without notifying); once
 * the guest is paused and the power-on waits, the bench has the Neutron dev
 * server's own NovaNotifier send the batch with both network-vif-plugged events
 * (one POST, as Neutron batches one agent tick), so the interval measured is
 * only the event path: POST -> control plane -> signal -> workflow -> resume on
 * the compute host (workflow), or POST -> receiver -> resume (bare).
 */
export async function eventRun(stack: BenchStack, side: Side, delayMs: number): Promise<EventSample> {
  const { id, ports } = await stack.register(side, 2, { mode: 'silent' });
  const notify = stack.watch
    .next(id, (e) => e.event === VIR_DOMAIN_EVENT_SUSPENDED, 60_000)
    .then(async () => {
      await sleep(delayMs);
      // Sent in one tick: the notifier batches them into one POST.
      for (const tag of ports) {
        stack.notifiers[side].send({ server_uuid: id, name: 'network-vif-plugged', status: 'completed', tag });
      }
    });
  notify.catch(() => undefined);
  try {
    if (side === 'workflow') {
      const { sentAt } = await osStart(stack, id);
      const active = await awaitActive(stack, id, sentAt);
      const h = handle(stack, id);
      await h.result();
      const progress = await h.query<PowerOnProgress>('progress');
      const wait = progress.steps.find((x) => x.name === 'waitForVifPlugged');
      const history = breakdown(await h.fetchHistory());
      const post = sentPost(stack, side, id);
      return eventSample(stack, side, id, post, wait ? Date.parse(wait.startedAt) : null, active.at - sentAt, history);
    }
    const t0 = wall();
    const r = await barePowerOn(stack, id);
    const t1 = wall();
    return eventSample(stack, side, id, sentPost(stack, side, id), r.waitBeganAt, t1 - t0, null);
  } finally {
    await notify.catch(() => undefined);
    await stack.cleanup(id);
  }
}

function sentPost(stack: BenchStack, side: Side, id: string) {
  const batch = stack.notifiers[side].history().find((b) => b.events.some((e) => e.server_uuid === id));
  return batch?.requestId ? (stack.tap.posts.get(batch.requestId) ?? null) : null;
}

function eventSample(
  stack: BenchStack,
  side: Side,
  id: string,
  post: { sentAt: number; answeredAt: number | null } | null,
  waitBeganAt: number | null,
  totalMs: number,
  history: HistoryBreakdown | null,
): EventSample {
  const life = stack.watch.of(id);
  const resumedAt = post ? (life.find((e) => e.event === 4 && e.at >= post.sentAt)?.at ?? null) : null;
  const signal = history && post ? history.signals.find((s) => s.at >= post.sentAt - 5) : undefined;
  const resume = history?.activities.find((a) => a.name === 'resumeDomain');
  return {
    id,
    side,
    // The power-on was already waiting (workflow: its wait step began, workflow clock) when the POST went out.
    valid: post !== null && waitBeganAt !== null && waitBeganAt <= post.sentAt,
    waitBeganBeforePostMs: post && waitBeganAt !== null ? post.sentAt - waitBeganAt : null,
    eventToRunningMs: post && resumedAt !== null ? resumedAt - post.sentAt : null,
    postAnsweredMs: post?.answeredAt ? post.answeredAt - post.sentAt : null,
    postToSignalMs: post && signal ? signal.at - post.sentAt : null,
    signalToResumeScheduledMs: signal && resume ? resume.scheduledAt - signal.at : null,
    resumeQueueMs: resume?.queueMs ?? null,
    resumeExecMs: resume?.execMs ?? null,
    totalMs,
  };
}

// ---------------------------------------------------------------------------
// Item 3: N power-ons requested at once on one host.

export interface ThroughputResult {
  side: Side;
  n: number;
  /** first request sent -> last instance ACTIVE */
  wallMs: number;
  /** per instance: its request -> ACTIVE (workflow: the record's `updated` time; bare: the script's return) */
  perInstanceMs: number[];
  /** per instance: its request -> its guest's STARTED lifecycle event */
  perInstanceRunningMs: number[];
  resources: ReturnType<ResourceSampler['stop']>;
  rssBeforeMiB: Record<string, number>;
  /** CPU seconds of the batch's QEMU processes, from their start to the end of the batch */
  qemuCpuSeconds: number;
  /** per instance, ms: where its time went (workflow: from its history; bare: its own step timing) */
  perInstance: {
    createDomainMs: number | null;
    activityQueueMs?: number;
    activityExecMs?: number;
    workflowTaskQueueMs?: number;
    workflowTaskRunMs?: number;
    startToWorkflowMs?: number;
    /** the highest activity attempt (1: no activity was retried, e.g. after a heartbeat timeout) */
    maxAttempt?: number;
    retried?: { name: string; attempt: number; lastFailure: string | null }[];
  }[];
}

/** CPU time of a running guest's QEMU process (libvirt's pid file). */
function qemuCpu(id: string): number | null {
  try {
    return cpuMs(Number(readFileSync(`/run/libvirt/qemu/${domainName(id)}.pid`, 'utf8').trim()));
  } catch {
    return null;
  }
}

function rssNow(pids: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, Math.round((rssKb(pid) ?? 0) / 102.4) / 10]));
}

export async function throughput(
  stack: BenchStack,
  side: Side,
  n: number,
  pids: Record<string, number>,
): Promise<ThroughputResult> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push((await stack.register(side, 0)).id);
  const rssBeforeMiB = rssNow(pids);
  const sampler = new ResourceSampler(pids);
  const t0 = wall();
  let ends: { sentAt: number; endAt: number }[];
  let resources: ReturnType<ResourceSampler['stop']>;
  let perInstance: ThroughputResult['perInstance'];
  try {
    if (side === 'workflow') {
      const sent = await Promise.all(ids.map((id) => osStart(stack, id)));
      await Promise.all(ids.map((id) => handle(stack, id).result()));
      ends = await Promise.all(
        ids.map(async (id, i) => {
          const server = await stack.getServer(id);
          if (server.status !== 'ACTIVE') throw new Error(`${id}: ${server.status} after its workflow completed`);
          return { sentAt: sent[i]!.sentAt, endAt: Date.parse(server.updated) };
        }),
      );
      resources = sampler.stop();
      perInstance = await Promise.all(
        ids.map(async (id, i) => {
          const h = breakdown(await handle(stack, id).fetchHistory());
          return {
            createDomainMs: h.activities.find((a) => a.name === 'createDomain')?.execMs ?? null,
            ...h.totals,
            startToWorkflowMs: h.startedAt - sent[i]!.sentAt,
            maxAttempt: Math.max(...h.activities.map((a) => a.attempt)),
            retried: h.activities
              .filter((a) => a.attempt > 1)
              .map((a) => ({ name: a.name, attempt: a.attempt, lastFailure: a.lastFailure })),
          };
        }),
      );
    } else {
      const runs = await Promise.all(
        ids.map(async (id) => {
          const sentAt = wall();
          const r = await barePowerOn(stack, id);
          return { sentAt, endAt: wall(), r };
        }),
      );
      resources = sampler.stop();
      ends = runs;
      perInstance = runs.map(({ r }) => ({
        createDomainMs: r.steps.find((x) => x.name === 'createDomain')?.ms ?? null,
      }));
    }
  } catch (err) {
    sampler.stop();
    throw err;
  }
  let qemuCpuMs = 0;
  for (const id of ids) {
    const state = await guestState(stack, id);
    if (state !== VIR_DOMAIN_RUNNING) throw new Error(`throughput ${side} ${id}: guest in state ${state}`);
    qemuCpuMs += qemuCpu(id) ?? 0;
  }
  const result: ThroughputResult = {
    side,
    n,
    wallMs: Math.max(...ends.map((e) => e.endAt)) - t0,
    perInstanceMs: ends.map((e) => e.endAt - e.sentAt),
    perInstanceRunningMs: ids.flatMap((id, i) => {
      const r = stack.watch.runningAt(id, t0);
      return r === null ? [] : [r - ends[i]!.sentAt];
    }),
    resources,
    rssBeforeMiB,
    qemuCpuSeconds: Math.round(qemuCpuMs) / 1000,
    perInstance,
  };
  await mapLimit(ids, 6, (id) => stack.cleanup(id));
  return result;
}

// ---------------------------------------------------------------------------
// Item 5: SIGKILL the compute worker mid-power-on, restart it, time to completion.

export interface RecoverySample {
  id: string;
  mode: 'failpoint createDomain:after' | 'SIGKILL on domain DEFINED';
  heartbeatTimeoutS: number;
  /** os-start sent -> the worker process gone */
  killAfterStartMs: number;
  /** restart (spawn) -> "compute worker started" */
  restartToReadyMs: number;
  /** restart (spawn) -> ACTIVE observed: the time to completion after the restart */
  restartToActiveMs: number;
  /** restart -> the retried createDomain attempt started on the new worker */
  restartToRetryStartMs: number | null;
  createDomainAttempt: number;
  totalMs: number;
}

export async function recoveryRun(
  stack: BenchStack,
  mode: RecoverySample['mode'],
  heartbeatTimeoutS: number,
): Promise<RecoverySample> {
  // The worker that will die: armed with the failpoint, or plain and killed by PID from here.
  await stack.compute.stop();
  await stack.startCompute(mode.startsWith('failpoint') ? { NT_FAILPOINT: 'createDomain:after' } : {});
  const victim = stack.compute;
  const { id } = await stack.register('workflow', 0);
  try {
    if (mode.startsWith('SIGKILL')) {
      void stack.watch
        .next(id, (e) => e.event === VIR_DOMAIN_EVENT_DEFINED, 60_000)
        .then(() => victim.kill('SIGKILL'))
        .catch(() => undefined);
    }
    const { sentAt } = await osStart(stack, id);
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([
      victim.exited,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('the compute worker did not die')), 60_000);
      }),
    ]).finally(() => clearTimeout(timer));
    await victim.stop();
    // Restarted at once, without the failpoint: the same host, the same task queue.
    const { spawnedAt, readyAt } = await stack.startCompute();
    const active = await awaitActive(stack, id, sentAt);
    const h = handle(stack, id);
    await h.result();
    const history = breakdown(await h.fetchHistory());
    const create = history.activities.find((a) => a.name === 'createDomain');
    return {
      id,
      mode,
      heartbeatTimeoutS,
      killAfterStartMs: exit.at - sentAt,
      restartToReadyMs: readyAt - spawnedAt,
      restartToActiveMs: active.at - spawnedAt,
      restartToRetryStartMs: create?.startedAt != null ? create.startedAt - spawnedAt : null,
      createDomainAttempt: create?.attempt ?? 0,
      totalMs: active.at - sentAt,
    };
  } finally {
    await stack.cleanup(id);
  }
}

/** CPU ms per GET /servers/{id} (control plane and bench process), to tell the 10 ms polling's share. */
export async function calibratePolling(stack: BenchStack, n = 200): Promise<Record<string, number>> {
  const { id } = await stack.register('workflow', 0);
  try {
    const pids = stack.pids();
    const cpu0 = cpuSnapshot(pids);
    for (let i = 0; i < n; i++) await stack.getServer(id);
    const d = cpuDelta(cpu0, cpuSnapshot(pids));
    return Object.fromEntries(Object.entries(d).map(([k, v]) => [k, Math.round((v / n) * 1000) / 1000]));
  } finally {
    await stack.cleanup(id);
  }
}
