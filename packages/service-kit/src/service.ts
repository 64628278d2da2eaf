import type { Express } from 'express';
import type { z } from 'zod';
import { type BaseConfig, ConfigError, loadConfig } from './config.js';
import { currentRequestId } from './context.js';
import { createLogger, type Logger } from './logger.js';
import { closeRedis, createRedisClient, type RedisClient, waitForRedis } from './redis.js';
import { type RunningServer, startServer } from './http.js';

export interface ServiceParts<C> {
  config: C;
  logger: Logger;
  redis: RedisClient;
}

export interface ServiceDefinition<S extends z.ZodType<BaseConfig>> {
  name: string;
  schema: S;
  port: (config: z.infer<S>) => number;
  /** Runs after config and before Redis: refuse unsafe settings, warn about demo ones. */
  checkConfig?: (config: z.infer<S>, logger: Logger) => void;
  createApp: (parts: ServiceParts<z.infer<S>>) => Express | Promise<Express>;
  listeningMessage: (port: number) => string;
  /** Extra clean-up on shutdown (worker pools and the like), before Redis closes. */
  onClose?: () => Promise<void>;
}

export function createServiceLogger(name: string, config: Pick<BaseConfig, 'NODE_ENV' | 'LOG_LEVEL'>): Logger {
  return createLogger({ service: name, level: config.LOG_LEVEL, json: config.NODE_ENV === 'production' || process.env['LOG_FORMAT'] === 'json' });
}

/**
 * The whole life of a service process: config (exit 1 naming each bad key), logger, Redis (retrying
 * with backoff until REDIS_STARTUP_TIMEOUT_MS), HTTP, and a graceful stop on SIGTERM/SIGINT.
 * This is the only place that reads process.env or installs process handlers.
 */
export async function runService<S extends z.ZodType<BaseConfig>>(definition: ServiceDefinition<S>): Promise<void> {
  let config: z.infer<S>;
  try {
    config = loadConfig(definition.schema, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${definition.name}: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const logger = createServiceLogger(definition.name, config);
  try {
    definition.checkConfig?.(config, logger);
  } catch (err) {
    logger.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
    await new Promise((r) => setTimeout(r, 50));
    process.exit(1);
  }

  process.on('unhandledRejection', (reason) => {
    logger.error('Unhandled promise rejection.', { requestId: currentRequestId(), error: reason instanceof Error ? reason.stack : String(reason) });
  });
  process.on('uncaughtException', (err) => {
    // A request error must never take the service down; log it with its request and keep serving.
    logger.error('Uncaught exception.', { requestId: currentRequestId(), error: err.stack ?? String(err) });
  });

  const redis = createRedisClient(config, logger);
  const started = Date.now();
  try {
    await waitForRedis(redis, config.REDIS_STARTUP_TIMEOUT_MS);
  } catch {
    logger.error(`Redis was not reachable within ${config.REDIS_STARTUP_TIMEOUT_MS} ms (REDIS_STARTUP_TIMEOUT_MS); exiting.`);
    redis.disconnect();
    process.exit(1);
  }
  if (Date.now() - started > 1000) logger.info('Redis is reachable now.');

  const app = await definition.createApp({ config, logger, redis });
  let running: RunningServer;
  try {
    running = await startServer(app, definition.port(config), config.HOST);
  } catch (err) {
    logger.error(`Could not listen on port ${definition.port(config)}: ${err instanceof Error ? err.message : String(err)}`);
    redis.disconnect();
    process.exit(1);
  }

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    // Stop accepting before saying so: whoever reads the line may rely on new connections being refused.
    const closed = running.close(config.SHUTDOWN_TIMEOUT_MS);
    logger.info(`${signal} received, shutting down gracefully.`);
    await closed;
    await definition.onClose?.();
    await closeRedis(redis);
    logger.info('Shutdown complete.');
    // Give the logger's transports a tick to flush.
    setTimeout(() => process.exit(0), 20).unref();
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  // Announced only once the signal handlers are in place: a supervisor (or test) that signals as soon
  // as it reads this line gets a graceful stop, not Node's default kill.
  logger.info(definition.listeningMessage(running.port));
}
