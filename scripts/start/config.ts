import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { DEFAULT_REDIS_URL, env, loadConfig, metricsPortEnv, redisUrlSchema } from '@ncc/service-kit';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** What `pnpm start` reads from the environment; everything else is passed through to the services. */
export const startEnvSchema = z.object({
  /** Used when a Redis answers there; otherwise a local redis-server is started. */
  REDIS_URL: redisUrlSchema.default(DEFAULT_REDIS_URL),
  /** Port of the redis-server `pnpm start` starts itself when REDIS_URL does not answer. */
  NCC_REDIS_PORT: env.port(6379).refine((p) => p > 0, { message: 'must be a fixed port (1-65535)' }),
  /** Append-only data of that redis-server: sessions and users survive a restart of `pnpm start`. */
  NCC_DATA_DIR: z
    .string()
    .min(1)
    .default(join(ROOT, '.data', 'redis')),
  /** The users to seed when the demo user is missing (same format as `pnpm seed --file`). */
  NCC_SEED_FILE: z
    .string()
    .min(1)
    .default(join(ROOT, 'services', 'auth', 'data', 'demo-users.json')),
  AUTH_PORT: env.port(8083),
  CHECKIN_PORT: env.port(8082),
  /** The checkin processor's /healthz and /readyz (it serves no API). */
  PROCESSOR_PORT: env.port(8084),
  /** The gateway (services/gateway): the web page, auth and checkin on one origin for the browser. */
  GATEWAY_PORT: env.port(8080),
  /** Each service's METRICS_PORT (GET /metrics), or off; one key each, as the three share this environment. */
  AUTH_METRICS_PORT: metricsPortEnv(9083),
  CHECKIN_METRICS_PORT: metricsPortEnv(9082),
  PROCESSOR_METRICS_PORT: metricsPortEnv(9084),
  /** The services bind to loopback unless told otherwise: they run with a development secret and demo passwords. */
  HOST: z.string().min(1).default('127.0.0.1'),
});

export type StartConfig = z.infer<typeof startEnvSchema>;

export function loadStartConfig(source: NodeJS.ProcessEnv): StartConfig {
  return loadConfig(startEnvSchema, source);
}
