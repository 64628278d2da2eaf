import type { z } from 'zod';
import { type BaseConfig, loadConfig, type ProcessConfig } from './config.js';
import { ConfigError } from './env.js';
import { currentRequestId } from './context.js';
import { createLogger, type Logger } from './logger.js';
import { closeRedis, createRedisClient, type RedisClient, waitForRedis } from './redis.js';
import type { ServiceApp } from './app.js';
import { type RunningServer, startServer } from './http.js';
import { ServiceMetrics, startMetricsServer } from './metrics.js';
import { stopTracing } from './tracing.js';

export interface ServiceParts<C> {
  config: C;
  logger: Logger;
  redis: RedisClient;
  /** This process's metrics; runService serves them on METRICS_PORT. */
  metrics: ServiceMetrics;
}

/** What every service process declares, with Redis or without. */
interface ProcessDefinition<S extends z.ZodType<ProcessConfig>> {
  name: string;
  schema: S;
  port: (config: z.infer<S>) => number;
  /** METRICS_PORT: GET /metrics on its own listener, or 'off' (nothing measured or served). */
  metricsPort: (config: z.infer<S>) => number | 'off';
  /** Runs after config and before Redis: refuse unsafe settings, warn about demo ones. */
  checkConfig?: (config: z.infer<S>, logger: Logger) => void;
  listeningMessage: (port: number) => string;
}

export interface ServiceDefinition<S extends z.ZodType<BaseConfig>> extends ProcessDefinition<S> {
  /** The service's composition root: builds everything once; `close` runs after the HTTP drain, before Redis closes. */
  createApp: (parts: ServiceParts<z.infer<S>>) => ServiceApp | Promise<ServiceApp>;
}

/**
 * A service that uses no Redis (the gateway): no client is made, waited for or closed, and its parts
 * have none. Its schema extends processEnvSchema, so Redis settings are not even read. Everything
 * else — config, logger, metrics, the crash-only handling, the graceful stop — is the same.
 */
export interface ServiceWithoutRedisDefinition<S extends z.ZodType<ProcessConfig>> extends ProcessDefinition<S> {
  redis: false;
  createApp: (parts: Omit<ServiceParts<z.infer<S>>, 'redis'>) => ServiceApp | Promise<ServiceApp>;
}

/**
 * Exit code of a process that stopped because of a programmer error: an uncaught exception, an
 * unhandled promise rejection, or a failed start-up. Not 0, so that a supervisor (compose
 * `restart: on-failure`, `pnpm start`) starts a fresh process. A graceful stop on SIGTERM/SIGINT exits 0.
 */
export const CRASH_EXIT_CODE = 1;

/**
 * After an uncaught error the process is gone by SHUTDOWN_TIMEOUT_MS + this margin at the latest,
 * whatever still runs: the drain takes at most SHUTDOWN_TIMEOUT_MS, closing Redis at most 1 s, and
 * the rest is slack for the app's close() and the last log lines.
 */
export const CRASH_EXIT_MARGIN_MS = 2000;

/** Time the log transports get to write the last lines before process.exit. */
const FLUSH_MS = 50;

export function createServiceLogger(name: string, config: Pick<BaseConfig, 'NODE_ENV' | 'LOG_LEVEL' | 'LOG_FORMAT'>): Logger {
  return createLogger({ service: name, level: config.LOG_LEVEL, json: (config.LOG_FORMAT ?? (config.NODE_ENV === 'production' ? 'json' : 'text')) === 'json' });
}

