/**
 * The idle TTL and the absolute lifetime (from login; docs/decisions/021-session-lifetimes.md) are enforced by the server, on
 * both services. The idle TTL is Redis's own key expiry, so it is tested on a real redis-server with
 * one-second values and short real waits. The absolute lifetime is a comparison with the clock in the
 * serializer both services read sessions with: its boundary is tested there with an injected clock,
 * on a session exactly as the auth service stored it, and once end to end with a one-second value.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createSerializer } from '@ncc/session';
import { captureLogs, sessionKeyOf, sleep, type SpawnedRedis } from '@ncc/testing';
import { checkin, type Stack, type StartedService, startStack } from '../support/services.js';
import { checkinBody, get, tryLogin } from './support.js';

const USER = { id: 701, email: 'timeout.user@example.com', password: 'timeout-password' };

let stack: Stack;
let redis: SpawnedRedis;

beforeAll(async () => {
  stack = await startStack({ users: [USER], auths: 0, checkins: 0 });
  redis = stack.redis;
});

afterAll(async () => {
  await stack?.close();
});

/** An auth and a checkin instance with these settings (every session write and refresh at once). */
function pair(env: Record<string, string>): Promise<[StartedService, StartedService]> {
  const all = { SESSION_TOUCH_INTERVAL_S: '0', ...env };
  return Promise.all([stack.start('auth', all), stack.start('checkin', all)]);
}

async function loginAt(auth: StartedService): Promise<{ cookie: string; key: string; createdAt: number }> {
  const { cookie } = await tryLogin(auth.url, USER);
  const key = sessionKeyOf(cookie!);
  const stored = JSON.parse((await redis.client.get(key))!) as { createdAt: number };
  return { cookie: cookie!, key, createdAt: stored.createdAt };
}

/** A one-second idle TTL and the default absolute lifetime, for the idle tests and the clock test. */
let idle: [StartedService, StartedService];

beforeAll(async () => {
  idle = await pair({ SESSION_TTL_S: '1' });
});

describe('idle timeout (SESSION_TTL_S, a Redis key expiry)', () => {
  it('when a session is idle longer than SESSION_TTL_S, then it is gone: 401 on auth and on checkin, and the key has expired', async () => {
    const [auth, chk] = idle;
    const { cookie, key } = await loginAt(auth);
    const ttl = await redis.client.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1000);
    expect((await get(`${auth.url}/me`, cookie)).status).toBe(200);
    const lastUsed = performance.now();
    await vi.waitFor(async () => expect(await redis.client.exists(key)).toBe(0), { timeout: 3000, interval: 50 });
    // Gone after one idle TTL from its last use, not before (and not never).
    expect(performance.now() - lastUsed).toBeGreaterThanOrEqual(900);
    expect((await get(`${auth.url}/me`, cookie)).status).toBe(401);
    expect((await checkin(chk.url, checkinBody(USER.id), cookie)).status).toBe(401);
  });

  it('when the session is used on either service, then each request extends the idle TTL again, so it outlives SESSION_TTL_S from login', async () => {
    const [auth, chk] = idle;
    const { cookie, key } = await loginAt(auth);
    const loggedInAt = performance.now();
    // A request every 400 ms for 1.6 s, alternating services.
    for (let step = 1; step <= 4; step++) {
      await sleep(loggedInAt + step * 400 - performance.now());
      const res = step % 2 ? await checkin(chk.url, checkinBody(USER.id), cookie) : await get(`${auth.url}/me`, cookie);
      expect(res.status).toBe(step % 2 ? 202 : 200);
      // Without the refresh the key would have 600 ms or less left here (the checkin service sends it
      // after its read without waiting, so poll for it).
      await vi.waitFor(async () => expect(await redis.client.pttl(key)).toBeGreaterThan(800), { timeout: 300, interval: 10 });
    }
    // 1.6 s after login: past one idle TTL from login, alive only because activity extended it.
    expect(performance.now() - loggedInAt).toBeGreaterThan(1500);
    expect((await get(`${auth.url}/me`, cookie)).status).toBe(200);
  });
});

describe('absolute timeout (SESSION_ABSOLUTE_TIMEOUT_S, from login)', () => {
  it('when the absolute timeout has passed, then an active session ends on both services, though its key is still there', async () => {
    // The idle TTL (3 s) would keep it; only the absolute lifetime (1 s from login) ends it.
    const [auth, chk] = await pair({ SESSION_TTL_S: '3', SESSION_ABSOLUTE_TIMEOUT_S: '1' });
    const { cookie, key, createdAt } = await loginAt(auth);
    expect((await checkin(chk.url, checkinBody(USER.id), cookie)).status).toBe(202);
    expect((await get(`${auth.url}/me`, cookie)).status).toBe(200);
    await sleep(createdAt + 1100 - Date.now());
    expect(await redis.client.exists(key)).toBe(1);
    expect((await get(`${auth.url}/me`, cookie)).status).toBe(401);
    expect((await checkin(chk.url, checkinBody(USER.id), cookie)).status).toBe(401);
  });

  it('when the clock reaches exactly SESSION_ABSOLUTE_TIMEOUT_S after login, then the stored session still counts; one millisecond later it is no session', async () => {
    const { key, createdAt } = await loginAt(idle[0]);
    const stored = (await redis.client.get(key))!;
    const logs = captureLogs();
    const at = (ms: number): unknown => createSerializer(logs.logger, 3600, () => createdAt + ms).parse(stored);
    expect(at(0)).toMatchObject({ userId: USER.id, email: USER.email, createdAt });
    expect(at(3600_000)).toMatchObject({ userId: USER.id });
    expect(at(3600_001)).toBeNull();
    expect(at(30 * 86_400_000)).toBeNull();
    // Expiry is not a data problem: nothing is logged for it.
    expect(logs.entries()).toEqual([]);
  });
});
