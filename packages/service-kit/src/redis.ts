import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import { z } from 'zod';
import { type CrossKeyRule, env } from './env.js';
import type { Logger } from './logger.js';

export type RedisClient = Redis | Cluster;

/** Where a standalone Redis is looked for when neither REDIS_URL nor another mode is set. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** A `redis://` or `rediss://` URL with a host and an optional numeric database. */
export const redisUrlSchema = z.string().refine(
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

export interface HostPort {
  host: string;
  port: number;
}

/** `host:port` (or `[ipv6]:port`); null when malformed. */
export function parseHostPort(entry: string): HostPort | null {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(entry.trim());
  const host = match?.[1] ?? match?.[2];
  if (!match || host === undefined) return null;
  const port = Number(match[3]);
  if (port < 1 || port > 65535) return null;
  return { host, port };
}

/** Comma separated `host:port` list for Redis Cluster seed nodes or Sentinels. */
const hostPortList = env.list().transform((entries, ctx) => {
  const nodes = entries.map(parseHostPort);
  if (nodes.length > 0 && nodes.every((node) => node !== null)) return nodes;
  ctx.addIssue({ code: 'custom', message: 'must be a comma separated list of host:port, e.g. 10.0.0.1:6379,10.0.0.2:6379' });
  return z.NEVER;
});

/**
 * The Redis keys of every service. Exactly one topology: REDIS_URL (standalone, the default,
 * DEFAULT_REDIS_URL when unset), REDIS_CLUSTER_NODES, or REDIS_SENTINELS + REDIS_SENTINEL_NAME.
 * REDIS_URL has no default here so that "set together with another mode" can be seen (redisRules).
 */
export const redisEnvShape = {
  /** Standalone Redis (the default mode). Not allowed together with REDIS_CLUSTER_NODES or REDIS_SENTINELS. */
  REDIS_URL: redisUrlSchema.optional(),
  /** Redis Cluster: seed nodes `host:port,host:port,…` (any subset of the cluster; the rest is discovered). */
  REDIS_CLUSTER_NODES: hostPortList.optional(),
  /** Redis Sentinel: the sentinels `host:port,…`, together with REDIS_SENTINEL_NAME (the monitored master's name). */
  REDIS_SENTINELS: hostPortList.optional(),
  REDIS_SENTINEL_NAME: z.string().min(1).optional(),
  /** Credentials and TLS for the data nodes in cluster/sentinel mode (in standalone mode they live in REDIS_URL). */
  REDIS_USERNAME: z.string().min(1).optional(),
  REDIS_PASSWORD: z.string().min(1).optional(),
  REDIS_TLS: env.bool.optional(),
  /** The sentinels' own password (`requirepass` in sentinel.conf), if they have one. */
  REDIS_SENTINEL_PASSWORD: z.string().min(1).optional(),
  REDIS_COMMAND_TIMEOUT_MS: env.int(1000, 50, 60_000),
  /**
   * ioredis auto-pipelining (standalone and Sentinel; a Cluster client never pipelines), off by default:
   * the commands issued in one event-loop turn go out in one write — less CPU on both ends — but a
   * command can then wait for the batch ahead of it to fail before its own timeout starts (see
   * autoPipelining below), which breaks the "503 within one command timeout" guarantee.
   */
  REDIS_AUTO_PIPELINING: env.bool.default(false),
  REDIS_CONNECT_TIMEOUT_MS: env.int(1000, 50, 60_000),
  /** How long start-up waits for Redis before giving up with exit code 1; 0 waits forever. */
  REDIS_STARTUP_TIMEOUT_MS: env.int(30_000, 0),
};

type RedisKeys = { [K in keyof typeof redisEnvShape]?: unknown };

const STANDALONE_ONLY_HINT =
  'applies to REDIS_CLUSTER_NODES / REDIS_SENTINELS only; with REDIS_URL put it in the URL (redis://user:pass@host, rediss:// for TLS)';

/** Two topologies at once would silently pick one: refused, with every key involved named (decision 020). */
export const redisRules: readonly CrossKeyRule<RedisKeys>[] = [
  {
    key: 'REDIS_CLUSTER_NODES',
    message: 'set together with REDIS_SENTINELS; choose one Redis mode (cluster or sentinel)',
    broken: (c) => c.REDIS_CLUSTER_NODES !== undefined && c.REDIS_SENTINELS !== undefined,
  },
  {
    key: 'REDIS_URL',
    message: 'set together with REDIS_CLUSTER_NODES; choose one Redis mode (unset REDIS_URL to use the cluster)',
    broken: (c) => c.REDIS_URL !== undefined && c.REDIS_CLUSTER_NODES !== undefined,
  },
  {
    key: 'REDIS_URL',
    message: 'set together with REDIS_SENTINELS; choose one Redis mode (unset REDIS_URL to use Sentinel)',
    broken: (c) => c.REDIS_URL !== undefined && c.REDIS_SENTINELS !== undefined,
  },
  {
    key: 'REDIS_SENTINEL_NAME',
    message: 'is required with REDIS_SENTINELS (the master name from `sentinel monitor <name> …`)',
    broken: (c) => c.REDIS_SENTINELS !== undefined && c.REDIS_SENTINEL_NAME === undefined,
  },
  {
    key: 'REDIS_SENTINEL_NAME',
    message: 'is only used with REDIS_SENTINELS, which is not set',
    broken: (c) => c.REDIS_SENTINELS === undefined && c.REDIS_SENTINEL_NAME !== undefined,
  },
  {
    key: 'REDIS_SENTINEL_PASSWORD',
    message: 'is only used with REDIS_SENTINELS, which is not set',
    broken: (c) => c.REDIS_SENTINELS === undefined && c.REDIS_SENTINEL_PASSWORD !== undefined,
  },
  ...(['REDIS_USERNAME', 'REDIS_PASSWORD', 'REDIS_TLS'] as const).map((key) => ({
    key,
    message: STANDALONE_ONLY_HINT,
    broken: (c: RedisKeys) => c.REDIS_CLUSTER_NODES === undefined && c.REDIS_SENTINELS === undefined && c[key] !== undefined,
  })),
];

export interface RedisSettings {
  REDIS_URL?: string | undefined;
  REDIS_COMMAND_TIMEOUT_MS: number;
  REDIS_CONNECT_TIMEOUT_MS: number;
  /** Auto-pipelining (default off, see redisEnvShape). */
  REDIS_AUTO_PIPELINING?: boolean | undefined;
  /** Cluster / Sentinel mode (see redisEnvShape); absent = standalone REDIS_URL. */
  REDIS_CLUSTER_NODES?: readonly HostPort[] | undefined;
  REDIS_SENTINELS?: readonly HostPort[] | undefined;
  REDIS_SENTINEL_NAME?: string | undefined;
  REDIS_USERNAME?: string | undefined;
  REDIS_PASSWORD?: string | undefined;
  REDIS_TLS?: boolean | undefined;
  REDIS_SENTINEL_PASSWORD?: string | undefined;
}

/** Which Redis topology the configuration names, with the URL or the nodes to reach it by. */
export type RedisMode =
  { mode: 'standalone'; url: string } | { mode: 'cluster'; nodes: readonly HostPort[] } | { mode: 'sentinel'; nodes: readonly HostPort[] };

export function redisMode(config: Pick<RedisSettings, 'REDIS_URL' | 'REDIS_CLUSTER_NODES' | 'REDIS_SENTINELS'>): RedisMode {
  if (config.REDIS_CLUSTER_NODES && config.REDIS_CLUSTER_NODES.length > 0) return { mode: 'cluster', nodes: config.REDIS_CLUSTER_NODES };
  if (config.REDIS_SENTINELS && config.REDIS_SENTINELS.length > 0) return { mode: 'sentinel', nodes: config.REDIS_SENTINELS };
  return { mode: 'standalone', url: config.REDIS_URL ?? DEFAULT_REDIS_URL };
}

/** Where the client connects, for messages: never includes a password. */
export function describeRedisTarget(config: Pick<RedisSettings, 'REDIS_URL' | 'REDIS_CLUSTER_NODES' | 'REDIS_SENTINELS' | 'REDIS_SENTINEL_NAME'>): string {
  const list = (nodes: readonly HostPort[]): string => nodes.map((n) => `${n.host}:${n.port}`).join(',');
  const target = redisMode(config);
  switch (target.mode) {
    case 'cluster':
      return `Redis Cluster ${list(target.nodes)} (REDIS_CLUSTER_NODES)`;
    case 'sentinel':
      return `master "${config.REDIS_SENTINEL_NAME}" via sentinels ${list(target.nodes)} (REDIS_SENTINELS)`;
    default: {
      const shown = redactUrl(target.url, '');
      return shown ? `${shown} (REDIS_URL)` : 'the configured REDIS_URL';
    }
  }
}

/** A Redis URL without its password, fit for a message; `fallback` when it does not parse. */
export function redactUrl(url: string, fallback = 'the configured REDIS_URL'): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return fallback;
  }
}

