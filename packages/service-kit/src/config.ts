import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError, type CrossKeyRule, env, withRules } from './env.js';
import { redisEnvShape, redisRules } from './redis.js';

/** Listen on every interface: the default where the process does not sign with the development secret. */
export const ALL_INTERFACES = '0.0.0.0';
/** Loopback: the default bind of a process that signs cookies with the public development secret. */
export const LOOPBACK = '127.0.0.1';

/** Default HTTP server timeouts (HTTP_*_TIMEOUT_MS); startServer uses them when given none. */
export const DEFAULT_HTTP_TIMEOUTS = { requestMs: 30_000, headersMs: 20_000, keepAliveMs: 65_000 } as const;

/** The keys of baseEnvSchema, before the rules between them. */
const baseEnvObject = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: z.enum(['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly']).default('info'),
  ...redisEnvShape,
  SHUTDOWN_TIMEOUT_MS: env.int(10_000, 0, 600_000),
  /** `json` for one JSON object per line (the default when NODE_ENV=production), else readable text. */
  LOG_FORMAT: z.enum(['json', 'text']).optional(),
  /**
   * Address to listen on. Defaults to every interface (containers need it), except for a service that
   * signs cookies with the public development secret (SESSION_SECRET unset): that one defaults to
   * 127.0.0.1 (see loadConfig), and an explicit non-loopback HOST makes it warn (checkListenAddress).
   */
  HOST: z.string().min(1).default(ALL_INTERFACES),
  /** Exact number of reverse proxies in front of the service (0 = none). Never "true". */
  TRUST_PROXY: env.int(0, 0, 10),
  /**
   * The whole request — headers and body — must arrive within this; otherwise 408 and the connection is
   * closed (a client trickling its body is cut here). Counted from the request's first byte.
   */
  HTTP_REQUEST_TIMEOUT_MS: env.int(DEFAULT_HTTP_TIMEOUTS.requestMs, 100, 3_600_000),
  /** The request line and headers must arrive within this (at most HTTP_REQUEST_TIMEOUT_MS); otherwise 408. */
  HTTP_HEADERS_TIMEOUT_MS: env.int(DEFAULT_HTTP_TIMEOUTS.headersMs, 100, 3_600_000),
  /**
   * Idle keep-alive connections: advertised as `Keep-Alive: timeout=…`; Node 20 closes them one fixed
   * second later (its own grace, so a client honouring the advertised value never races the close).
   * Longer than typical proxy idle timeouts (60 s), so a proxy never reuses a socket we just closed.
   */
  HTTP_KEEP_ALIVE_TIMEOUT_MS: env.int(DEFAULT_HTTP_TIMEOUTS.keepAliveMs, 100, 3_600_000),
});

/** Node refuses a headers timeout longer than the request timeout: say so at start-up instead. */
const httpRules: readonly CrossKeyRule<{ HTTP_REQUEST_TIMEOUT_MS: unknown; HTTP_HEADERS_TIMEOUT_MS: unknown }>[] = [
  {
    key: 'HTTP_HEADERS_TIMEOUT_MS',
    message: (c) =>
      `must not be longer than HTTP_REQUEST_TIMEOUT_MS (${String(c.HTTP_HEADERS_TIMEOUT_MS)} > ${String(c.HTTP_REQUEST_TIMEOUT_MS)}): the headers are part of the request`,
    broken: (c) =>
      typeof c.HTTP_REQUEST_TIMEOUT_MS === 'number' && typeof c.HTTP_HEADERS_TIMEOUT_MS === 'number' && c.HTTP_HEADERS_TIMEOUT_MS > c.HTTP_REQUEST_TIMEOUT_MS,
  },
];

/**
 * Settings every ncc service shares: Redis, logging, sessions, shutdown, HTTP server, with the rules
 * between them. A service adds its own keys with `.safeExtend()`, which keeps the rules.
 */
export const baseEnvSchema = withRules(baseEnvObject, [...redisRules, ...httpRules]);

export type BaseConfig = z.infer<typeof baseEnvSchema>;

/**
 * The keys runService itself reads — logging, HOST, the shutdown and HTTP server timeouts — with their
 * rule, and nothing about Redis: what a service that uses no Redis (the gateway; runService's
 * `redis: false`) extends, so that a Redis setting can neither be required of it nor refuse to start it.
 */
