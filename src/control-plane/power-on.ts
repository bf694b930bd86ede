import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import type { Config } from '../config.js';
import type { InstanceRecord } from '../store/instance-store.js';
import {
  ComputeHostKey,
  CONTROL_PLANE_TASK_QUEUE,
  InstanceUuidKey,
  POWER_ON_WORKFLOW_TYPE,
  powerOnWorkflowId,
  type PowerOnInput,
} from '../workflows/definitions.js';

/** Starts PowerOnInstance for an instance, or joins the one already running. */
export async function startPowerOn(
  client: Client,
  config: Config,
  instance: InstanceRecord,
  requestId: string,
): Promise<{ workflowId: string; runId: string }> {
  const input: PowerOnInput = {
    instanceUuid: instance.uuid,
    requestId,
    host: instance.host,
    vifPluggingTimeout: config.vif_plugging_timeout,
    vifPluggingIsFatal: config.vif_plugging_is_fatal,
    waitForVifPlugged: config.wait_for_vif_plugged,
    hostUnavailableTimeout: config.host_unavailable_timeout,
    hostHeartbeatTimeout: config.host_heartbeat_timeout,
  };
  const handle = await client.workflow.start(POWER_ON_WORKFLOW_TYPE, {
    workflowId: powerOnWorkflowId(instance.uuid),
    taskQueue: CONTROL_PLANE_TASK_QUEUE,
    args: [input],
    // A second os-start while one runs joins it; after it closed, a new run may start.
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    typedSearchAttributes: [
      { key: InstanceUuidKey, value: instance.uuid },
      { key: ComputeHostKey, value: instance.host },
    ],
    staticSummary: `Power on ${instance.name} (${instance.uuid}) on ${instance.host}`,
    staticDetails:
      `**Instance:** ${instance.uuid}\n\n**Host:** ${instance.host}\n\n**Request:** ${requestId}\n\n` +
      `vif_plugging_timeout ${config.vif_plugging_timeout}s, fatal ${config.vif_plugging_is_fatal}, ` +
      `wait_for_vif_plugged ${config.wait_for_vif_plugged}`,
  });
  return { workflowId: handle.workflowId, runId: handle.firstExecutionRunId };
}
