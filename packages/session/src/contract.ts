import { type z } from 'zod';
import { env } from '@ncc/service-kit';

/** The names every ncc service and every redis-cli user relies on. Changing one logs everybody out. */
export const SESSION_PREFIX = 'ncc:session:';
export const COOKIE_NAME = 'checkinapp';
export const DEFAULT_TTL_S = 86_400;
export const DEFAULT_ANONYMOUS_TTL_S = 1_800;

/**
 * The one public development secret in the repository. Used only when SESSION_SECRET is unset outside
 * production; a production start without SESSION_SECRET, or with this one, is refused (sessionSettings).
 */
/** Per user, a sorted set of their live sessions (decision 012). */
export const USER_SESSIONS_PREFIX = 'ncc:user-sessions:';
export const userSessionsKey = (userId: number): string => `${USER_SESSIONS_PREFIX}${userId}`;

export const DEVELOPMENT_SECRET = 'ncc-development-secret-not-for-production';

/**
 * Session settings, shared by both services' config schemas. Merge into a service schema with
 * `baseEnvSchema.safeExtend(sessionEnvShape)`.
 */
export const sessionEnvShape = {
  /** Comma separated; the first signs new cookies, the rest still verify old ones (rotation). */
  SESSION_SECRET: env.list().optional(),
  SESSION_TTL_S: env.int(DEFAULT_TTL_S, 1, 365 * 86_400),
  /** Idle lifetime of an anonymous session (GET /visits without a login); at most SESSION_TTL_S. */
  SESSION_ANONYMOUS_TTL_S: env.int(DEFAULT_ANONYMOUS_TTL_S, 1, 365 * 86_400),
  /** Absolute lifetime from login, enforced on the server whatever the activity. */
  SESSION_ABSOLUTE_TIMEOUT_S: env.int(7 * 86_400, 1, 365 * 86_400),
  /** Live sessions per user; a login past it ends the user's least recently active session. */
  MAX_SESSIONS_PER_USER: env.int(50, 1, 10_000),
  /** The idle TTL is refreshed at most once per this interval per session and process. */
  SESSION_TOUCH_INTERVAL_S: env.int(60, 0, 86_400),
  /** Defaults to true when NODE_ENV=production. */
  COOKIE_SECURE: env.bool.optional(),
  /** Use the `__Host-` prefixed cookie name (needs Secure; both services behind one host). */
  COOKIE_HOST_PREFIX: env.bool.default(false),
};

export type SessionEnv = z.infer<z.ZodObject<typeof sessionEnvShape>> & { NODE_ENV: string };

export interface SessionSettings {
  prefix: string;
  cookieName: string;
  secrets: string[];
  /** Idle lifetime of a logged-in session. */
  ttlSeconds: number;
  /** Idle lifetime of an anonymous one (never longer than ttlSeconds). */
  anonymousTtlSeconds: number;
  absoluteTimeoutSeconds: number;
  maxSessionsPerUser: number;
  touchIntervalSeconds: number;
  secure: boolean;
}

/** Validate what a schema cannot see alone (rules that depend on NODE_ENV) and resolve defaults. */
export function sessionSettings(config: SessionEnv): SessionSettings {
  const production = config.NODE_ENV === 'production';
  const secrets = config.SESSION_SECRET ?? [];
  const problems: string[] = [];
  if (production) {
    if (secrets.length === 0) problems.push('SESSION_SECRET is required when NODE_ENV=production');
    secrets.forEach((s, i) => {
      if (s === DEVELOPMENT_SECRET) problems.push(`SESSION_SECRET entry ${i + 1} is the public development secret`);
      else if (s.length < 32) problems.push(`SESSION_SECRET entry ${i + 1} is shorter than 32 characters`);
    });
  }
  const secure = config.COOKIE_SECURE ?? production;
  if (config.COOKIE_HOST_PREFIX && !secure) problems.push('COOKIE_HOST_PREFIX=true needs secure cookies (COOKIE_SECURE=true)');
  if (problems.length > 0) throw new Error(`Invalid session configuration: ${problems.join('; ')}.`);
  return {
    prefix: SESSION_PREFIX,
    cookieName: config.COOKIE_HOST_PREFIX ? `__Host-${COOKIE_NAME}` : COOKIE_NAME,
    secrets: secrets.length > 0 ? secrets : [DEVELOPMENT_SECRET],
    ttlSeconds: config.SESSION_TTL_S,
    anonymousTtlSeconds: Math.min(config.SESSION_ANONYMOUS_TTL_S, config.SESSION_TTL_S),
    absoluteTimeoutSeconds: config.SESSION_ABSOLUTE_TIMEOUT_S,
    maxSessionsPerUser: config.MAX_SESSIONS_PER_USER,
    touchIntervalSeconds: config.SESSION_TOUCH_INTERVAL_S,
    secure,
  };
}

/**
 * Start-up check for a service: refuses unsafe settings (throws) and says so when the public
 * development secret is in use, so nobody ships it by accident.
 */
export function checkSessionConfig(config: SessionEnv, logger: { warn(message: string): unknown }): SessionSettings {
  const settings = sessionSettings(config);
  if (!config.SESSION_SECRET || config.SESSION_SECRET.length === 0) {
    logger.warn('SESSION_SECRET is not set: signing cookies with the public development secret. Never run like this in production.');
  }
  return settings;
}

/** The cookie attributes, identical for setting and clearing (a clear with other attributes is ignored). */
export function cookieOptions(settings: SessionSettings) {
  return {
    httpOnly: true,
    sameSite: 'lax' as const,
    path: '/',
    secure: settings.secure,
  };
}

/** The idle TTL a session's key gets on every write and refresh: a day logged in, half an hour anonymous. */
export function idleTtlSeconds(
  settings: Pick<SessionSettings, 'ttlSeconds' | 'anonymousTtlSeconds'>,
  session: { userId?: unknown } | null | undefined,
): number {
  return typeof session?.userId === 'number' ? settings.ttlSeconds : settings.anonymousTtlSeconds;
}

export function sessionKey(settings: Pick<SessionSettings, 'prefix'>, sid: string): string {
  return settings.prefix + sid;
}