/** Reconnect delays: quick at first, capped at 2 s, with jitter so a fleet does not reconnect in step. */
export function reconnectDelay(attempt: number): number {
  const base = Math.min(2000, 50 * 2 ** Math.min(attempt, 6));
  return Math.round(base / 2 + Math.random() * (base / 2));
}

/**
 * Auto-pipelining (REDIS_AUTO_PIPELINING=on; off by default): the commands of one event-loop turn wait
 * for the next setImmediate and go out in one write, as ordinary commands — the same command timeout,
 * the same no-resend and no-offline-queue rules (a pipeline sent while disconnected fails each of its
 * commands at once; one in flight at a disconnect is not resent). ioredis sends one pipeline per
 * connection at a time, so when Redis hangs or restarts a command can wait for the batch ahead of it
 * to fail before its own timeout starts: a 503 then comes after up to 2 × REDIS_COMMAND_TIMEOUT_MS
 * (no-lost-checkins.test.ts measured 2,017 ms with it on). Off by default for that reason; PING is
 * never pipelined, so /readyz answers within one timeout either way.
 */
function autoPipelining(settings: Pick<RedisSettings, 'REDIS_AUTO_PIPELINING'>): Pick<RedisOptions, 'enableAutoPipelining' | 'autoPipeliningIgnoredCommands'> {
  return { enableAutoPipelining: settings.REDIS_AUTO_PIPELINING ?? false, autoPipeliningIgnoredCommands: ['ping'] };
}

