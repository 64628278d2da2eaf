/**
 * Sessions live in Redis, not in a process: two auth and two checkin instances on one Redis behave as
 * one service. Whichever instance logs in, checks in, counts or logs out, the others see it at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sessionIdOf, type SpawnedRedis } from '@ncc/testing';
import { checkin, DEMO, login, type Stack, type StartedService, startStack } from '../support/services.js';

let stack: Stack;
let redis: SpawnedRedis;
let auths: StartedService[] = [];
let checkins: StartedService[] = [];

beforeAll(async () => {
  stack = await startStack({ users: [DEMO, { id: 601, email: 'second.instance@example.com', password: 'pw-second-601' }], auths: 2, checkins: 2 });
  ({ redis, auths, checkins } = stack);
});

afterAll(async () => {
  await stack?.close();
});

const get = (url: string, cookie: string): Promise<Response> => fetch(url, { headers: { cookie } });

describe('two auth and two checkin instances on one Redis', () => {
  it('when a user logs in on auth #1, then checkin #2 accepts the checkin (202) and auth #2 knows the user', async () => {
    const [auth1, auth2] = auths as [StartedService, StartedService];
    const [checkin1, checkin2] = checkins as [StartedService, StartedService];
    expect(auth1.port).not.toBe(auth2.port);

    const cookie = await login(auth1.url);
    const res = await checkin(checkin2.url, { userId: DEMO.id, locationId: 11, starRating: 5 }, cookie);
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    // The duplicate is caught by the other checkin instance: the dedupe marker is in Redis too.
    const dup = await checkin(checkin1.url, { userId: DEMO.id, locationId: 11, starRating: 5 }, cookie);
    expect(dup.status).toBe(422);
    expect(await redis.client.xlen('ncc:checkins')).toBe(1);
    expect((await redis.client.xrange('ncc:checkins', '-', '+'))[0]![0]).toBe(id);

    const me = await get(`${auth2.url}/me`, cookie);
    expect(me.status).toBe(200);
    expect(((await me.json()) as { user: { id: number } }).user.id).toBe(DEMO.id);
  });

  it('when the visit counter is hit on both auth instances concurrently, then it counts exactly across them', async () => {
    const cookie = await login(auths[1]!.url, 'second.instance@example.com', 'pw-second-601');
    const sid = sessionIdOf(cookie);
    const hits = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const res = await get(`${auths[i % 2]!.url}/visits`, cookie);
        expect(res.status).toBe(200);
        return (await res.json()) as { visits: number; servedBy: string };
      }),
    );
    // Every value 1..20 exactly once: no lost update between the instances.
    expect(hits.map((h) => h.visits).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(new Set(hits.map((h) => h.servedBy)).size).toBe(2);
    expect(await redis.client.get(`ncc:visits:${sid}`)).toBe('20');
    expect(await redis.client.ttl(`ncc:visits:${sid}`)).toBeGreaterThan(0);
  });

  it('when the user logs out on auth #2, then both checkin instances answer 401 with the old cookie and the key is gone', async () => {
    const [auth1, auth2] = auths as [StartedService, StartedService];
    const cookie = await login(auth1.url);
    const sid = sessionIdOf(cookie);
    for (const [i, c] of checkins.entries()) {
      expect((await checkin(c.url, { userId: DEMO.id, locationId: 20 + i, starRating: 4 }, cookie)).status).toBe(202);
    }
    const before = await redis.client.xlen('ncc:checkins');

    const out = await fetch(`${auth2.url}/logout`, { method: 'POST', headers: { cookie } });
    expect(out.status).toBe(200);
    expect(await redis.client.exists(`ncc:session:${sid}`)).toBe(0);

    for (const c of checkins) {
      const res = await checkin(c.url, { userId: DEMO.id, locationId: 30, starRating: 4 }, cookie);
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('UNAUTHENTICATED');
    }
    expect((await get(`${auth1.url}/me`, cookie)).status).toBe(401);
    expect(await redis.client.xlen('ncc:checkins')).toBe(before);
  });
});
