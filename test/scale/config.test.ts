/**
 * Choosing the Redis mode is configuration only, and an ambiguous choice is refused at start-up
 * with the keys named — by the schema's rules (redisRules, checked by loadConfig) here, and by a real service / CLI process (exit 1)
 * in config.e2e.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { baseEnvSchema, ConfigError, describeRedisTarget, isRedisUnavailable, loadConfig, redisMode } from '@ncc/service-kit';
import { authEnvSchema } from '../../services/auth/src/config.js';
import { checkinEnvSchema } from '../../services/checkin/src/config.js';

function issuesOf(
  env: Record<string, string>,
  schema: typeof baseEnvSchema | typeof authEnvSchema | typeof checkinEnvSchema = authEnvSchema,
): { key: string; message: string }[] {
  try {
    loadConfig(schema, env);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  return [];
}

describe('Redis mode configuration', () => {
  it('when nothing is set, then the mode is standalone on the default REDIS_URL', () => {
    const config = loadConfig(authEnvSchema, {});
    expect(redisMode(config)).toEqual({ mode: 'standalone', url: 'redis://127.0.0.1:6379' });
    expect(config.REDIS_URL).toBeUndefined();
    expect(describeRedisTarget(config)).toBe('redis://127.0.0.1:6379 (REDIS_URL)');
  });

  it('when REDIS_CLUSTER_NODES lists host:port seeds, then the mode is cluster and the nodes are parsed', () => {
    const config = loadConfig(checkinEnvSchema, { REDIS_CLUSTER_NODES: '10.0.0.1:7000, redis-b:7001,[::1]:7002,' });
    expect(redisMode(config)).toEqual({ mode: 'cluster', nodes: config.REDIS_CLUSTER_NODES });
    expect(config.REDIS_CLUSTER_NODES).toEqual([
      { host: '10.0.0.1', port: 7000 },
      { host: 'redis-b', port: 7001 },
      { host: '::1', port: 7002 },
    ]);
    expect(describeRedisTarget(config)).toContain('REDIS_CLUSTER_NODES');
  });

  it('when REDIS_SENTINELS and REDIS_SENTINEL_NAME are set, then the mode is sentinel', () => {
    const config = loadConfig(baseEnvSchema, { REDIS_SENTINELS: 's1:26379,s2:26379', REDIS_SENTINEL_NAME: 'ncc', REDIS_PASSWORD: 'pw' });
    expect(redisMode(config)).toEqual({
      mode: 'sentinel',
      nodes: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26379 },
      ],
    });
    expect(config.REDIS_SENTINEL_NAME).toBe('ncc');
    expect(describeRedisTarget(config)).not.toContain('pw');
  });

  it('when REDIS_URL is set explicitly together with REDIS_CLUSTER_NODES, then both keys are named', () => {
    const issues = issuesOf({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: '127.0.0.1:7000' });
    expect(issues).toHaveLength(1);
    expect(issues[0]!.key).toBe('REDIS_URL');
    expect(issues[0]!.message).toContain('REDIS_CLUSTER_NODES');
  });

  it('when an empty REDIS_URL= is set with REDIS_CLUSTER_NODES, then it counts as unset and is accepted', () => {
    expect(issuesOf({ REDIS_URL: '', REDIS_CLUSTER_NODES: '127.0.0.1:7000' })).toEqual([]);
  });

  it('when REDIS_CLUSTER_NODES and REDIS_SENTINELS are both set, then the combination is refused', () => {
    const issues = issuesOf({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', REDIS_SENTINELS: '127.0.0.1:26379', REDIS_SENTINEL_NAME: 'ncc' });
    expect(issues.map((i) => `${i.key}: ${i.message}`).join('\n')).toMatch(/REDIS_CLUSTER_NODES: .*REDIS_SENTINELS/);
  });

  it('when REDIS_URL is set explicitly with REDIS_SENTINELS, then it is refused', () => {
    const issues = issuesOf({ REDIS_URL: 'redis://h:1', REDIS_SENTINELS: '127.0.0.1:26379', REDIS_SENTINEL_NAME: 'ncc' });
    expect(issues).toEqual([expect.objectContaining({ key: 'REDIS_URL', message: expect.stringContaining('REDIS_SENTINELS') })]);
  });

  it('when REDIS_SENTINELS has no REDIS_SENTINEL_NAME (or the name has no sentinels), then the missing key is named', () => {
    expect(issuesOf({ REDIS_SENTINELS: '127.0.0.1:26379' })).toEqual([
      expect.objectContaining({ key: 'REDIS_SENTINEL_NAME', message: expect.stringContaining('required with REDIS_SENTINELS') }),
    ]);
    expect(issuesOf({ REDIS_SENTINEL_NAME: 'ncc' })).toEqual([expect.objectContaining({ key: 'REDIS_SENTINEL_NAME' })]);
  });

  it('when a node list is malformed, then the key and the expected form are named', () => {
    for (const bad of ['127.0.0.1', 'host:port', 'a:70000', ' , ']) {
      const issues = issuesOf({ REDIS_CLUSTER_NODES: bad });
      expect(issues, bad).toEqual([expect.objectContaining({ key: 'REDIS_CLUSTER_NODES', message: expect.stringContaining('host:port') })]);
    }
  });

  it('when REDIS_PASSWORD is set in standalone mode, then it is refused (the URL carries it)', () => {
    expect(issuesOf({ REDIS_URL: 'redis://h:1', REDIS_PASSWORD: 'x' })).toEqual([
      expect.objectContaining({ key: 'REDIS_PASSWORD', message: expect.stringContaining('REDIS_URL') }),
    ]);
  });

  it('when a schema error and a mode conflict occur together, then both are reported at once', () => {
    const keys = issuesOf({ REDIS_URL: 'http://x', REDIS_CLUSTER_NODES: '127.0.0.1:7000', AUTH_PORT: 'abc' }).map((i) => i.key);
    expect(keys).toEqual(expect.arrayContaining(['REDIS_URL', 'AUTH_PORT']));
    const both = issuesOf({ REDIS_URL: 'redis://h:1', REDIS_CLUSTER_NODES: '127.0.0.1:7000', AUTH_PORT: 'abc' });
    expect(both).toEqual([
      expect.objectContaining({ key: 'AUTH_PORT' }),
      expect.objectContaining({ key: 'REDIS_URL', message: expect.stringContaining('set together with REDIS_CLUSTER_NODES') }),
    ]);
  });
});

describe('Cluster and Sentinel errors', () => {
  it('when ioredis reports a Cluster/Sentinel outage, then it counts as "Redis unavailable" (503), a wrong request does not', () => {
    for (const message of [
      'Too many Cluster redirections. Last error: ReplyError: CLUSTERDOWN The cluster is down',
      'Too many Cluster redirections. Last error: Error: Connection is closed.',
      'Command aborted due to connection close',
      "Cluster isn't ready and enableOfflineQueue options is false",
      'All sentinels are unreachable. Retrying from scratch after 100ms.',
      'CLUSTERDOWN Hash slot not served',
      'Cluster is ended.',
    ]) {
      expect(isRedisUnavailable(new Error(message)), message).toBe(true);
    }
    expect(isRedisUnavailable(new Error("CROSSSLOT Keys in request don't hash to the same slot"))).toBe(false);
    expect(isRedisUnavailable(new Error('WRONGTYPE Operation against a key holding the wrong kind of value'))).toBe(false);
  });
});
