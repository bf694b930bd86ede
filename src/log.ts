import { pino } from 'pino';

// JSON logs; callers bind instanceUuid, workflowId and requestId as child fields.
export const logger = pino({
  level: process.env.NT_LOG_LEVEL ?? 'info',
  base: { service: process.env.NT_SERVICE ?? 'nova-temporal' },
  redact: { paths: ['token', '*.token', 'headers["x-auth-token"]', 'password', '*.password'], censor: '[redacted]' },
});
export type Logger = typeof logger;
