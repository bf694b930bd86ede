import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { BenchStack } from './lib/stack.js';
import { persistenceUse, scrape, type PersistenceUse } from './lib/temporal-metrics.js';
import { ratio, summarize } from './lib/stats.js';
import { log, sleep, wall } from './lib/util.js';
import { writeReport, type BenchReport } from './report.js';
import {
  POLL_MS,
  bareRun,
  calibratePolling,
  eventRun,
  floorRun,
  recoveryRun,
  throughput,
  workflowRun,
  type BareSample,
  type EventSample,
  type RecoverySample,
  type ThroughputResult,
  type WorkflowSample,
} from './scenarios.js';
import type { FloorResult } from './floor.js';

// `make bench`: the cost of durability. See docs/benchmarks.md for what each
// figure means; counts can be lowered for a quick try (NT_BENCH_QUICK=1).

const quick = process.env.NT_BENCH_QUICK === '1';
const int = (name: string, dflt: number, quickValue: number): number => {
  const v = process.env[name];
  if (v !== undefined && v !== '') {
    if (!/^\d+$/.test(v)) throw new Error(`${name}: expected a whole number, got ${JSON.stringify(v)}`);
    return Number(v);
  }
  return quick ? quickValue : dflt;
};

const settings = {
  runs0: int('NT_BENCH_RUNS', 20, 3),
  runs2: int('NT_BENCH_RUNS_2PORT', 20, 3),
  warmup: int('NT_BENCH_WARMUP', 1, 1),
  throughputN: int('NT_BENCH_THROUGHPUT', 50, 8),
  eventRuns: int('NT_BENCH_EVENT_RUNS', 10, 2),
  eventDelayMs: int('NT_BENCH_EVENT_DELAY_MS', 800, 800),
  recoveryRuns: int('NT_BENCH_RECOVERY_RUNS', 3, 1),
  /** host_heartbeat_timeout of the control plane for everything but the short-timeout recovery runs (config default) */
  heartbeatS: int('NT_BENCH_HEARTBEAT', 10, 10),
  recoveryHeartbeatS: int('NT_BENCH_RECOVERY_HEARTBEAT', 3, 3),
  defaultHeartbeatRuns: int('NT_BENCH_DEFAULT_HEARTBEAT_RUNS', 1, 0),
  /**
   * Each guest's firmware (SeaBIOS POST) burns about 3 s of CPU on this nested-KVM host:
   * its QEMU threads get this nice value when they start, so 50 booting guests do not
   * starve the power-on path on 2 cores. NT_BENCH_GUEST_NICE=off leaves them alone.
   */
  guestNice: process.env.NT_BENCH_GUEST_NICE === 'off' ? null : int('NT_BENCH_GUEST_NICE', 19, 19),
  /** Above this elapsed time the optional default-heartbeat recovery run is skipped. */
  budgetS: int('NT_BENCH_BUDGET_S', 480, 480),
};

function sh(file: string, args: string[]): string {
  try {
    return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

function machine() {
  const cpus = os.cpus();
  const dirty = sh('git', ['status', '--porcelain']);
  return {
    cores: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
    kernel: os.release(),
    node: process.version,
    kvm: existsSync('/dev/kvm'),
    libvirt: sh('libvirtd', ['--version']),
    qemu: sh('qemu-system-x86_64', ['--version']).split('\n')[0] ?? '',
    ovs: sh('ovs-vsctl', ['--version']).split('\n')[0] ?? '',
    temporalCli: sh('bash', ['-c', '"$(bash scripts/temporal-cli.sh 2>/dev/null)" --version']),
    commit: sh('git', ['rev-parse', 'HEAD']) || 'unknown',
    commitSubject: sh('git', ['log', '-1', '--format=%s']),
    worktreeChanges: dirty === '' ? 0 : dirty.split('\n').length,
  };
}

/** NT_BENCH_ONLY=single,events,throughput,recovery: run only those parts (for trying the harness). */
const only = new Set((process.env.NT_BENCH_ONLY ?? 'single,events,throughput,recovery').split(','));

const loadavg = () => os.loadavg().map((x) => Math.round(x * 100) / 100);

/** Runs fns in rotating order per iteration, so slow drift of the machine hits each kind alike. */
async function interleaved(n: number, fns: (() => Promise<void>)[], settle: () => Promise<void>): Promise<void> {
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < fns.length; k++) {
      await fns[(i + k) % fns.length]!();
      await settle();
    }
  }
}

