import { z } from 'zod';

/** Raised when the environment does not satisfy a service's schema; names every bad key. */
export class ConfigError extends Error {
  constructor(readonly issues: readonly { key: string; message: string }[]) {
    super(`Invalid configuration:\n${issues.map((i) => `  - ${i.key}: ${i.message}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes' || v === 'on');

export const env = {
  bool,
  port: (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback),
  int: (fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
    z.coerce.number().int().min(min).max(max).default(fallback),
  /** Comma separated list; blanks dropped. */
  list: () =>
    z
      .string()
      .transform((s) =>
        s
          .split(',')
          .map((x) => x.trim())
          .filter((x) => x.length > 0),
      ),
};

const redisUrl = z
  .string()
  .default('redis://127.0.0.1:6379')
  .refine(
    (value) => {
      try {
        const url = new URL(value);
        if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') return false;
        if (!url.hostname) return false;
        const db = url.pathname.replace(/^\//, '');
        return db === '' || /^\d{1,2}$/.test(db);
      } catch {
        return false;
      }
    },
    { message: 'must be a redis:// or rediss:// URL such as redis://user:pass@host:6379/0' },
  );

/** Settings every ncc service shares: Redis, logging, sessions, shutdown. */
export const baseEnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: z.enum(['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly']).default('info'),
  REDIS_URL: redisUrl,
  REDIS_COMMAND_TIMEOUT_MS: env.int(1000, 50, 60_000),
  REDIS_CONNECT_TIMEOUT_MS: env.int(1000, 50, 60_000),
  /** How long start-up waits for Redis before giving up with exit code 1; 0 waits forever. */
  REDIS_STARTUP_TIMEOUT_MS: env.int(30_000, 0),
  SHUTDOWN_TIMEOUT_MS: env.int(10_000, 0, 600_000),
  HOST: z.string().min(1).default('0.0.0.0'),
});

export type BaseConfig = z.infer<typeof baseEnvSchema>;

/**
 * Parse `source` (normally process.env) once, at start-up. Empty strings count as unset so that
 * `FOO=` in a compose file means "use the default".
 */
export function loadConfig<S extends z.ZodType>(schema: S, source: Record<string, string | undefined>): z.infer<S> {
  const cleaned: Record<string, string> = {};
  for (const [key, value] of Object.entries(source)) {
    if (value !== undefined && value !== '') cleaned[key] = value;
  }
  const result = schema.safeParse(cleaned);
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((issue) => ({
      key: issue.path.length > 0 ? issue.path.join('.') : 'environment',
      message: issue.message,
    })),
  );
}
