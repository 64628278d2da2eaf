/**
 * REDIS_AUTO_PIPELINING (off by default; on it trades the one-timeout 503 for less CPU): with it on the
 * services' client sends the commands of one event-loop turn in one write, counted by Redis itself
 * (INFO stats total_reads_processed), and still fails — no offline queue, no resend — within two
 * command timeouts. The default's guarantees under Redis kills and hangs are in
 * no-lost-checkins.test.ts and redis-outage.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeRedis, createRedisClient, loadConfig, baseEnvSchema, type RedisClient, waitForRedis } from '@ncc/service-kit';
import { captureLogs, type SpawnedRedis, spawnRedis } from '@ncc/testing';

let redis: SpawnedRedis;
const logs = captureLogs();
const clients: RedisClient[] = [];

async function client(autoPipelining: boolean | undefined): Promise<RedisClient> {
  const c = createRedisClient(
    { REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: 1000, REDIS_CONNECT_TIMEOUT_MS: 1000, REDIS_AUTO_PIPELINING: autoPipelining },
    logs.logger,
  );
  clients.push(c);
  await waitForRedis(c, 5000);
  return c;
}

const readsProcessed = async (): Promise<number> => Number(/^total_reads_processed:(\d+)/m.exec(await redis.client.info('stats'))![1]);

beforeAll(async () => {
  redis = await spawnRedis();
});

afterAll(async () => {
  await Promise.all(clients.map(closeRedis));
  await redis?.stop();
});

describe('REDIS_AUTO_PIPELINING', () => {
  it('when it is not set, then it is off; off and on parse; anything else is refused naming the key', () => {
    expect(loadConfig(baseEnvSchema, { NODE_ENV: 'test' }).REDIS_AUTO_PIPELINING).toBe(false);
    expect(loadConfig(baseEnvSchema, { NODE_ENV: 'test', REDIS_AUTO_PIPELINING: 'off' }).REDIS_AUTO_PIPELINING).toBe(false);
    expect(loadConfig(baseEnvSchema, { NODE_ENV: 'test', REDIS_AUTO_PIPELINING: 'on' }).REDIS_AUTO_PIPELINING).toBe(true);
    expect(() => loadConfig(baseEnvSchema, { NODE_ENV: 'test', REDIS_AUTO_PIPELINING: 'sometimes' })).toThrow(/REDIS_AUTO_PIPELINING/);
  });

  it('when it is on and 200 commands are issued in one turn of the event loop, then Redis reads them in a handful of reads and answers each', async () => {
    const c = await client(true);
    await c.set('pipelined', '1');
    const before = await readsProcessed();
    const answers = await Promise.all(Array.from({ length: 200 }, () => c.get('pipelined')));
    // The bench's own INFO is one read; the 200 GETs arrive as one write (a few reads if the kernel splits it).
    const reads = (await readsProcessed()) - before - 1;
    expect(answers).toEqual(Array.from({ length: 200 }, () => '1'));
    expect(reads).toBeGreaterThanOrEqual(1);
    expect(reads).toBeLessThanOrEqual(5);
    expect((c.options as { enableAutoPipelining?: boolean }).enableAutoPipelining).toBe(true);
  });

  it('when it is off or not set, then the client does not pipeline', async () => {
    expect(((await client(undefined)).options as { enableAutoPipelining?: boolean }).enableAutoPipelining).toBe(false);
    const c = await client(false);
    expect((c.options as { enableAutoPipelining?: boolean }).enableAutoPipelining).toBe(false);
    expect(await c.ping()).toBe('PONG');
  });

  it('when it is on and Redis is stopped, then a pipelined batch fails within about two command timeouts and PING within one, and nothing is sent again once Redis is back', async () => {
    const c = await client(true);
    await c.del('counter');
    redis.pause();
    const started = performance.now();
    const timed = <T>(p: Promise<T>): Promise<{ ok: boolean; ms: number }> =>
      p.then(
        () => ({ ok: true, ms: performance.now() - started }),
        () => ({ ok: false, ms: performance.now() - started }),
      );
    try {
      const first = timed(c.incr('counter'));
      // The next turn: a second batch that waits behind the first, then for its own timeout.
      await new Promise((r) => setImmediate(r));
      const [a, b, ping] = await Promise.all([first, timed(c.incr('counter')), timed(c.ping())]);
      expect(a.ok).toBe(false);
      expect(b.ok).toBe(false);
      expect(ping.ok).toBe(false);
      expect(a.ms).toBeLessThan(1600);
      expect(b.ms).toBeLessThan(2600);
      expect(ping.ms).toBeLessThan(1600);
    } finally {
      redis.resume();
    }
    // Every INCR that reached Redis before the stop ran at most once; none is resent after the resume.
    await waitForRedis(c, 5000);
    expect(await c.ping()).toBe('PONG');
    const afterResume = Number((await redis.client.get('counter')) ?? '0');
    expect(afterResume).toBeLessThanOrEqual(2);
    expect(Number((await redis.client.get('counter')) ?? '0')).toBe(afterResume);
  });
});
