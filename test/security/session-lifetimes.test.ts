/**
 * What an anonymous client can make Redis store, and how long a browser's
 * session lives (docs/decisions/021-session-lifetimes.md). Real HTTP, a real redis-server, and a cookie jar (tough-cookie) that honours
 * Expires/Max-Age exactly as a browser does. Each test failed on the main before the fix.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CookieJar } from 'tough-cookie';
import { commandsDuring, cookiePair, sessionIdOf, sessionKeyOf, sleep, type SpawnedRedis } from '@ncc/testing';
import { checkin, login, type Stack, type StartedService, startStack } from '../support/services.js';
import { checkinBody, from, get, tally } from './support.js';

const USER = { id: 1401, email: 'lifetime.user@example.com', password: 'lifetime-password-1' };

let stack: Stack;
let redis: SpawnedRedis;

beforeAll(async () => {
  stack = await startStack({ users: [USER], auths: 0, checkins: 0 });
  redis = stack.redis;
});

afterAll(async () => {
  await stack?.close();
});

const start = (kind: 'auth' | 'checkin', env: Record<string, string> = {}): Promise<StartedService> => stack.start(kind, env);

/** `total` requests, at most `parallel` in flight at once. */
async function pool<T>(total: number, parallel: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array<T>(total);
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < total) {
        const i = next++;
        results[i] = await task(i);
      }
    }),
  );
  return results;
}