/**
 * ioredis defaults queue commands while disconnected and retry each one 20 times: a request then waits
 * ~10–70 s when Redis is down and forever when it hangs. These settings fail a command within about
 * `REDIS_COMMAND_TIMEOUT_MS` instead, so the service can answer 503 at once and recover by itself.
 */
export function failFastOptions(settings: Omit<RedisSettings, 'REDIS_URL'>, logger: Logger): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: settings.REDIS_COMMAND_TIMEOUT_MS,
    connectTimeout: settings.REDIS_CONNECT_TIMEOUT_MS,
    // A command in flight when the connection dropped may already have run. Resending it after the
    // reconnect ran the checkin script twice: the client got 422 DUPLICATE_CHECKIN for the checkin its
    // own request had just stored. Not resending leaves it to the command timeout: a 503, retry-safe.
    autoResendUnfulfilledCommands: false,
    ...autoPipelining(settings),
    enableReadyCheck: true,
    lazyConnect: false,
    retryStrategy: loggedReconnectDelay(logger, 'Redis'),
  };
}

export function createRedisClient(settings: RedisSettings, logger: Logger): RedisClient {
  const target = redisMode(settings);
  const client =
    target.mode === 'cluster'
      ? createClusterClient(target.nodes, settings, logger)
      : target.mode === 'sentinel'
        ? createSentinelClient(target.nodes, settings, logger)
        : new Redis(target.url, failFastOptions(settings, logger));
  watchClient(client, logger);
  return client;
}

/** Credentials and TLS for data nodes in cluster/sentinel mode (standalone takes them from the URL). */
function nodeAuth(settings: RedisSettings): Pick<RedisOptions, 'username' | 'password' | 'tls'> {
  return {
    ...(settings.REDIS_USERNAME ? { username: settings.REDIS_USERNAME } : {}),
    ...(settings.REDIS_PASSWORD ? { password: settings.REDIS_PASSWORD } : {}),
    ...(settings.REDIS_TLS ? { tls: {} } : {}),
  };
}

/** A jittered reconnect delay that says so in the log: on the first attempt, then at most every 5 s. */
function loggedReconnectDelay(logger: Logger, what: string): (attempt: number) => number {
  let lastLogged = 0;
  return (attempt) => {
    const delay = reconnectDelay(attempt);
    const now = Date.now();
    if (attempt === 1 || now - lastLogged > 5000) {
      lastLogged = now;
      logger.warn(`${what} unreachable, reconnecting (attempt ${attempt}, next in ${delay} ms).`);
    }
    return delay;
  };
}

