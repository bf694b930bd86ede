import type { InstanceEvent, PowerOnProgress, ReceivedEvent, StepRecord } from './definitions.js';

// What the workflow has done and seen, kept in workflow memory: the source of
// the progress query, the UI's current details, and the instance action events.
// Pure and deterministic (times come from the workflow clock).

const iso = (ms: number) => new Date(ms).toISOString();

export class PowerOnJournal {
  private readonly stepLog: StepRecord[] = [];
  private readonly compensationLog: StepRecord[] = [];
  private readonly events: ReceivedEvent[] = [];
  private awaited: string[] = [];
  private deadline: number | null = null;
  private outcome: PowerOnProgress['outcome'] = 'running';
  private current = 'starting';

  constructor(private readonly startedAt: number) {}

  recordEvent(event: InstanceEvent, now: number = Date.now()): void {
    this.events.push({ ...event, receivedAt: iso(now) });
  }

  beginStep(name: string, now: number): void {
    this.current = name;
    this.stepLog.push({ name, startedAt: iso(now), finishedAt: null, durationMs: null, result: null });
  }

  endStep(now: number, result: 'Success' | 'Error', err?: unknown): void {
    const s = this.stepLog[this.stepLog.length - 1];
    if (!s) return;
    s.finishedAt = iso(now);
    s.durationMs = now - Date.parse(s.startedAt);
    s.result = result;
    if (err !== undefined) s.error = String(err);
  }

  recordCompensation(name: string, start: number, end: number, result: 'Success' | 'Error', err?: unknown): void {
    this.current = `compensating: ${name}`;
    this.compensationLog.push({
      name,
      startedAt: iso(start),
      finishedAt: iso(end),
      durationMs: end - start,
      result,
      ...(err !== undefined ? { error: String(err) } : {}),
    });
  }

  /** True once beginPowerOn succeeded: only then is there a task_state to revert. */
  begun(): boolean {
    return this.stepLog.some((s) => s.name === 'beginPowerOn' && s.result === 'Success');
  }

  awaitPorts(ports: string[], deadline: number): void {
    this.awaited = [...ports];
    this.deadline = deadline;
  }

  private pluggedWith(status: InstanceEvent['status']): Set<string> {
    return new Set(
      this.events.filter((e) => e.name === 'network-vif-plugged' && e.status === status && e.tag).map((e) => e.tag!),
    );
  }

  receivedPorts(): string[] {
    const done = this.pluggedWith('completed');
    return this.awaited.filter((p) => done.has(p));
  }

  missingPorts(): string[] {
    const done = this.pluggedWith('completed');
    return this.awaited.filter((p) => !done.has(p));
  }

  failedPorts(): string[] {
    const failed = this.pluggedWith('failed');
    return this.awaited.filter((p) => failed.has(p));
  }

  allPlugged(): boolean {
    return this.missingPorts().length === 0;
  }

  anyFailed(): boolean {
    return this.failedPorts().length > 0;
  }

  finish(outcome: 'succeeded' | 'failed'): void {
    this.outcome = outcome;
    this.current = outcome === 'succeeded' ? 'done' : 'failed';
  }

  steps(): StepRecord[] {
    return this.stepLog.map((s) => ({ ...s }));
  }

  progress(): PowerOnProgress {
    return {
      step: this.current,
      steps: this.steps(),
      portsAwaited: [...this.awaited],
      portsReceived: this.receivedPorts(),
      timerDeadline: this.deadline === null ? null : iso(this.deadline),
      compensations: this.compensationLog.map((s) => ({ ...s })),
      events: this.events.map((e) => ({ ...e })),
      outcome: this.outcome,
    };
  }

  /** Markdown for the Temporal UI: what the workflow is doing or waiting for. */
  details(): string {
    const lines = [`**Step:** ${this.current}`];
    if (this.current === 'waitForVifPlugged' && this.deadline !== null) {
      const got = this.receivedPorts().length;
      lines.push(
        `Waiting for network-vif-plugged on ${this.awaited.length - got} of ${this.awaited.length} ports, ` +
          `timeout ${iso(this.deadline)}`,
      );
      const missing = this.missingPorts();
      if (missing.length) lines.push(`Missing: ${missing.join(', ')}`);
    }
    const done = this.stepLog.filter((s) => s.result !== null);
    if (done.length) {
      lines.push('', '| step | result | ms |', '|---|---|---|');
      for (const s of done) lines.push(`| ${s.name} | ${s.result} | ${s.durationMs} |`);
    }
    if (this.compensationLog.length) {
      lines.push('', '**Compensations:** ' + this.compensationLog.map((c) => `${c.name} (${c.result})`).join(', '));
    }
    lines.push('', `Started ${iso(this.startedAt)}`);
    return lines.join('\n');
  }
}
