import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import { wall } from './util.js';

// Child processes of the bench (Temporal dev server, control plane, compute
// worker): each is the process itself (no shell in between), so its PID is the
// one a SIGKILL kills, and each is stopped by that PID.

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** wall() when the harness saw the exit */
  at: number;
}

const CLK_TCK = 100;

export class ChildProc {
  readonly pid: number;
  readonly startedAt = wall();
  readonly exited: Promise<Exit>;
  private exit: Exit | null = null;
  private readonly lineWaiters: { text: string; resolve: (t: number) => void }[] = [];
  private readonly log: WriteStream;
  private tail = '';

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    logPath: string,
  ) {
    if (child.pid === undefined) throw new Error(`${name}: spawn failed`);
    this.pid = child.pid;
    this.log = createWriteStream(logPath, { flags: 'a' });
    const onData = (chunk: Buffer) => {
      this.log.write(chunk);
      this.scan(chunk.toString('utf8'));
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal, at: wall() };
        resolve(this.exit);
      });
    });
  }

  static start(name: string, file: string, args: string[], env: NodeJS.ProcessEnv, logPath: string): ChildProc {
    // Its own session, as `make up` starts each part with setsid (and as separate services
    // run): with autogroup scheduling each session gets its own CPU share.
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    return new ChildProc(name, child, logPath);
  }

  get alive(): boolean {
    return this.exit === null;
  }

  private scan(text: string): void {
    const lines = (this.tail + text).split('\n');
    this.tail = lines.pop() ?? '';
    const at = wall();
    for (const line of lines) {
      for (let i = this.lineWaiters.length - 1; i >= 0; i--) {
        const w = this.lineWaiters[i]!;
        if (line.includes(w.text)) {
          this.lineWaiters.splice(i, 1);
          w.resolve(at);
        }
      }
    }
  }

  /** Resolves with wall() of the first output line containing `text` from now on; rejects on exit or timeout. */
  waitForLine(text: string, timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no "${text}" within ${timeoutMs} ms`)), timeoutMs);
      this.lineWaiters.push({
        text,
        resolve: (t) => {
          clearTimeout(timer);
          resolve(t);
        },
      });
      void this.exited.then((e) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} (pid ${this.pid}) exited (${e.code ?? e.signal}) before "${text}"`));
      });
    });
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.alive) process.kill(this.pid, signal);
  }

  /** SIGTERM, then SIGKILL after graceMs. */
  async stop(graceMs = 10_000): Promise<Exit> {
    if (this.alive) {
      this.kill('SIGTERM');
      const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    await new Promise<void>((resolve) => this.log.end(resolve));
    return this.exit!;
  }

  rssKb(): number | null {
    return rssKb(this.pid);
  }
}

export function rssKb(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** utime + stime of a process in ms, or null when it is gone. */
export function cpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return null;
  }
}

/** Busy and total jiffies of the whole machine (/proc/stat). */
export function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

/**
 * Samples RSS and CPU of named processes every intervalMs while a phase runs:
 * peak RSS, and CPU seconds used during the phase.
 */
export class ResourceSampler {
  private readonly peaks = new Map<string, number>();
  private readonly cpuStart = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private readonly machineStart = machineCpu();

  constructor(
    private readonly pids: Record<string, number>,
    intervalMs = 100,
  ) {
    for (const [name, pid] of Object.entries(pids)) {
      const c = cpuMs(pid);
      if (c !== null) this.cpuStart.set(name, c);
    }
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  private sample(): void {
    for (const [name, pid] of Object.entries(this.pids)) {
      const kb = rssKb(pid);
      if (kb !== null && kb > (this.peaks.get(name) ?? 0)) this.peaks.set(name, kb);
    }
  }

  stop(): {
    peakRssMiB: Record<string, number>;
    cpuSeconds: Record<string, number>;
    machineBusyPercent: number;
  } {
    clearInterval(this.timer);
    this.sample();
    const m = machineCpu();
    const cpuSeconds: Record<string, number> = {};
    for (const [name, pid] of Object.entries(this.pids)) {
      const c = cpuMs(pid);
      const s = this.cpuStart.get(name);
      if (c !== null && s !== undefined) cpuSeconds[name] = Math.round(c - s) / 1000;
    }
    return {
      peakRssMiB: Object.fromEntries([...this.peaks].map(([k, v]) => [k, Math.round(v / 102.4) / 10])),
      cpuSeconds,
      machineBusyPercent:
        Math.round(((m.busy - this.machineStart.busy) / (m.total - this.machineStart.total)) * 1000) / 10,
    };
  }
}

/** CPU ms used by each named process between two snapshots. */
export function cpuSnapshot(pids: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuMs(pid) ?? NaN]));
}

export function cpuDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.keys(before).map((k) => [k, (after[k] ?? NaN) - (before[k] ?? NaN)]));
}
