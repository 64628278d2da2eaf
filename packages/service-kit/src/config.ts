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

export interface HostPort {
  host: string;
  port: number;
}

/** `host:port` (or `[ipv6]:port`); null when malformed. */
export function parseHostPort(entry: string): HostPort | null {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(entry.trim());
  if (!match) return null;
  const port = Number(match[3]);
  if (port < 1 || port > 65535) return null;
  return { host: (match[1] ?? match[2])!, port };
}

/** Comma separated `host:port` list for Redis Cluster seed nodes or Sentinels. */
const hostPortList = z
  .string()
  .refine(
    (value) => {
      const entries = value.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
      return entries.length > 0 && entries.every((x) => parseHostPort(x) !== null);
    },
    { message: 'must be a comma separated list of host:port, e.g. 10.0.0.1:6379,10.0.0.2:6379' },
  )
  .transform((value) =>
    value
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x.length > 0)
      .map((x) => parseHostPort(x)!),
  );

/** Settings every ncc service shares: Redis, logging, sessions, shutdown. */
export const baseEnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: z.enum(['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly']).default('info'),
  /** Standalone Redis (the default mode). Not allowed together with REDIS_CLUSTER_NODES or REDIS_SENTINELS. */
  REDIS_URL: redisUrl,
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
  REDIS_CONNECT_TIMEOUT_MS: env.int(1000, 50, 60_000),
  /** How long start-up waits for Redis before giving up with exit code 1; 0 waits forever. */
  REDIS_STARTUP_TIMEOUT_MS: env.int(30_000, 0),
  SHUTDOWN_TIMEOUT_MS: env.int(10_000, 0, 600_000),
  HOST: z.string().min(1).default('0.0.0.0'),
});

export type BaseConfig = z.infer<typeof baseEnvSchema>;

export type RedisMode = 'standalone' | 'cluster' | 'sentinel';

export function redisMode(config: { REDIS_CLUSTER_NODES?: readonly HostPort[] | undefined; REDIS_SENTINELS?: readonly HostPort[] | undefined }): RedisMode {
  if (config.REDIS_CLUSTER_NODES && config.REDIS_CLUSTER_NODES.length > 0) return 'cluster';
  if (config.REDIS_SENTINELS && config.REDIS_SENTINELS.length > 0) return 'sentinel';
  return 'standalone';
}

/**
 * Rules between the Redis keys that one field's schema cannot express. They look at what was set
 * explicitly (REDIS_URL has a default, so "set" means present in the environment): two topologies at
 * once would silently pick one, so they are refused with every key involved named.
 */
export function redisTopologyIssues(source: Record<string, string>): { key: string; message: string }[] {
  const has = (key: string): boolean => source[key] !== undefined && source[key] !== '';
  const issues: { key: string; message: string }[] = [];
  const cluster = has('REDIS_CLUSTER_NODES');
  const sentinels = has('REDIS_SENTINELS');
  if (cluster && sentinels) {
    issues.push({ key: 'REDIS_CLUSTER_NODES', message: 'set together with REDIS_SENTINELS; choose one Redis mode (cluster or sentinel)' });
  }
  if (has('REDIS_URL') && cluster) {
    issues.push({ key: 'REDIS_URL', message: 'set together with REDIS_CLUSTER_NODES; choose one Redis mode (unset REDIS_URL to use the cluster)' });
  }
  if (has('REDIS_URL') && sentinels) {
    issues.push({ key: 'REDIS_URL', message: 'set together with REDIS_SENTINELS; choose one Redis mode (unset REDIS_URL to use Sentinel)' });
  }
  if (sentinels && !has('REDIS_SENTINEL_NAME')) {
    issues.push({ key: 'REDIS_SENTINEL_NAME', message: 'is required with REDIS_SENTINELS (the master name from `sentinel monitor <name> …`)' });
  }
  if (!sentinels && has('REDIS_SENTINEL_NAME')) {
    issues.push({ key: 'REDIS_SENTINEL_NAME', message: 'is only used with REDIS_SENTINELS, which is not set' });
  }
  if (!sentinels && has('REDIS_SENTINEL_PASSWORD')) {
    issues.push({ key: 'REDIS_SENTINEL_PASSWORD', message: 'is only used with REDIS_SENTINELS, which is not set' });
  }
  if (!cluster && !sentinels) {
    for (const key of ['REDIS_USERNAME', 'REDIS_PASSWORD', 'REDIS_TLS']) {
      if (has(key)) issues.push({ key, message: 'applies to REDIS_CLUSTER_NODES / REDIS_SENTINELS only; with REDIS_URL put it in the URL (redis://user:pass@host, rediss:// for TLS)' });
    }
  }
  return issues;
}

/** Where the client connects, for messages: never includes a password. */
export function describeRedisTarget(config: Pick<BaseConfig, 'REDIS_URL'> & Partial<Pick<BaseConfig, 'REDIS_CLUSTER_NODES' | 'REDIS_SENTINELS' | 'REDIS_SENTINEL_NAME'>>): string {
  const list = (nodes: readonly HostPort[]): string => nodes.map((n) => `${n.host}:${n.port}`).join(',');
  switch (redisMode(config)) {
    case 'cluster':
      return `Redis Cluster ${list(config.REDIS_CLUSTER_NODES!)} (REDIS_CLUSTER_NODES)`;
    case 'sentinel':
      return `master "${config.REDIS_SENTINEL_NAME}" via sentinels ${list(config.REDIS_SENTINELS!)} (REDIS_SENTINELS)`;
    default: {
      const shown = redactUrl(config.REDIS_URL, '');
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
  // Only schemas built on baseEnvSchema know the Redis keys; their cross-key rules are checked here
  // because a refined zod object could no longer be .extend()ed by the services.
  const topology = schema instanceof z.ZodObject && 'REDIS_CLUSTER_NODES' in schema.shape ? redisTopologyIssues(cleaned) : [];
  if (result.success && topology.length === 0) return result.data;
  throw new ConfigError([
    ...(result.success
      ? []
      : result.error.issues.map((issue) => ({
          key: issue.path.length > 0 ? issue.path.join('.') : 'environment',
          message: issue.message,
        }))),
    ...topology,
  ]);
}
