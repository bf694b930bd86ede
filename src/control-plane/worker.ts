import { Worker, type NativeConnection } from '@temporalio/worker';
import { createControlPlaneActivities, type ControlPlaneDeps } from '../activities/control-plane.js';
import { activityInterceptors } from '../activity-interceptors.js';
import type { Config } from '../config.js';
import { workflowsPath } from '../temporal.js';
import { CONTROL_PLANE_TASK_QUEUE } from '../workflows/definitions.js';

/** Workflows and control-plane activities run together, beside the instance store. */
export function createControlPlaneWorker(
  config: Config,
  connection: NativeConnection,
  deps: ControlPlaneDeps,
): Promise<Worker> {
  return Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: CONTROL_PLANE_TASK_QUEUE,
    workflowsPath,
    activities: createControlPlaneActivities(deps),
    interceptors: { activity: [activityInterceptors] },
  });
}
