import { z } from 'zod';
import { baseEnvSchema, crossSiteEnvShape, env, metricsPortEnv } from '@ncc/service-kit';
import { sessionEnvShape } from '@ncc/session';
import { BCRYPT_COST } from './domain/passwords.js';

/** Everything the auth service reads from the environment, parsed once at start-up. */
export const authEnvSchema = baseEnvSchema.safeExtend({
  ...sessionEnvShape,
  ...crossSiteEnvShape,
  AUTH_PORT: env.port(8083),
  METRICS_PORT: metricsPortEnv(9083),
  /** bcrypt cost for new hashes and for the dummy compare; below 10 is refused. */
  BCRYPT_ROUNDS: env.int(BCRYPT_COST.default, BCRYPT_COST.min, BCRYPT_COST.max),
  /** Brute-force limits (docs/decisions/010-login-rate-limits.md): failures per (email, IP) per window… */
  LOGIN_MAX_FAILS_PER_EMAIL_IP: env.int(10, 1, 100_000),
  LOGIN_FAILS_EMAIL_IP_WINDOW_S: env.int(900, 1, 30 * 86_400),
  /** …and failures per client IP (any email) per window. */
  LOGIN_MAX_FAILS_PER_IP_DAY: env.int(100, 1, 1_000_000),
  LOGIN_FAILS_IP_WINDOW_S: env.int(86_400, 1, 30 * 86_400),
  /** Anonymous sessions (GET /visits without a cookie) one client IP may create per window (decision 010). */
  VISITS_MAX_NEW_SESSIONS_PER_IP: env.int(60, 1, 1_000_000),
  VISITS_NEW_SESSIONS_WINDOW_S: env.int(600, 1, 86_400),
  /** Salt for the session-id hash in audit entries; unset = random per process. */
  AUDIT_HASH_SALT: z.string().min(16).optional(),
});

export type AuthConfig = z.infer<typeof authEnvSchema>;