describe('anonymous sessions', () => {
  it('when 500 cookieless GET /visits come from one address at 32 in parallel over two instances, then 60 make a session, 440 get 429 with Retry-After, and Redis holds only those 60 sessions (30 min each)', async () => {
    const [a, b] = await Promise.all([start('auth', { TRUST_PROXY: '1' }), start('auth', { TRUST_PROXY: '1' })]);
    const before = await redis.client.dbsize();
    const responses = await pool(500, 32, async (i) => {
      const res = await get(`${i % 2 ? a.url : b.url}/visits`, undefined, from('198.51.100.7'));
      const body = (await res.json()) as { error?: { code?: string } };
      return { status: res.status, retryAfter: res.headers.get('retry-after'), code: body.error?.code, cookie: cookiePair(res, 'checkinapp') };
    });
    expect(tally(responses.map((r) => r.status))).toEqual({ 200: 60, 429: 440 });
    const refused = responses.filter((r) => r.status === 429);
    expect(refused.every((r) => r.code === 'TOO_MANY_REQUESTS' && Number(r.retryAfter) >= 1 && r.cookie === undefined)).toBe(true);
    // 60 sessions with their counters, plus the one rate-limit counter for this address.
    expect((await redis.client.dbsize()) - before).toBe(60 * 2 + 1);
    const sample = responses.find((r) => r.status === 200)!.cookie!;
    const ttl = await redis.client.ttl(sessionKeyOf(sample));
    expect(ttl).toBeGreaterThan(1790);
    expect(ttl).toBeLessThanOrEqual(1800);
    expect(await redis.client.ttl(`ncc:visits:${sessionIdOf(sample)}`)).toBeLessThanOrEqual(1800);
    // Another address is not affected.
    expect((await get(`${a.url}/visits`, undefined, from('198.51.100.8'))).status).toBe(200);
  });

  it('when a visitor keeps its cookie after its address has used up the limit, then every reload still counts (no new session needed)', async () => {
    const auth = await start('auth', { TRUST_PROXY: '1', VISITS_MAX_NEW_SESSIONS_PER_IP: '1' });
    const first = await get(`${auth.url}/visits`, undefined, from('198.51.100.9'));
    expect(first.status).toBe(200);
    const cookie = cookiePair(first, 'checkinapp')!;
    expect((await get(`${auth.url}/visits`, undefined, from('198.51.100.9'))).status).toBe(429);
    const counts: number[] = [];
    for (let reload = 0; reload < 5; reload++) {
      const res = await get(`${auth.url}/visits`, cookie, from('198.51.100.9'));
      expect(res.status).toBe(200);
      counts.push(((await res.json()) as { visits: number }).visits);
    }
    expect(counts).toEqual([2, 3, 4, 5, 6]);
  });

  it('when an anonymous session is sent to the checkin service, then 401 and its key keeps the anonymous TTL (the reader extends only logged-in sessions)', async () => {
    const [auth, chk] = await Promise.all([start('auth', { TRUST_PROXY: '1' }), start('checkin', { SESSION_TOUCH_INTERVAL_S: '0' })]);
    const res = await get(`${auth.url}/visits`, undefined, from('198.51.100.10'));
    const cookie = cookiePair(res, 'checkinapp')!;
    // A refresh would be sent after the read without being awaited: once a round trip on the checkin
    // service's own connection is back, everything it sent before has run.
    const commands = await commandsDuring(redis.client, async () => {
      expect((await checkin(chk.url, checkinBody(USER.id), cookie)).status).toBe(401);
      await chk.redis.ping();
    });
    // The read and the round trip: no EXPIRE, not even one to the anonymous TTL.
    expect(commands).toEqual({ get: 1, ping: 1 });
    expect(await redis.client.ttl(sessionKeyOf(cookie))).toBeLessThanOrEqual(1800);
    // The same wait does see a refresh when there is one: a logged-in session's shortened TTL is extended again.
    const userCookie = await login(auth.url, USER.email, USER.password);
    await redis.client.expire(sessionKeyOf(userCookie), 100);
    expect((await checkin(chk.url, checkinBody(USER.id), userCookie)).status).toBe(202);
    await chk.redis.ping();
    expect(await redis.client.ttl(sessionKeyOf(userCookie))).toBeGreaterThan(86_000);
  });

  it('when SESSION_ANONYMOUS_TTL_S=1, then an unused anonymous session is gone after 1 s, while a logged-in one made at the same time lives on', async () => {
    const auth = await start('auth', { TRUST_PROXY: '1', SESSION_ANONYMOUS_TTL_S: '1' });
    const anonymous = cookiePair(await get(`${auth.url}/visits`, undefined, from('198.51.100.11')), 'checkinapp')!;
    expect(await redis.client.pttl(sessionKeyOf(anonymous))).toBeLessThanOrEqual(1000);
    const loggedIn = await fetch(`${auth.url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...from('198.51.100.11') },
      body: JSON.stringify({ email: USER.email, password: USER.password }),
    });
    const userCookie = cookiePair(loggedIn, 'checkinapp')!;
    expect(await redis.client.ttl(sessionKeyOf(userCookie))).toBeGreaterThan(86_000);
    await vi.waitFor(async () => expect(await redis.client.exists(sessionKeyOf(anonymous))).toBe(0), { timeout: 5000, interval: 50 });
    // The counter gets its TTL right after the session is saved (VisitCounter.count), so it may outlive the
    // session key by the few milliseconds between the two writes — never by more than that.
    await vi.waitFor(async () => expect(await redis.client.exists(`ncc:visits:${sessionIdOf(anonymous)}`)).toBe(0), { timeout: 500, interval: 10 });
    // A fresh start for the same cookie: the old count is gone with its session.
    const again = await get(`${auth.url}/visits`, anonymous, from('198.51.100.12'));
    expect(((await again.json()) as { visits: number }).visits).toBe(1);
    expect((await get(`${auth.url}/me`, userCookie)).status).toBe(200);
  });
});

describe('a browser keeps its session while active', () => {
  /** What a browser sends: the jar drops a cookie whose Expires/Max-Age has passed. */
  async function jarLogin(authUrl: string): Promise<{ jar: CookieJar; setCookie: string; sid: string }> {
    const jar = new CookieJar();
    const res = await fetch(`${authUrl}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: USER.email, password: USER.password }),
    });
    expect(res.status).toBe(200);
    const setCookie = res.headers.getSetCookie()[0]!;
    await jar.setCookie(setCookie, authUrl);
    return { jar, setCookie, sid: sessionIdOf(cookiePair(res, 'checkinapp')!) };
  }
  const cookieFor = (jar: CookieJar, url: string): Promise<string> => jar.getCookieString(url);

  /** Both services with a one-second idle TTL, refreshed on every request. */
  let idle: [StartedService, StartedService];

  beforeAll(async () => {
    const env = { SESSION_TTL_S: '1', SESSION_TOUCH_INTERVAL_S: '0' };
    idle = await Promise.all([start('auth', env), start('checkin', env)]);
  });

  it('when a user stays active on both services past SESSION_TTL_S, then it stays signed in: the cookie is a session cookie and the stored one has no expiry', async () => {
    const [auth, chk] = idle;
    const { jar, setCookie, sid } = await jarLogin(auth.url);
    expect(setCookie).not.toMatch(/Expires=|Max-Age=/i);
    const stored = JSON.parse((await redis.client.get(`ncc:session:${sid}`))!) as { cookie: Record<string, unknown> };
    expect(stored.cookie).toMatchObject({ originalMaxAge: null, expires: null });
    const loggedInAt = Date.now();
    // A request every 350 ms for 2.45 s, alternating services: 2.5 idle TTLs past login.
    for (let step = 1; step <= 7; step++) {
      await sleep(loggedInAt + step * 350 - Date.now());
      const cookie = await cookieFor(jar, auth.url);
      expect(cookie).toMatch(/^checkinapp=/);
      const res = step % 2 ? await checkin(chk.url, checkinBody(USER.id), cookie) : await get(`${auth.url}/me`, cookie);
      expect(res.status).toBe(step % 2 ? 202 : 200);
      expect(res.headers.getSetCookie()).toEqual([]);
    }
    expect(await redis.client.ttl(`ncc:session:${sid}`)).toBeGreaterThan(0);
  });

  it('when the same browser then stays idle longer than SESSION_TTL_S, then the server has ended the session: 401 on both services, though the browser still sends its cookie', async () => {
    const [auth, chk] = idle;
    const { jar, sid } = await jarLogin(auth.url);
    expect((await get(`${auth.url}/me`, await cookieFor(jar, auth.url))).status).toBe(200);
    await vi.waitFor(async () => expect(await redis.client.exists(`ncc:session:${sid}`)).toBe(0), { timeout: 5000, interval: 50 });
    const cookie = await cookieFor(jar, auth.url);
    expect(cookie).toMatch(/^checkinapp=/);
    expect((await get(`${auth.url}/me`, cookie)).status).toBe(401);
    expect((await checkin(chk.url, checkinBody(USER.id), cookie)).status).toBe(401);
  });

  it('when a browser stays active past SESSION_ABSOLUTE_TIMEOUT_S, then the session ends at the absolute timeout however active it is', async () => {
    const env = { SESSION_TTL_S: '2', SESSION_ABSOLUTE_TIMEOUT_S: '1', SESSION_TOUCH_INTERVAL_S: '0' };
    const [auth, chk] = await Promise.all([start('auth', env), start('checkin', env)]);
    const { jar, sid } = await jarLogin(auth.url);
    // The clock starts at the login time the server stored.
    const { createdAt } = JSON.parse((await redis.client.get(`ncc:session:${sid}`))!) as { createdAt: number };
    const statuses: { sent: number; answered: number; status: number }[] = [];
    for (let step = 1; step <= 8; step++) {
      await sleep(createdAt + step * 250 - Date.now());
      const cookie = await cookieFor(jar, auth.url);
      const sent = Date.now() - createdAt;
      const res = step % 2 ? await checkin(chk.url, checkinBody(USER.id), cookie) : await get(`${auth.url}/me`, cookie);
      statuses.push({ sent, answered: Date.now() - createdAt, status: res.status });
    }
    // The server decided between sending and answering: signed in whenever that was all before 1 s
    // after login, signed out whenever it was all after (50 ms either side for the ms clocks).
    const before = statuses.filter((s) => s.answered < 950);
    const after = statuses.filter((s) => s.sent > 1050);
    expect(
      before.map((s) => s.status).every((status) => status === 200 || status === 202),
      JSON.stringify(statuses),
    ).toBe(true);
    expect(
      after.map((s) => s.status),
      JSON.stringify(statuses),
    ).toEqual(after.map(() => 401));
    expect(before.length).toBeGreaterThanOrEqual(1);
    expect(after.length).toBeGreaterThanOrEqual(1);
  });
});
