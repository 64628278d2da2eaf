/**
 * Nothing a user depends on lives in a service process: restarting both services keeps the session,
 * and restarting Redis with append-only persistence on the same data dir keeps the session and every
 * accepted checkin. Services and Redis run as real child processes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sessionIdOf, spawnRedis, type SpawnedRedis, until } from '@ncc/testing';
import { checkin, createUsers, DEMO, login, type ServiceProcess, spawnService } from '../support/services.js';

let redis: SpawnedRedis;
let auth: ServiceProcess;
let checkinService: ServiceProcess;
let cookie: string;
const accepted: string[] = [];
let nextLocation = 1;

async function acceptCheckins(count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const res = await checkin(checkinService.url, { userId: DEMO.id, locationId: nextLocation++, starRating: 5 }, cookie);
    expect(res.status).toBe(202);
    accepted.push(((await res.json()) as { id: string }).id);
  }
}

async function expectSessionWorks(): Promise<void> {
  const me = await fetch(`${auth.url}/me`, { headers: { cookie } });
  expect(me.status).toBe(200);
  expect(((await me.json()) as { user: { email: string } }).user.email).toBe(DEMO.email);
  await acceptCheckins(1);
}

async function expectStreamComplete(): Promise<void> {
  const ids = (await redis.client.xrange('ncc:checkins', '-', '+')).map(([id]) => id);
  expect(ids).toEqual(accepted);
}

/** Both services ready again (their clients reconnect by themselves with backoff). */
async function servicesReady(): Promise<void> {
  await until(
    'both services ready',
    15_000,
    async () => {
      const [a, c] = await Promise.all([fetch(`${auth.url}/readyz`), fetch(`${checkinService.url}/readyz`)]);
      return (a.status === 200 && c.status === 200) || undefined;
    },
    200,
  );
}

beforeAll(async () => {
  redis = await spawnRedis({ appendOnly: true, appendFsync: 'always' });
  await createUsers(redis.url, [DEMO]);
  [auth, checkinService] = await Promise.all([spawnService('auth', { REDIS_URL: redis.url }), spawnService('checkin', { REDIS_URL: redis.url })]);
  cookie = await login(auth.url);
  await acceptCheckins(5);
});

afterAll(async () => {
  await Promise.all([auth?.stop(), checkinService?.stop()]);
  await redis?.stop();
});

describe('restarts', () => {
  it('when both services are restarted, then the old cookie still works on the new processes', async () => {
    const oldPids = [auth.child.pid, checkinService.child.pid];
    expect(await Promise.all([auth.stop('SIGTERM'), checkinService.stop('SIGTERM')])).toEqual([0, 0]);
    [auth, checkinService] = await Promise.all([
      spawnService('auth', { REDIS_URL: redis.url, AUTH_PORT: String(auth.port) }),
      spawnService('checkin', { REDIS_URL: redis.url, CHECKIN_PORT: String(checkinService.port) }),
    ]);
    expect([auth.child.pid, checkinService.child.pid]).not.toEqual(oldPids);
    await expectSessionWorks();
    await expectStreamComplete();
  });

  it('when Redis restarts (SIGTERM) on the same append-only data dir, then the session and every accepted checkin survive', async () => {
    const sid = sessionIdOf(cookie);
    const ttlBefore = await redis.client.ttl(`ncc:session:${sid}`);
    await redis.restart();
    expect(await redis.client.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    expect(await redis.client.exists(`ncc:session:${sid}`)).toBe(1);
    // The TTL is persisted too (an AOF replays it as an absolute expiry).
    expect(await redis.client.ttl(`ncc:session:${sid}`)).toBeGreaterThan(ttlBefore - 60);
    await expectStreamComplete();
    await servicesReady();
    await expectSessionWorks();
    await expectStreamComplete();
  });

  it('when Redis is SIGKILLed right after accepting checkins and started again, then no accepted checkin is missing', async () => {
    await acceptCheckins(10);
    await redis.kill();
    await redis.start();
    await expectStreamComplete();
    await servicesReady();
    await expectSessionWorks();
    await expectStreamComplete();
    expect(accepted.length).toBe(18);
  });
});
