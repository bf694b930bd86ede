import { proxyActivities } from '@temporalio/workflow';
import type { PowerOnInput, PowerOnResult } from '../../src/workflows/definitions.js';
import { PowerOnInstance as current } from '../../src/workflows/power-on-instance.js';

// A workflow change made WITHOUT patched(): one more activity before the steps.
// Replaying a recorded history against it must fail with a nondeterminism error.
const { getNetworkInfo } = proxyActivities<{ getNetworkInfo(x: unknown): Promise<unknown> }>({
  taskQueue: 'control-plane',
  startToCloseTimeout: '10s',
});

export async function PowerOnInstance(input: PowerOnInput): Promise<PowerOnResult> {
  await getNetworkInfo({ instanceUuid: input.instanceUuid });
  return current(input);
}
