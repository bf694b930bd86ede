import type { Client } from '@temporalio/client';
import { powerOnWorkflowId, type PowerOnProgress, type StepRecord } from '../workflows/definitions.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function line(s: StepRecord): string {
  const mark = s.result === 'Success' ? 'ok ' : s.result === 'Error' ? 'ERR' : '...';
  const ms = s.durationMs === null ? '' : `${s.durationMs} ms`;
  return `  [${mark}] ${s.name.padEnd(18)} ${ms.padStart(9)}${s.error ? `  ${s.error}` : ''}`;
}

/**
 * Follows a power-on through the workflow's `progress` query, printing each step
 * once when it finishes (and the wait for vif events while it lasts).
 */
export async function watchPowerOn(
  client: Client,
  instanceUuid: string,
  print: (s: string) => void,
  pollMs = 200,
): Promise<PowerOnProgress> {
  const handle = client.workflow.getHandle(powerOnWorkflowId(instanceUuid));
  let printed = 0;
  let printedComp = 0;
  let waitingShown = '';
  for (;;) {
    const p = await handle.query<PowerOnProgress>('progress');
    const done = p.steps.filter((s) => s.result !== null);
    for (; printed < done.length; printed++) print(line(done[printed]!));
    for (; printedComp < p.compensations.length; printedComp++) {
      print(`  [undo] ${line(p.compensations[printedComp]!).slice(8)}`);
    }
    if (p.step === 'waitForVifPlugged') {
      const w = `  ...    waiting for network-vif-plugged: ${p.portsReceived.length}/${p.portsAwaited.length} ports, timeout ${p.timerDeadline}`;
      if (w !== waitingShown) print((waitingShown = w));
    }
    if (p.outcome !== 'running') return p;
    const desc = await handle.describe();
    if (desc.status.name !== 'RUNNING') return handle.query<PowerOnProgress>('progress');
    await sleep(pollMs);
  }
}