/** The stack of an Error, or the thrown value as text; never throws itself (a thrown value may be anything). */
function describeThrown(value: unknown): string {
  try {
    if (value instanceof Error) return value.stack ?? `${value.name}: ${value.message}`;
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/**
 * The whole life of a service process: config (exit 1 naming each bad key), logger, Redis (retrying
 * with backoff until REDIS_STARTUP_TIMEOUT_MS; none with `redis: false`), HTTP, and a graceful stop on
 * SIGTERM/SIGINT (exit 0).
 *
 * Crash-only on programmer errors: request errors go to the Express error handler (a 500, the process
 * serves on), but a truly uncaught error — a throw from a timer or event callback, a promise nobody
 * handles — leaves the process in an undefined state (Node's documentation). It is logged with its
 * stack and request id, the server stops accepting, requests in flight get up to SHUTDOWN_TIMEOUT_MS
 * (the same stop as SIGTERM), and the process exits with CRASH_EXIT_CODE for its supervisor to restart
 * it. A second uncaught error during that drain exits at once; in any case the process is gone after
 * SHUTDOWN_TIMEOUT_MS + CRASH_EXIT_MARGIN_MS. Before the server listens, an uncaught error exits 1 at once.
 *
 * This is the only place that reads process.env or installs process handlers.
 */
export function runService<S extends z.ZodType<BaseConfig>>(definition: ServiceDefinition<S>): Promise<void>;
export function runService<S extends z.ZodType<ProcessConfig>>(definition: ServiceWithoutRedisDefinition<S>): Promise<void>;
export async function runService(
  definition: ServiceDefinition<z.ZodType<BaseConfig>> | ServiceWithoutRedisDefinition<z.ZodType<ProcessConfig>>,
): Promise<void> {
  // Typed as the larger of the two: without Redis (`redis: false`) the Redis keys are absent, and only
  // the Redis branch below reads them.
  let config: BaseConfig;
  try {
    config = loadConfig(definition.schema, process.env) as BaseConfig;
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

  let redis: RedisClient | undefined;
  let running: RunningServer | undefined;
  let metricsServer: RunningServer | undefined;
  let service: ServiceApp | undefined;
  let stopping = false;
  let crashed = false;

  /** Exit with `code` once the last log lines are written; nothing else is waited for. */
  const exitNow = (code: number): void => {
    process.exitCode = code;
    setTimeout(() => process.exit(code), FLUSH_MS);
  };

  /** Stop accepting, let requests in flight finish (at most SHUTDOWN_TIMEOUT_MS), close Redis, exit. */
  const stop = async (announcement: string): Promise<void> => {
    if (stopping || !running) return;
    stopping = true;
    // Stop accepting before saying so: whoever reads the line may rely on new connections being refused.
    const closed = running.close(config.SHUTDOWN_TIMEOUT_MS);
    logger.info(announcement);
    let failed = false;
    try {
      // Responses that never end by themselves (server-sent events) end now, or the drain would wait
      // the whole SHUTDOWN_TIMEOUT_MS for them.
      service?.beginShutdown?.();
    } catch (err) {
      failed = true;
      logger.error('Clean-up on shutdown failed.', { error: describeThrown(err) });
    }
    await closed;
    // Scraped until the API has drained: the last scrape still sees the requests of the drain.
    await metricsServer?.close(1000);
    try {
      await service?.close();
    } catch (err) {
      failed = true;
      logger.error('Clean-up on shutdown failed.', { error: describeThrown(err) });
    }
    if (redis) await closeRedis(redis);
    // The spans of the last requests, at most 2 s.
    await stopTracing();
    // Read only now: an uncaught error during a SIGTERM drain still makes the exit a crash.
    const code = crashed || failed ? CRASH_EXIT_CODE : 0;
    logger.info(code === 0 ? 'Shutdown complete.' : `Shutdown complete; exiting with code ${code}.`);
    process.exitCode = code;
    // Give the logger's transports a tick to flush.
    setTimeout(() => process.exit(code), 20).unref();
  };

  // Installed before anything can fail asynchronously (the Redis wait, createApp), so that start-up
  // errors exit non-zero too. A rejected top-level await in the service's main module arrives here as
  // an uncaught exception whose origin is 'unhandledRejection'.
  const onUncaught = (message: 'Uncaught exception.' | 'Unhandled promise rejection.', thrown: unknown): void => {
    try {
      logger.error(message, { requestId: currentRequestId(), error: describeThrown(thrown) });
    } catch {
      process.stderr.write(`${definition.name}: ${message} ${describeThrown(thrown)}\n`);
    }
    if (crashed) {
      // The drain itself is failing: waiting for it could hang; a fresh process is the way out.
      logger.error(`Another uncaught error while shutting down after one; exiting now with code ${CRASH_EXIT_CODE}.`);
      exitNow(CRASH_EXIT_CODE);
      return;
    }
    crashed = true;
    process.exitCode = CRASH_EXIT_CODE;
    if (!running) {
      logger.error(`Uncaught error during start-up; exiting with code ${CRASH_EXIT_CODE}.`);
      redis?.disconnect();
      exitNow(CRASH_EXIT_CODE);
      return;
    }
    const deadline = config.SHUTDOWN_TIMEOUT_MS + CRASH_EXIT_MARGIN_MS;
    // Unref'd: it must not keep an otherwise finished process alive (process.exitCode is set already).
    setTimeout(() => {
      logger.error(
        `Shutdown after the uncaught error did not finish within ${deadline} ms (SHUTDOWN_TIMEOUT_MS + ${CRASH_EXIT_MARGIN_MS} ms); exiting now with code ${CRASH_EXIT_CODE}.`,
      );
      exitNow(CRASH_EXIT_CODE);
    }, deadline).unref();
    if (stopping) {
      logger.error(`Uncaught error during the graceful shutdown; it goes on, then the process exits with code ${CRASH_EXIT_CODE}.`);
      return;
    }
    void stop(
      `Shutting down after an uncaught error: no new connections; requests in flight get up to ${config.SHUTDOWN_TIMEOUT_MS} ms (SHUTDOWN_TIMEOUT_MS); then exit with code ${CRASH_EXIT_CODE} for a restart.`,
    );
  };
  process.on('unhandledRejection', (reason) => onUncaught('Unhandled promise rejection.', reason));
  process.on('uncaughtException', (err, origin) => onUncaught(origin === 'unhandledRejection' ? 'Unhandled promise rejection.' : 'Uncaught exception.', err));

  const metricsPort = definition.metricsPort(config);
  const metrics = new ServiceMetrics(metricsPort !== 'off');
  if (!('redis' in definition)) {
    redis = createRedisClient(config, logger);
    metrics.watchRedis(redis, { up: true });
    const started = Date.now();
    try {
      await waitForRedis(redis, config.REDIS_STARTUP_TIMEOUT_MS);
    } catch {
      logger.error(`Redis was not reachable within ${config.REDIS_STARTUP_TIMEOUT_MS} ms (REDIS_STARTUP_TIMEOUT_MS); exiting.`);
      redis.disconnect();
      process.exit(1);
    }
    if (Date.now() - started > 1000) logger.info('Redis is reachable now.');
  }

  try {
    service = await ('redis' in definition
      ? definition.createApp({ config, logger, metrics })
      : definition.createApp({ config, logger, redis: redis!, metrics }));
  } catch (err) {
    logger.error('Start-up failed.', { error: describeThrown(err) });
    redis?.disconnect();
    exitNow(CRASH_EXIT_CODE);
    return;
  }
  try {
    running = await startServer(service.app, definition.port(config), config.HOST, config);
  } catch (err) {
    logger.error(`Could not listen on port ${definition.port(config)}: ${err instanceof Error ? err.message : String(err)}`);
    redis?.disconnect();
    process.exit(1);
  }
  if (metricsPort !== 'off') {
    try {
      metricsServer = await startMetricsServer(metrics, metricsPort, config.HOST);
    } catch (err) {
      logger.error(`Could not listen on METRICS_PORT ${metricsPort}: ${err instanceof Error ? err.message : String(err)}`);
      running.server.close();
      redis?.disconnect();
      process.exit(1);
    }
  }
  if (crashed) {
    // An uncaught error while the server was starting: it already decided to exit.
    running.server.close();
    metricsServer?.server.close();
    return;
  }

  process.on('SIGTERM', () => void stop('SIGTERM received, shutting down gracefully.'));
  process.on('SIGINT', () => void stop('SIGINT received, shutting down gracefully.'));
  // Announced only once the signal handlers are in place: a supervisor (or test) that signals as soon
  // as it reads this line gets a graceful stop, not Node's default kill.
  if (metricsServer) logger.info(`Metrics at ${metricsServer.url}/metrics (METRICS_PORT).`);
  logger.info(definition.listeningMessage(running.port));
}