/**
 * Redis Cluster with the same fail-fast behaviour as the standalone client. ioredis splits the options:
 *  - on the Cluster: no offline queue (a command while the cluster is not ready fails at once, 503),
 *    a ready check (CLUSTER INFO must say ok), capped reconnect delays, a bounded slot refresh and
 *    few redirections (MOVED/ASK/CLUSTERDOWN retries, 100 ms apart), so a request never waits long;
 *  - on each node (`redisOptions`): the command and connect timeouts. The nodes' own offline queue and
 *    retryStrategy stay as ioredis sets them (queue on, no reconnect): its node connections are lazy,
 *    and with the node queue off the first command to each node fails (ioredis #581, fixed by #649 by
 *    forcing it on); a lost node ends and the Cluster refreshes slots instead. commandTimeout still
 *    bounds a command waiting in a node queue.
 */
export function createClusterClient(nodes: readonly HostPort[], settings: RedisSettings, logger: Logger): Cluster {
  const options: ClusterOptions = {
    enableOfflineQueue: false,
    enableReadyCheck: true,
    lazyConnect: false,
    clusterRetryStrategy: loggedReconnectDelay(logger, 'Redis Cluster'),
    slotsRefreshTimeout: settings.REDIS_CONNECT_TIMEOUT_MS,
    // Never auto-pipelined (REDIS_AUTO_PIPELINING applies to standalone and Sentinel): ioredis groups a
    // cluster's pipelines per node, but a pipeline's commands do not follow MOVED one by one, and after a
    // master restarted its EVALSHA failed NOSCRIPT instead of falling back to EVAL — a 500 where plain
    // commands recover (test/scale/cluster.test.ts, the stream's master killed and back).
    enableAutoPipelining: false,
    // Each redirection/retry (MOVED, ASK, TRYAGAIN, CLUSTERDOWN, a lost node) waits ~100 ms: four
    // keep a request with a dead slot owner near 0.5 s before its 503, and are plenty for resharding
    // (one MOVED or ASK per key).
    maxRedirections: 4,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    redisOptions: {
      ...nodeAuth(settings),
      commandTimeout: settings.REDIS_COMMAND_TIMEOUT_MS,
      connectTimeout: settings.REDIS_CONNECT_TIMEOUT_MS,
      maxRetriesPerRequest: 1,
    },
  };
  return new Cluster([...nodes], options);
}

/**
 * Redis behind Sentinel: ioredis asks the sentinels for the current master on every (re)connect, so
 * after a failover the retryStrategy's next attempt lands on the promoted replica without a restart.
 *  - failoverDetector: subscribe to the sentinels' +switch-master and reconnect at once instead of
 *    waiting for the old connection to break (a demoted master that is still alive answers READONLY);
 *  - reconnectOnError READONLY: if we do talk to a demoted master, reconnect (and re-resolve); the
 *    failed command is not resent (it fails with 503, the client retries);
 *  - sentinelRetryStrategy / sentinelCommandTimeout: a dead or hung sentinel costs at most one
 *    command timeout before the next one is asked.
 */
export function createSentinelClient(nodes: readonly HostPort[], settings: RedisSettings, logger: Logger): Redis {
  return new Redis({
    ...failFastOptions(settings, logger),
    ...nodeAuth(settings),
    sentinels: [...nodes],
    name: settings.REDIS_SENTINEL_NAME ?? '',
    role: 'master',
    ...(settings.REDIS_SENTINEL_PASSWORD ? { sentinelPassword: settings.REDIS_SENTINEL_PASSWORD } : {}),
    ...(settings.REDIS_TLS ? { enableTLSForSentinelMode: true } : {}),
    sentinelRetryStrategy: loggedReconnectDelay(logger, 'Every Redis sentinel'),
    sentinelCommandTimeout: settings.REDIS_COMMAND_TIMEOUT_MS,
    failoverDetector: true,
    reconnectOnError: (err) => (/^READONLY/.test(err.message) ? 1 : false),
  });
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

/**
 * Cluster/Sentinel (and pipeline) flavours of the same: a command that exhausted its redirections
 * while a slot owner was down ("Too many Cluster redirections. Last error: …"), a pipeline or MULTI
 * cut by a closing connection (AbortError), a node dropped while its slots were being refreshed.
 */
const TOPOLOGY_UNAVAILABLE =
  /Too many Cluster redirections|Cluster is ended|Cluster is disconnect|Node is disconnected|Command aborted due to connection close|^MOVED|^ASK /;

/** True for errors that mean "Redis cannot answer right now" rather than "this request is wrong". */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'MaxRetriesPerRequestError') return true;
  return UNAVAILABLE.test(err.message) || TOPOLOGY_UNAVAILABLE.test(err.message);
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