export const processEnvSchema = withRules(
  baseEnvObject.pick({
    NODE_ENV: true,
    LOG_LEVEL: true,
    LOG_FORMAT: true,
    HOST: true,
    SHUTDOWN_TIMEOUT_MS: true,
    HTTP_REQUEST_TIMEOUT_MS: true,
    HTTP_HEADERS_TIMEOUT_MS: true,
    HTTP_KEEP_ALIVE_TIMEOUT_MS: true,
  }),
  httpRules,
);

export type ProcessConfig = z.infer<typeof processEnvSchema>;

/** An address only this machine can reach: 127.0.0.0/8, ::1 (also as [::1] or IPv4-mapped) or `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1');
  return h === 'localhost' || h === '::1' || /^(?:::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * True when cookies would be signed with the public development secret: SESSION_SECRET unset or empty
 * (exactly when the session package falls back to DEVELOPMENT_SECRET). Anyone who can reach such a
 * process can forge a session for any user.
 */
export function signsWithDevelopmentSecret(config: { SESSION_SECRET?: readonly string[] | undefined }): boolean {
  return !config.SESSION_SECRET || config.SESSION_SECRET.length === 0;
}

/**
 * Start-up check for a service that signs sessions: warns when it listens beyond loopback (an explicit
 * HOST such as 0.0.0.0) with the public development secret. Without HOST it listens on 127.0.0.1 then.
 */
export function checkListenAddress(config: { HOST: string; SESSION_SECRET?: readonly string[] | undefined }, logger: { warn(message: string): unknown }): void {
  if (!signsWithDevelopmentSecret(config) || isLoopbackHost(config.HOST)) return;
  logger.warn(
    `HOST=${config.HOST} listens beyond this machine while SESSION_SECRET is not set: cookies are signed with the public development secret, so anyone who can reach this port can forge a session. Set SESSION_SECRET, or unset HOST to listen on ${LOOPBACK} only.`,
  );
}

/**
 * The `_FILE` convention of Docker secrets: for any key of the schema, `<KEY>_FILE=/path` sets it to
 * that file's content (one trailing newline dropped), so a secret need not sit in the environment or
 * in a compose file. Setting both is refused; so is a file that cannot be read or is empty. Messages
 * name the key and the path, never the content.
 */
function readFileSettings(keys: readonly string[], cleaned: Record<string, string>): { key: string; message: string }[] {
  const issues: { key: string; message: string }[] = [];
  for (const key of keys) {
    const path = cleaned[`${key}_FILE`];
    if (path === undefined) continue;
    if (cleaned[key] !== undefined) {
      issues.push({ key: `${key}_FILE`, message: `set either ${key} or ${key}_FILE, not both` });
      continue;
    }
    let content: string;
    try {
      content = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      issues.push({ key: `${key}_FILE`, message: `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})` });
      continue;
    }
    if (content === '') issues.push({ key: `${key}_FILE`, message: `${path} is empty` });
    else cleaned[key] = content;
  }
  return issues;
}

/**
 * Parse `source` (normally process.env) once, at start-up. Empty strings count as unset so that
 * `FOO=` in a compose file means "use the default".
 */
export function loadConfig<S extends z.ZodType>(schema: S, source: Record<string, string | undefined>): z.infer<S> {
  const cleaned: Record<string, string> = {};
  for (const [key, value] of Object.entries(source)) {
    if (value !== undefined && value !== '') cleaned[key] = value;
  }
  const shape: Record<string, unknown> = schema instanceof z.ZodObject ? schema.shape : {};
  const fileIssues = readFileSettings(Object.keys(shape), cleaned);
  const result = schema.safeParse(cleaned);
  if (result.success && fileIssues.length === 0) {
    const data = result.data as { HOST?: string; SESSION_SECRET?: readonly string[] };
    // A service that signs cookies with the public development secret listens on loopback unless HOST
    // is set: whoever reaches it can forge sessions. Compose/containers pass a real secret (or HOST).
    if ('HOST' in shape && 'SESSION_SECRET' in shape && cleaned['HOST'] === undefined && signsWithDevelopmentSecret(data)) data.HOST = LOOPBACK;
    return result.data;
  }
  throw new ConfigError([
    ...(result.success
      ? []
      : result.error.issues.map((issue) => ({
          key: issue.path.length > 0 ? issue.path.join('.') : 'environment',
          message: issue.message,
        }))),
    ...fileIssues,
  ]);
}
