import { readFileSync } from 'node:fs';
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

/** Listen on every interface: the default where the process does not sign with the development secret. */
export const ALL_INTERFACES = '0.0.0.0';
/** Loopback: the default bind of a process that signs cookies with the public development secret. */
export const LOOPBACK = '127.0.0.1';

/** Default HTTP server timeouts (HTTP_*_TIMEOUT_MS); startServer uses them when given none. */
export const DEFAULT_HTTP_TIMEOUTS = { requestMs: 30_000, headersMs: 20_000, keepAliveMs: 65_000 } as const;

/** Settings every ncc service shares: Redis, logging, sessions, shutdown, HTTP server. */
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

export type BaseConfig = z.infer<typeof baseEnvSchema>;

/** Which Redis topology the configuration names, with the nodes to reach it by. */
export type RedisMode = { mode: 'standalone' } | { mode: 'cluster'; nodes: readonly HostPort[] } | { mode: 'sentinel'; nodes: readonly HostPort[] };

export function redisMode(config: { REDIS_CLUSTER_NODES?: readonly HostPort[] | undefined; REDIS_SENTINELS?: readonly HostPort[] | undefined }): RedisMode {
  if (config.REDIS_CLUSTER_NODES && config.REDIS_CLUSTER_NODES.length > 0) return { mode: 'cluster', nodes: config.REDIS_CLUSTER_NODES };
  if (config.REDIS_SENTINELS && config.REDIS_SENTINELS.length > 0) return { mode: 'sentinel', nodes: config.REDIS_SENTINELS };
  return { mode: 'standalone' };
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

/** Rules between the HTTP timeout keys: Node refuses a headers timeout longer than the request timeout. */
export function httpTimeoutIssues(config: { HTTP_REQUEST_TIMEOUT_MS?: number; HTTP_HEADERS_TIMEOUT_MS?: number }): { key: string; message: string }[] {
  const request = config.HTTP_REQUEST_TIMEOUT_MS;
  const headers = config.HTTP_HEADERS_TIMEOUT_MS;
  if (request === undefined || headers === undefined || headers <= request) return [];
  return [{ key: 'HTTP_HEADERS_TIMEOUT_MS', message: `must not be longer than HTTP_REQUEST_TIMEOUT_MS (${headers} > ${request}): the headers are part of the request` }];
}

/** An address only this machine can reach: 127.0.0.0/8, ::1 (also as [::1] or IPv4-mapped) or `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
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

/** Where the client connects, for messages: never includes a password. */
export function describeRedisTarget(config: Pick<BaseConfig, 'REDIS_URL'> & Partial<Pick<BaseConfig, 'REDIS_CLUSTER_NODES' | 'REDIS_SENTINELS' | 'REDIS_SENTINEL_NAME'>>): string {
  const list = (nodes: readonly HostPort[]): string => nodes.map((n) => `${n.host}:${n.port}`).join(',');
  const target = redisMode(config);
  switch (target.mode) {
    case 'cluster':
      return `Redis Cluster ${list(target.nodes)} (REDIS_CLUSTER_NODES)`;
    case 'sentinel':
      return `master "${config.REDIS_SENTINEL_NAME}" via sentinels ${list(target.nodes)} (REDIS_SENTINELS)`;
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
  // Only schemas built on baseEnvSchema know the Redis, HTTP and HOST keys; their cross-key rules are
  // checked here because a refined zod object could no longer be .extend()ed by the services.
  const shape: Record<string, unknown> = schema instanceof z.ZodObject ? schema.shape : {};
  const fileIssues = readFileSettings(Object.keys(shape), cleaned);
  const result = schema.safeParse(cleaned);
  const crossKey = [
    ...fileIssues,
    ...('REDIS_CLUSTER_NODES' in shape ? redisTopologyIssues(cleaned) : []),
    ...(result.success && 'HTTP_REQUEST_TIMEOUT_MS' in shape ? httpTimeoutIssues(result.data as { HTTP_REQUEST_TIMEOUT_MS?: number; HTTP_HEADERS_TIMEOUT_MS?: number }) : []),
  ];
  if (result.success && crossKey.length === 0) {
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
    ...crossKey,
  ]);
}
