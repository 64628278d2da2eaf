import { Redis, type Cluster, type RedisOptions } from 'ioredis';
import type { Logger } from './logger.js';

export type RedisClient = Redis | Cluster;

export interface RedisSettings {
  REDIS_URL: string;
  REDIS_COMMAND_TIMEOUT_MS: number;
  REDIS_CONNECT_TIMEOUT_MS: number;
}

/** Reconnect delays: quick at first, capped at 2 s, with jitter so a fleet does not reconnect in step. */
export function reconnectDelay(attempt: number): number {
  const base = Math.min(2000, 50 * 2 ** Math.min(attempt, 6));
  return Math.round(base / 2 + Math.random() * (base / 2));
}

/**
 * ioredis defaults queue commands while disconnected and retry each one 20 times: a request then waits
 * ~10–70 s when Redis is down and forever when it hangs. These settings fail a command within about
 * `REDIS_COMMAND_TIMEOUT_MS` instead, so the service can answer 503 at once and recover by itself.
 */
export function failFastOptions(settings: Omit<RedisSettings, 'REDIS_URL'>, logger: Logger): RedisOptions {
  let lastLogged = 0;
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: settings.REDIS_COMMAND_TIMEOUT_MS,
    connectTimeout: settings.REDIS_CONNECT_TIMEOUT_MS,
    // A command in flight when the connection dropped may already have run. Resending it after the
    // reconnect ran the checkin script twice: the client got 422 DUPLICATE_CHECKIN for the checkin its
    // own request had just stored. Not resending leaves it to the command timeout: a 503, retry-safe.
    autoResendUnfulfilledCommands: false,
    enableReadyCheck: true,
    lazyConnect: false,
    retryStrategy: (attempt) => {
      const delay = reconnectDelay(attempt);
      const now = Date.now();
      if (attempt === 1 || now - lastLogged > 5000) {
        lastLogged = now;
        logger.warn(`Redis unreachable, reconnecting (attempt ${attempt}, next in ${delay} ms).`);
      }
      return delay;
    },
  };
}

export function createRedisClient(settings: RedisSettings, logger: Logger): RedisClient {
  const client = new Redis(settings.REDIS_URL, failFastOptions(settings, logger));
  watchClient(client, logger);
  return client;
}

/** Errors are reported through the retry log; an 'error' listener keeps ioredis from printing its own. */
export function watchClient(client: RedisClient, logger: Logger): void {
  let wasReady = false;
  let lastError = '';
  client.on('ready', () => {
    if (wasReady) logger.info('Redis connection restored.');
    wasReady = true;
  });
  client.on('error', (err: Error) => {
    const text = `${err.name}: ${err.message}`;
    if (text !== lastError) logger.debug('Redis client error.', { error: text });
    lastError = text;
  });
  client.on('end', () => logger.debug('Redis connection ended.'));
}

/** Resolves once the client is ready; rejects after `timeoutMs` (0 = wait forever). */
export function waitForRedis(client: RedisClient, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const onReady = (): void => {
      if (timer) clearTimeout(timer);
      resolve();
    };
    client.once('ready', onReady);
    if (timeoutMs > 0) {
      timer = setTimeout(() => {
        client.off('ready', onReady);
        reject(new Error(`Redis was not reachable within ${timeoutMs} ms.`));
      }, timeoutMs);
    }
  });
}

const UNAVAILABLE =
  /Connection is closed|Stream isn't writeable|enableOfflineQueue|Command timed out|max retries|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENOTFOUND|^LOADING|^CLUSTERDOWN|^TRYAGAIN|^READONLY|^MASTERDOWN|^NOREPLICAS|None of startup nodes|Failed to refresh slots|All sentinels are unreachable|Cluster isn't ready/i;

/** True for errors that mean "Redis cannot answer right now" rather than "this request is wrong". */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'MaxRetriesPerRequestError') return true;
  return UNAVAILABLE.test(err.message);
}

/** Readiness probe: a PING that fails fast with the client's command timeout. */
export async function redisAnswers(client: RedisClient): Promise<boolean> {
  try {
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  }
}

/** Close politely, then hard if Redis does not answer. */
export async function closeRedis(client: RedisClient): Promise<void> {
  if (client.status === 'end') return;
  try {
    await Promise.race([client.quit(), new Promise((_, reject) => setTimeout(() => reject(new Error('quit timeout')), 1000))]);
  } catch {
    client.disconnect();
  }
}
