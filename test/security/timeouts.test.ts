/**
 * Issue 8 item 5: the idle TTL and the absolute lifetime (from login) are enforced by the server, on
 * both services — with second-scale values.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SpawnedRedis, spawnRedis } from '@ncc/testing';
import { checkin, createUsers, startAuth, startCheckin, type StartedService } from '../support/services.js';
import { checkinBody, get, sleep, tryLogin } from './support.js';

const USER = { id: 701, email: 'timeout.user@example.com', password: 'timeout-password' };

let redis: SpawnedRedis;
const started: StartedService[] = [];

beforeAll(async () => {
  redis = await spawnRedis();
  await createUsers(redis.url, [USER]);
});

afterAll(async () => {
  await Promise.all(started.map((s) => s.close()));
  await redis?.stop();
});

async function pair(env: Record<string, string>): Promise<[StartedService, StartedService]> {
  const both = await Promise.all([startAuth(redis.url, env), startCheckin(redis.url, env)]);
  started.push(...both);
  return both;
}

describe('session timeouts', () => {
  it('when a session is idle longer than SESSION_TTL_S, then it is gone: 401 on auth and on checkin, and the key has expired', async () => {
    const [auth, chk] = await pair({ SESSION_TTL_S: '2', SESSION_TOUCH_INTERVAL_S: '0' });
    const { cookie, sid } = await tryLogin(auth.url, USER);
    const ttl = await redis.client.ttl(`ncc:session:${sid}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(2);
    expect((await get(`${auth.url}/me`, cookie)).status).toBe(200);
    await sleep(3100);
    expect(await redis.client.exists(`ncc:session:${sid}`)).toBe(0);
    expect((await get(`${auth.url}/me`, cookie)).status).toBe(401);
    expect((await checkin(chk.url, checkinBody(USER.id), cookie)).status).toBe(401);
  });

  it('when the session is used, then the idle TTL is extended, but the absolute timeout still ends it — on both services, with the key still present', async () => {
    const [auth, chk] = await pair({ SESSION_TTL_S: '2', SESSION_ABSOLUTE_TIMEOUT_S: '4', SESSION_TOUCH_INTERVAL_S: '0' });
    const { cookie, sid } = await tryLogin(auth.url, USER);
    const loggedInAt = Date.now();
    // Activity every second, alternating services: each request refreshes the 2 s idle TTL.
    for (let second = 1; second <= 3; second++) {
      await sleep(loggedInAt + second * 1000 - Date.now());
      const res = second % 2 ? await checkin(chk.url, checkinBody(USER.id), cookie) : await get(`${auth.url}/me`, cookie);
      expect(res.status).toBe(second % 2 ? 202 : 200);
    }
    // 3.3 s after login: past one idle TTL from login, alive only because activity extended it.
    await sleep(loggedInAt + 3300 - Date.now());
    expect((await get(`${auth.url}/me`, cookie)).status).toBe(200);
    // 4.4 s after login: past the absolute lifetime. The idle TTL would still allow it (the key exists).
    await sleep(loggedInAt + 4400 - Date.now());
    expect(await redis.client.exists(`ncc:session:${sid}`)).toBe(1);
    expect((await get(`${auth.url}/me`, cookie)).status).toBe(401);
    expect((await checkin(chk.url, checkinBody(USER.id), cookie)).status).toBe(401);
  });
});
