import { z } from 'zod';
import { baseEnvSchema, crossSiteEnvShape, env, metricsPortEnv, withRules } from '@ncc/service-kit';
import { sessionEnvShape } from '@ncc/session';

/** Everything the checkin receiver reads from the environment, parsed once at start-up. */
export const checkinEnvSchema = withRules(
  baseEnvSchema.safeExtend({
    ...sessionEnvShape,
    ...crossSiteEnvShape,
    CHECKIN_PORT: env.port(8082),
    METRICS_PORT: metricsPortEnv(9082),
    /** "off" accepts checkins without a session — demos only; refused when NODE_ENV=production. */
    CHECKIN_AUTH: z.enum(['on', 'off']).default('on'),
    CHECKIN_DUPLICATE_WINDOW_S: env.int(86_400, 1, 365 * 86_400),
    /** …among the user's this many most recent checkins: the bound on duplicate-check memory per user. */
    CHECKIN_DUPLICATE_MAX_PER_USER: env.int(1_000, 1, 1_000_000),
    /** Accepted checkins per user per sliding window, shared by every replica (decision 022). */
    CHECKIN_RATE_LIMIT_PER_USER: env.int(30, 1, 1_000_000),
    CHECKIN_RATE_LIMIT_WINDOW_S: env.int(60, 1, 86_400),
    /** The stream's hard cap: at this length checkins get 503 (back-pressure) instead of being trimmed away unprocessed. */
    CHECKIN_STREAM_MAXLEN: env.int(1_000_000, 1),
    /**
     * GET /api/checkins/live: a `: ping` comment this often on every open stream — below the idle
     * timeout of any proxy in front (nginx's proxy_read_timeout is 60 s) — and the viewer's session is
     * read again each time, so a revoked session stops receiving checkins within this.
     */
    LIVE_HEARTBEAT_MS: env.int(15_000, 50, 300_000),
    /** How long the live view's one XREAD waits for new entries; below REDIS_COMMAND_TIMEOUT_MS (the read would time out). */
    LIVE_BLOCK_MS: env.int(500, 10, 60_000),
    /** Open live streams per process; one more gets 503 + Retry-After (each holds a connection and a heartbeat timer). */
    LIVE_MAX_SUBSCRIBERS: env.int(1_000, 1, 100_000),
  }),
  [
    {
      key: 'LIVE_BLOCK_MS',
      message: (c) =>
        `must be shorter than REDIS_COMMAND_TIMEOUT_MS (${String(c.LIVE_BLOCK_MS)} >= ${String(c.REDIS_COMMAND_TIMEOUT_MS)}): a blocking read would time out`,
      broken: (c) => typeof c.LIVE_BLOCK_MS === 'number' && typeof c.REDIS_COMMAND_TIMEOUT_MS === 'number' && c.LIVE_BLOCK_MS >= c.REDIS_COMMAND_TIMEOUT_MS,
    },
  ],
);

export type CheckinConfig = z.infer<typeof checkinEnvSchema>;
