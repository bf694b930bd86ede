import type { Context } from '@temporalio/activity';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { failpoint } from './failpoints.js';

const HEARTBEAT_EVERY_MS = 1000;

/**
 * Every activity heartbeats while it runs, so the workflow can use a short
 * heartbeat timeout: a worker that died is noticed in seconds, while a slow but
 * alive libvirt call is never mistaken for a dead one and run twice at once.
 * The failpoints `<activity>:before` / `<activity>:after` kill the worker just
 * before an activity runs and just after it finished but before it reported.
 */
export const activityInterceptors: ActivityInterceptorsFactory = (ctx: Context) => ({
  inbound: {
    async execute(input, next) {
      const type = ctx.info.activityType;
      failpoint(`${type}:before`);
      const timer = setInterval(() => ctx.heartbeat(), HEARTBEAT_EVERY_MS);
      try {
        const result = await next(input);
        failpoint(`${type}:after`);
        return result;
      } finally {
        clearInterval(timer);
      }
    },
  },
});
