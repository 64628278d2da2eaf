import { z } from 'zod';
import { baseEnvSchema, crossSiteEnvShape, env, metricsPortEnv } from '@ncc/service-kit';
import { sessionEnvShape } from '@ncc/session';

/** Everything the checkin receiver reads from the environment, parsed once at start-up. */
export const checkinEnvSchema = baseEnvSchema.safeExtend({
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
});

export type CheckinConfig = z.infer<typeof checkinEnvSchema>;