async function main(): Promise<void> {
  const t0 = wall();
  const startedAt = new Date().toISOString();
  const env = machine();
  const loadBefore = loadavg();
  log(`${env.cores} cores, load ${loadBefore.join(' ')}, commit ${env.commit.slice(0, 12)}${quick ? ' (QUICK)' : ''}`);
  if ((loadBefore[0] ?? 0) > env.cores * 0.5) {
    log(`warning: the machine is busy (load ${loadBefore[0]} on ${env.cores} cores); figures will be noisy`);
  }

  const stack = new BenchStack();
  let failed = false;
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) {
      log(`${sig} again: cleaning up now`);
      void stack.stop().finally(() => process.exit(130));
      return;
    }
    interrupted = true;
    stack.interrupted = true;
    log(`${sig}: finishing the current power-on, then cleaning up (again to clean up at once)`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const w: Record<'0' | '2', WorkflowSample[]> = { '0': [], '2': [] };
  const b: Record<'0' | '2', BareSample[]> = { '0': [], '2': [] };
  const f: Record<'0' | '2', (FloorResult & { id: string })[]> = { '0': [], '2': [] };
  const events: EventSample[] = [];
  const tput: ThroughputResult[] = [];
  const recovery: RecoverySample[] = [];
  const notes: string[] = [];
  let cpuPerGet: Record<string, number> = {};
  let temporalErrors: Record<string, number> = {};
  const persistence: Record<string, PersistenceUse> = {};
  /** Runs fn and records the Temporal server's persistence use per power-on (`per` of them) meanwhile. */
  const measured = async (key: string, per: number, fn: () => Promise<void>) => {
    const before = await scrape(stack.temporalMetricsUrl);
    await fn();
    if (per > 0) persistence[key] = persistenceUse(before, await scrape(stack.temporalMetricsUrl), per);
  };
  const phases: Record<string, number> = {};
  const phase = async (name: string, fn: () => Promise<void>) => {
    const s = wall();
    log(`${name} ...`);
    await fn();
    phases[name] = Math.round(wall() - s) / 1000;
    log(`${name} done in ${phases[name]} s (total ${Math.round((wall() - t0) / 1000)} s)`);
  };

  try {
    await phase('start', () =>
      stack.start({ hostHeartbeatTimeout: settings.heartbeatS, guestNice: settings.guestNice }),
    );
    const settle = () => stack.settle();

    await phase('warmup', async () => {
      for (let i = 0; i < settings.warmup; i++) {
        await workflowRun(stack, 0);
        await bareRun(stack, 0);
        await floorRun(stack, 0);
        await workflowRun(stack, 2);
        await bareRun(stack, 2);
        await floorRun(stack, 2);
        await settle();
      }
    });

    cpuPerGet = await calibratePolling(stack);

    for (const ports of only.has('single') ? ([0, 2] as const) : []) {
      const key = String(ports) as '0' | '2';
      const n = ports === 0 ? settings.runs0 : settings.runs2;
      await phase(`single power-on, ${ports} ports, ${n} runs each`, () =>
        measured(`single${ports}`, n, () =>
          interleaved(
            n,
            [
              async () => void w[key].push(await workflowRun(stack, ports)),
              async () => void b[key].push(await bareRun(stack, ports)),
              async () => void f[key].push(await floorRun(stack, ports)),
            ],
            settle,
          ),
        ),
      );
    }

    await phase(`event to resume, ${settings.eventRuns} runs each`, () =>
      interleaved(
        only.has('events') ? settings.eventRuns : 0,
        [
          async () => void events.push(await eventRun(stack, 'workflow', settings.eventDelayMs)),
          async () => void events.push(await eventRun(stack, 'bare', settings.eventDelayMs)),
        ],
        settle,
      ),
    );

    const pids = stack.pids();
    if (only.has('throughput')) {
      const before = stack.temporalLogErrors();
      await phase(`throughput, ${settings.throughputN} at once (workflow)`, async () => {
        await measured('throughput', settings.throughputN, async () => {
          tput.push(await throughput(stack, 'workflow', settings.throughputN, pids));
        });
      });
      await sleep(1000);
      const after = stack.temporalLogErrors();
      temporalErrors = Object.fromEntries(
        Object.entries(after)
          .map(([k, n]) => [k, n - (before[k] ?? 0)] as const)
          .filter(([, n]) => n > 0),
      );
      await phase(`throughput, ${settings.throughputN} at once (bare)`, async () => {
        tput.push(await throughput(stack, 'bare', settings.throughputN, pids));
      });
    }

    if (settings.defaultHeartbeatRuns > 0 && only.has('recovery')) {
      const elapsedS = (wall() - t0) / 1000;
      const estimateS = settings.defaultHeartbeatRuns * (settings.heartbeatS + 5);
      if (elapsedS + estimateS > settings.budgetS) {
        notes.push(
          `The recovery run with the heartbeat timeout of ${settings.heartbeatS} s was skipped: ` +
            `${Math.round(elapsedS)} s had passed and it needs about ${estimateS} s more (budget ${settings.budgetS} s).`,
        );
      } else {
        await phase(`recovery, heartbeat timeout ${settings.heartbeatS} s (the default)`, async () => {
          for (let i = 0; i < settings.defaultHeartbeatRuns; i++) {
            recovery.push(await recoveryRun(stack, 'failpoint createDomain:after', settings.heartbeatS));
          }
        });
      }
    }
    if (only.has('recovery') && settings.recoveryRuns > 0) {
      await phase(`recovery, heartbeat timeout ${settings.recoveryHeartbeatS} s`, async () => {
        // The control plane passes host_heartbeat_timeout in each workflow's input.
        await stack.stopControlPlane();
        await stack.startControlPlane({ NT_HOST_HEARTBEAT_TIMEOUT: String(settings.recoveryHeartbeatS) });
        for (let i = 0; i < settings.recoveryRuns; i++) {
          recovery.push(await recoveryRun(stack, 'failpoint createDomain:after', settings.recoveryHeartbeatS));
          recovery.push(await recoveryRun(stack, 'SIGKILL on domain DEFINED', settings.recoveryHeartbeatS));
        }
      });
    }
  } catch (err) {
    failed = true;
    if (!interrupted) {
      log(`FAILED: ${(err as Error).stack ?? String(err)}`);
      stack.showLogs();
    }
  } finally {
    await phase('cleanup', () => stack.stop()).catch((err: unknown) => {
      failed = true;
      log(`cleanup failed: ${(err as Error).message}`);
    });
  }
  if (interrupted) process.exit(130);
  if (failed) process.exit(1);

  const totalS = Math.round(wall() - t0) / 1000;
  const report: BenchReport = buildReport();
  const written = await writeReport(report);
  log(`wrote ${written.json} and ${written.markdown}; make bench took ${totalS} s of harness time`);

  function buildReport(): BenchReport {
    const single = (k: '0' | '2') => {
      const wf = summarize(w[k].map((s) => s.totalMs));
      const bare = summarize(b[k].map((s) => s.totalMs));
      const floor = summarize(f[k].map((s) => s.totalMs));
      return {
        workflow: wf,
        workflowCommitted: summarize(w[k].map((s) => s.committedMs)),
        bare,
        floor,
        ratios: {
          workflowOverBare: { p50: ratio(wf.p50, bare.p50), p95: ratio(wf.p95, bare.p95) },
          workflowOverFloor: { p50: ratio(wf.p50, floor.p50), p95: ratio(wf.p95, floor.p95) },
          bareOverFloor: { p50: ratio(bare.p50, floor.p50), p95: ratio(bare.p95, floor.p95) },
        },
        floorParts: {
          define: summarize(f[k].map((s) => s.defineMs)),
          startPaused: summarize(f[k].map((s) => s.startPausedMs)),
          resume: summarize(f[k].map((s) => s.resumeMs)),
        },
      };
    };
    return {
      startedAt,
      totalSeconds: totalS,
      phases,
      machine: { ...env, loadBefore, loadAfter: loadavg() },
      settings: {
        ...settings,
        quick,
        pollMs: POLL_MS,
        neutronAgentPollMs: 100,
        guestsReniced: stack.watch?.reniced ?? 0,
      },
      notes,
      cpuPerGetMs: cpuPerGet,
      persistence,
      temporalErrorsInBatch: temporalErrors,
      single: { '0': single('0'), '2': single('2') },
      samples: { workflow: w, bare: b, floor: f },
      events,
      throughput: tput,
      recovery,
    };
  }
}

/** `node dist/bench/main.js --report bench/results/<file>.json`: the tables again from a run's JSON. */
async function reportOnly(file: string): Promise<void> {
  const report = JSON.parse(readFileSync(file, 'utf8')) as BenchReport;
  const written = await writeReport(report, false);
  log(`wrote ${written.markdown} from ${file}`);
}

(process.argv[2] === '--report' && process.argv[3] ? reportOnly(process.argv[3]) : main()).catch((err: unknown) => {
  log(`bench failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
