import { patched, proxyActivities } from '@temporalio/workflow';
import type { PowerOnInput, PowerOnResult } from '../../src/workflows/definitions.js';
import { PowerOnInstance as current } from '../../src/workflows/power-on-instance.js';

// The same change behind patched(): old histories take the old path on replay,
// new runs take the new one.
const { getNetworkInfo } = proxyActivities<{ getNetworkInfo(x: unknown): Promise<unknown> }>({
  taskQueue: 'control-plane',
  startToCloseTimeout: '10s',
});

export async function PowerOnInstance(input: PowerOnInput): Promise<PowerOnResult> {
  if (patched('extra-network-lookup')) await getNetworkInfo({ instanceUuid: input.instanceUuid });
  return current(input);
}
