import { parseArgs, type ParseArgsConfig } from 'node:util';
import {
  baseEnvSchema,
  closeRedis,
  ConfigError,
  createRedisClient,
  createServiceLogger,
  describeRedisTarget,
  loadConfig,
  type RedisClient,
  waitForRedis,
} from '@ncc/service-kit';
import { authEnvSchema } from '../config.js';
import { UsersRepository } from '../data-access/users-repository.js';
import { BcryptHasher } from '../domain/passwords.js';

const cliEnvSchema = baseEnvSchema.safeExtend({ BCRYPT_ROUNDS: authEnvSchema.shape.BCRYPT_ROUNDS });

/** How every admin command fails: `<name>: <message>` on stderr, exit 1. */
export function exitWith(name: string, message: string): never {
  process.stderr.write(`${name}: ${message}\n`);
  process.exit(1);
}

type FlagOptions = NonNullable<ParseArgsConfig['options']>;

/** The command's flags (node:util parseArgs, unknown flags refused), before anything touches Redis; bad flags exit 1 with the usage. */
export function parseFlags<const O extends FlagOptions>(
  name: string,
  options: O,
  usage: string,
): ReturnType<typeof parseArgs<{ options: O; strict: true }>>['values'] {
  try {
    return parseArgs({ options, strict: true }).values;
  } catch (err) {
    return exitWith(name, `${err instanceof Error ? err.message : String(err)}\n${usage}`);
  }
}

/** Config, Redis and the users repository for a one-shot admin command; exits 1 with a clear message on failure. */
export async function runCli(
  name: string,
  body: (deps: { repository: UsersRepository; hasher: BcryptHasher; redis: RedisClient }) => Promise<void>,
): Promise<void> {
  let config;
  try {
    config = loadConfig(cliEnvSchema, process.env);
  } catch (err) {
    exitWith(name, err instanceof ConfigError ? err.message : String(err));
  }
  const logger = createServiceLogger(name, { ...config, LOG_LEVEL: 'error' });
  const redis = createRedisClient(config, logger);
  try {
    await waitForRedis(redis, 5000).catch(() => {
      throw new Error(`cannot reach Redis at ${describeRedisTarget(config)} (set REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS, or start redis-server).`);
    });
    await body({ repository: new UsersRepository(redis), hasher: new BcryptHasher(config.BCRYPT_ROUNDS), redis });
    await closeRedis(redis);
  } catch (err) {
    redis.disconnect();
    exitWith(name, err instanceof Error ? err.message : String(err));
  }
}
