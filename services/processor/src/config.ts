import { hostname } from 'node:os';
import { z } from 'zod';
import { baseEnvSchema, env, metricsPortEnv, withRules } from '@ncc/service-kit';

/** Everything the checkin processor reads from the environment, parsed once at start-up. */
export const processorEnvSchema = withRules(
  baseEnvSchema.safeExtend({
    /** Health and readiness only (/healthz, /readyz): the processor serves no API. */
    PROCESSOR_PORT: env.port(8084),
    /** GET /metrics (entries by outcome, lag, pending, Redis). */
    METRICS_PORT: metricsPortEnv(9084),
    /** This replica's consumer name in the group; unique per process (default: hostname-pid). */
    PROCESSOR_CONSUMER: z
      .string()
      .regex(/^[A-Za-z0-9._:-]{1,100}$/, 'must be 1-100 characters of A-Z a-z 0-9 . _ : -')
      .default(`${hostname()}-${process.pid}`),
    /** Entries read (or claimed) per batch; a batch is applied concurrently, then acknowledged with one XACK. */
    PROCESSOR_BATCH_SIZE: env.int(100, 1, 10_000),
    /** How long one XREADGROUP waits for new entries; below REDIS_COMMAND_TIMEOUT_MS (the read would time out). */
    PROCESSOR_BLOCK_MS: env.int(500, 10, 60_000),
    /** An entry pending this long on another consumer is taken over (XAUTOCLAIM): that consumer is presumed dead. */
    PROCESSOR_CLAIM_IDLE_MS: env.int(30_000, 100, 86_400_000),
    /** An entry delivered more often than this goes to the dead-letter stream instead of being tried again. */
    PROCESSOR_MAX_DELIVERIES: env.int(5, 1, 1_000),
    /** How often the stream is trimmed (below every group's oldest unacknowledged entry) and the lag read. */
    PROCESSOR_TRIM_INTERVAL_MS: env.int(1_000, 50, 3_600_000),
    /** A consumer idle this long with nothing pending has left: it is removed from the group. */
    PROCESSOR_CONSUMER_IDLE_MS: env.int(600_000, 1_000, 30 * 86_400_000),
    /** Approximate cap of the dead-letter stream (XADD MAXLEN ~). */
    PROCESSOR_DEAD_LETTER_MAXLEN: env.int(100_000, 1),
  }),
  [
    {
      key: 'PROCESSOR_BLOCK_MS',
      message: (c) =>
        `must be shorter than REDIS_COMMAND_TIMEOUT_MS (${String(c.PROCESSOR_BLOCK_MS)} >= ${String(c.REDIS_COMMAND_TIMEOUT_MS)}): a blocking read would time out`,
      broken: (c) =>
        typeof c.PROCESSOR_BLOCK_MS === 'number' && typeof c.REDIS_COMMAND_TIMEOUT_MS === 'number' && c.PROCESSOR_BLOCK_MS >= c.REDIS_COMMAND_TIMEOUT_MS,
    },
    {
      key: 'PROCESSOR_CONSUMER_IDLE_MS',
      message: 'must be longer than PROCESSOR_CLAIM_IDLE_MS: a consumer is only removed once its entries could have been claimed',
      broken: (c) =>
        typeof c.PROCESSOR_CONSUMER_IDLE_MS === 'number' &&
        typeof c.PROCESSOR_CLAIM_IDLE_MS === 'number' &&
        c.PROCESSOR_CONSUMER_IDLE_MS <= c.PROCESSOR_CLAIM_IDLE_MS,
    },
  ],
);

export type ProcessorConfig = z.infer<typeof processorEnvSchema>;
