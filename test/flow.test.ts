/**
 * The seed flow end to end, with both services as real child processes (`pnpm auth`, `pnpm checkin`)
 * on one spawned redis-server — the same steps as the README's curl walk-through.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cookiePair, postJson, sessionIdOf, sessionKeyOf, type SpawnedRedis, spawnRedis } from '@ncc/testing';
import { checkin, createUsers, DEMO, type ServiceProcess, spawnService } from './support/services.js';

let redis: SpawnedRedis;
let auth: ServiceProcess;
let checkinSvc: ServiceProcess;

beforeAll(async () => {
  redis = await spawnRedis();
  await createUsers(redis.url, [DEMO]);
  [auth, checkinSvc] = await Promise.all([
    spawnService('auth', { REDIS_URL: redis.url, LOG_LEVEL: 'debug' }),
    spawnService('checkin', { REDIS_URL: redis.url, LOG_LEVEL: 'debug' }),
  ]);
});

afterAll(async () => {
  await Promise.all([auth?.stop(), checkinSvc?.stop()]);
  await redis?.stop();
});

describe('the seed flow across both services', () => {
  it('when a user checks in before login, logs in, checks in, and logs out, then 401 → 200 → 202 → 200 → 401 with the Redis state at each step', async () => {
    const body = { userId: 77, locationId: 4242, starRating: 5 };

    // 1. No session yet.
    const denied = await checkin(checkinSvc.url, body);
    expect(denied.status).toBe(401);
    expect(((await denied.json()) as { error: { code: string } }).error.code).toBe('UNAUTHENTICATED');
    expect(await redis.client.keys('ncc:session:*')).toEqual([]);

    // 2. Login on auth: one session key, holding the user, with a one-day TTL.
    const loginRes = await postJson(`${auth.url}/login`, { email: DEMO.email, password: DEMO.password });
    expect(loginRes.status).toBe(200);
    const cookie = cookiePair(loginRes, 'checkinapp')!;
    const sid = sessionIdOf(cookie);
    expect(await redis.client.keys('ncc:session:*')).toEqual([`ncc:session:${sid}`]);
    const stored = JSON.parse((await redis.client.get(`ncc:session:${sid}`))!) as { userId: number; email: string };
    expect(stored).toMatchObject({ userId: 77, email: DEMO.email });
    expect(await redis.client.ttl(`ncc:session:${sid}`)).toBeGreaterThan(86_390);
    expect(auth.output()).toContain(`User ${DEMO.email} logged in.`);

    // 3. The same cookie is accepted by the other service.
    const accepted = await checkin(checkinSvc.url, body, cookie);
    expect(accepted.status).toBe(202);
    const { id } = (await accepted.json()) as { id: string };
    const entries = await redis.client.xrange('ncc:checkins', '-', '+', 'COUNT', 5);
    expect(entries).toHaveLength(1);
    expect(entries[0]![0]).toBe(id);
    expect(entries[0]![1].slice(0, 6)).toEqual(['userId', '77', 'locationId', '4242', 'starRating', '5']);
    expect(checkinSvc.output()).toContain(`Received checkin, added to stream as ${id}.`);

    // 4. Logout ends the session everywhere.
    const logout = await fetch(`${auth.url}/logout`, { headers: { cookie } });
    expect(logout.status).toBe(200);
    expect(await logout.json()).toEqual({ status: 'OK' });
    expect(await redis.client.keys('ncc:session:*')).toEqual([]);
    expect(auth.output()).toContain(`Logged out user ${DEMO.email}.`);

    const after = await checkin(checkinSvc.url, { ...body, locationId: 4243 }, cookie);
    expect(after.status).toBe(401);
    expect(checkinSvc.output()).toContain('Rejecting checkin - no valid user session found.');
    expect(await redis.client.xlen('ncc:checkins')).toBe(1);
  });

  it('when checkins are in flight while the user logs out, then the session stays destroyed (checkin never re-saves it)', async () => {
    const loginRes = await postJson(`${auth.url}/login`, { email: DEMO.email, password: DEMO.password });
    const cookie = cookiePair(loginRes, 'checkinapp')!;
    const key = sessionKeyOf(cookie);
    const inFlight = Array.from({ length: 30 }, (_, i) => checkin(checkinSvc.url, { userId: 77, locationId: 5000 + i, starRating: 4 }, cookie));
    const logout = fetch(`${auth.url}/logout`, { method: 'POST', headers: { cookie } });
    const statuses = (await Promise.all(inFlight)).map((r) => r.status);
    expect((await logout).status).toBe(200);
    expect(statuses.every((s) => s === 202 || s === 401)).toBe(true);
    expect(await redis.client.exists(key)).toBe(0);
    expect((await checkin(checkinSvc.url, { userId: 77, locationId: 4999, starRating: 4 }, cookie)).status).toBe(401);
  });

  it('when the auth service restarts, then an existing login cookie still works on both services', async () => {
    const cookie = cookiePair(await postJson(`${auth.url}/login`, { email: DEMO.email, password: DEMO.password }), 'checkinapp')!;
    const port = String(auth.port);
    expect(await auth.stop('SIGTERM')).toBe(0);
    auth = await spawnService('auth', { REDIS_URL: redis.url, AUTH_PORT: port });
    const me = await fetch(`${auth.url}/me`, { headers: { cookie } });
    expect(me.status).toBe(200);
    expect((await checkin(checkinSvc.url, { userId: 77, locationId: 6001, starRating: 1 }, cookie)).status).toBe(202);
  });
});
