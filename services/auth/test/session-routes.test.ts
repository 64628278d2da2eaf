/**
 * Logout, /me, the visit counter and "no anonymous session anywhere else" over real HTTP against the
 * auth app and a spawned redis-server, asserting the Redis state after each step.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cookiePair, keysExcept, postJson, sessionIdOf, sessionKeyOf, type SpawnedRedis } from '@ncc/testing';
import { createUsers, DEMO, login, type Stack, type StartedService, startStack } from '../../../test/support/services.js';

let stack: Stack;
let redis: SpawnedRedis;
let auth: StartedService;

const visitsKey = (cookie: string): string => `ncc:visits:${sessionIdOf(cookie)}`;

beforeAll(async () => {
  stack = await startStack({ checkins: 0 });
  ({ redis, auth } = stack);
});

afterAll(async () => {
  await stack?.close();
});

/** The Set-Cookie that clears `checkinapp`: same name, path and attributes, expired. */
function expectClearedCookie(res: Response): void {
  const setCookie = res.headers.getSetCookie();
  expect(setCookie).toHaveLength(1);
  const header = setCookie[0]!;
  expect(header).toMatch(/^checkinapp=;/);
  expect(header).toContain('Path=/');
  expect(header).toContain('HttpOnly');
  expect(header).toContain('SameSite=Lax');
  const expires = /Expires=([^;]+)/.exec(header)?.[1];
  expect(expires).toBeDefined();
  expect(new Date(expires!).getTime()).toBeLessThan(Date.now());
}

describe('logout', () => {
  it.each(['GET', 'POST'])('when a logged-in user calls %s /logout, then 200 {"status":"OK"}, the key is gone and the cookie is expired', async (method) => {
    const cookie = await login(auth.url);
    const key = sessionKeyOf(cookie);
    expect(await redis.client.exists(key)).toBe(1);

    const res = await fetch(`${auth.url}/logout`, { method, headers: { cookie } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'OK' });
    expectClearedCookie(res);
    expect(await redis.client.exists(key)).toBe(0);

    const entry = auth.logs.find(`Logged out user ${DEMO.email}.`).at(-1);
    expect(entry?.['level']).toBe('info');
  });

  it('when logout is called twice with the same cookie, then both answer 200 and the second finds no session', async () => {
    const cookie = await login(auth.url);
    expect((await fetch(`${auth.url}/logout`, { method: 'POST', headers: { cookie } })).status).toBe(200);
    const debugBefore = auth.logs.find('Logout called by a user without a session.').length;
    const again = await fetch(`${auth.url}/logout`, { method: 'POST', headers: { cookie } });
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ status: 'OK' });
    expect(auth.logs.find('Logout called by a user without a session.').length).toBe(debugBefore + 1);
    expect(await redis.client.exists(sessionKeyOf(cookie))).toBe(0);
  });

  it('when logout is called without any session, then 200 {"status":"OK"}, a debug log, and nothing is written', async () => {
    const dbBefore = await redis.client.dbsize();
    const countBefore = auth.logs.find('Logout called by a user without a session.').length;
    for (const method of ['GET', 'POST']) {
      const res = await fetch(`${auth.url}/logout`, { method });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: 'OK' });
      // Clearing a cookie the browser may still hold is harmless; a *new* session cookie would not be.
      for (const header of res.headers.getSetCookie()) expect(header).toMatch(/^checkinapp=;/);
    }
    const entries = auth.logs.find('Logout called by a user without a session.');
    expect(entries.length).toBe(countBefore + 2);
    expect(entries.at(-1)?.['level']).toBe('debug');
    expect(await redis.client.dbsize()).toBe(dbBefore);
  });

  it('when an anonymous visit-counter session logs out, then its session and counter keys are both deleted', async () => {
    const visit = await fetch(`${auth.url}/visits`);
    const cookie = cookiePair(visit, 'checkinapp')!;
    expect(await redis.client.exists(sessionKeyOf(cookie), visitsKey(cookie))).toBe(2);
    const res = await fetch(`${auth.url}/logout`, { headers: { cookie } });
    expect(res.status).toBe(200);
    expectClearedCookie(res);
    expect(await redis.client.exists(sessionKeyOf(cookie), visitsKey(cookie))).toBe(0);
  });
});

describe('GET /me', () => {
  it('when there is no session, then 401 UNAUTHENTICATED', async () => {
    const res = await fetch(`${auth.url}/me`);
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({
      error: { code: 'UNAUTHENTICATED', message: 'Authentication required.', requestId: res.headers.get('x-request-id') },
    });
    expect(res.headers.getSetCookie()).toEqual([]);
  });

  it('when logged in, then 200 with the profile; after logout, 401 again', async () => {
    const cookie = await login(auth.url);
    const me = await fetch(`${auth.url}/me`, { headers: { cookie } });
    expect(me.status).toBe(200);
    const body = (await me.json()) as { user: unknown; session: { createdAt: string } };
    expect(body.user).toEqual({ id: 77, email: DEMO.email, firstName: 'Al', lastName: 'Appelhof' });
    expect(JSON.stringify(body)).not.toContain('$2');
    expect(Date.now() - Date.parse(body.session.createdAt)).toBeLessThan(60_000);
    // Reading the session does not re-issue the cookie (rolling is off).
    expect(me.headers.getSetCookie()).toEqual([]);

    expect((await fetch(`${auth.url}/logout`, { method: 'POST', headers: { cookie } })).status).toBe(200);
    const after = await fetch(`${auth.url}/me`, { headers: { cookie } });
    expect(after.status).toBe(401);
    expect(((await after.json()) as { error: { code: string } }).error.code).toBe('UNAUTHENTICATED');
  });

  it('when the logged-in user has been deleted from Redis, then 401, the session is destroyed and the cookie expired', async () => {
    await createUsers(redis.url, [{ id: 600, email: 'short.lived@example.com', password: 'short-lived-pw' }]);
    const cookie = await login(auth.url, 'short.lived@example.com', 'short-lived-pw');
    await redis.client.del('ncc:user:600', 'ncc:user:email:short.lived@example.com');
    const res = await fetch(`${auth.url}/me`, { headers: { cookie } });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('UNAUTHENTICATED');
    expectClearedCookie(res);
    expect(await redis.client.exists(sessionKeyOf(cookie))).toBe(0);
  });

  it('when the cookie belongs to an anonymous visit-counter session, then 401', async () => {
    const visit = await fetch(`${auth.url}/visits`);
    const cookie = cookiePair(visit, 'checkinapp')!;
    expect((await fetch(`${auth.url}/me`, { headers: { cookie } })).status).toBe(401);
  });
});

describe('GET /visits', () => {
  it('when an anonymous visitor calls /visits, then it gets a session cookie, a session key, and visits 1', async () => {
    const dbBefore = await redis.client.dbsize();
    const res = await fetch(`${auth.url}/visits`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { visits: number; servedBy: string };
    expect(body.visits).toBe(1);
    expect(body.servedBy).toMatch(new RegExp(`:${auth.port}$`));
    const cookie = cookiePair(res, 'checkinapp')!;
    expect(cookie).toBeTruthy();
    expect(await redis.client.exists(sessionKeyOf(cookie))).toBe(1);
    expect(await redis.client.get(visitsKey(cookie))).toBe('1');
    expect(await redis.client.dbsize()).toBe(dbBefore + 2);

    const second = await fetch(`${auth.url}/visits`, { headers: { cookie } });
    expect(((await second.json()) as { visits: number }).visits).toBe(2);
    // The same session: no new cookie, no new key.
    expect(second.headers.getSetCookie()).toEqual([]);
    expect(await redis.client.dbsize()).toBe(dbBefore + 2);
  });

  it('when 20 requests with one cookie run in parallel, then every count is distinct and the next answer is 21', async () => {
    // A logged-in session has no visits yet, so 20 parallel visits are exactly 1..20.
    const cookie = await login(auth.url);
    const results = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const res = await fetch(`${auth.url}/visits`, { headers: { cookie } });
        expect(res.status).toBe(200);
        return ((await res.json()) as { visits: number }).visits;
      }),
    );
    expect([...results].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const next = await fetch(`${auth.url}/visits`, { headers: { cookie } });
    expect(((await next.json()) as { visits: number }).visits).toBe(21);
    expect(await redis.client.get(visitsKey(cookie))).toBe('21');
    // The session itself is untouched by the counter: still the logged-in user.
    const stored = JSON.parse((await redis.client.get(sessionKeyOf(cookie)))!) as { userId: number };
    expect(stored.userId).toBe(77);
  });

  it('when an anonymous visitor makes 20 parallel visits after the first, then the counts are 2..21 and the next is 22', async () => {
    const first = await fetch(`${auth.url}/visits`);
    const cookie = cookiePair(first, 'checkinapp')!;
    const results = await Promise.all(
      Array.from({ length: 20 }, async () => ((await (await fetch(`${auth.url}/visits`, { headers: { cookie } })).json()) as { visits: number }).visits),
    );
    expect([...results].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));
    const next = await fetch(`${auth.url}/visits`, { headers: { cookie } });
    expect(((await next.json()) as { visits: number }).visits).toBe(22);
  });

  it('when an anonymous visit is counted, then the session and the counter key expire together after the anonymous idle TTL (30 min), not a day', async () => {
    const res = await fetch(`${auth.url}/visits`);
    const cookie = cookiePair(res, 'checkinapp')!;
    const [sessionTtl, visitsTtl] = await Promise.all([redis.client.ttl(sessionKeyOf(cookie)), redis.client.ttl(visitsKey(cookie))]);
    expect(sessionTtl).toBeGreaterThanOrEqual(1_790);
    expect(sessionTtl).toBeLessThanOrEqual(1_800);
    expect(visitsTtl).toBeGreaterThanOrEqual(1_790);
    expect(visitsTtl).toBeLessThanOrEqual(1_800);
    expect(Math.abs(visitsTtl - sessionTtl)).toBeLessThanOrEqual(5);
  });

  it('when the auth service restarts on the same Redis, then the count carries on', async () => {
    const res = await fetch(`${auth.url}/visits`);
    const cookie = cookiePair(res, 'checkinapp')!;
    await fetch(`${auth.url}/visits`, { headers: { cookie } });
    await auth.close();
    auth = await stack.start('auth');
    const after = await fetch(`${auth.url}/visits`, { headers: { cookie } });
    expect(after.status).toBe(200);
    expect(((await after.json()) as { visits: number }).visits).toBe(3);
    expect(after.headers.getSetCookie()).toEqual([]);
  });
});

describe('SESSION_TTL_S', () => {
  it('when SESSION_TTL_S=120, then the session key and the visit counter use 120 s, and the cookie carries no expiry of its own', async () => {
    const shortAuth = await stack.start('auth', { SESSION_TTL_S: '120' });
    try {
      const res = await postJson(`${shortAuth.url}/login`, { email: DEMO.email, password: DEMO.password });
      expect(res.status).toBe(200);
      const cookie = cookiePair(res, 'checkinapp')!;
      const ttl = await redis.client.ttl(sessionKeyOf(cookie));
      expect(ttl).toBeGreaterThan(110);
      expect(ttl).toBeLessThanOrEqual(120);
      expect(res.headers.getSetCookie()[0]).not.toMatch(/Expires=|Max-Age=/i);
      await fetch(`${shortAuth.url}/visits`, { headers: { cookie } });
      const visitsTtl = await redis.client.ttl(visitsKey(cookie));
      expect(visitsTtl).toBeGreaterThan(110);
      expect(visitsTtl).toBeLessThanOrEqual(120);
    } finally {
      await shortAuth.close();
    }
  });
});

describe('no anonymous session anywhere else', () => {
  it('when anonymous requests hit /me, /logout, failed /login, /healthz, /readyz and an unknown route, then no key but the failure counters is written and no session cookie is set', async () => {
    const keysBefore = await keysExcept(redis.client, 'ncc:ratelimit:');
    const responses = await Promise.all([
      fetch(`${auth.url}/me`),
      fetch(`${auth.url}/logout`),
      fetch(`${auth.url}/logout`, { method: 'POST' }),
      postJson(`${auth.url}/login`, { email: 'nobody@example.com', password: 'x' }),
      postJson(`${auth.url}/login`, { email: DEMO.email, password: 'wrong' }),
      postJson(`${auth.url}/login`, '{broken'),
      postJson(`${auth.url}/login`, { email: 'bad' }),
      fetch(`${auth.url}/healthz`),
      fetch(`${auth.url}/readyz`),
      fetch(`${auth.url}/no-such-route`),
    ]);
    expect(responses.map((r) => r.status)).toEqual([401, 200, 200, 401, 401, 400, 400, 200, 200, 404]);
    for (const res of responses) {
      for (const header of res.headers.getSetCookie()) expect(header).toMatch(/^checkinapp=;/);
    }
    expect(await keysExcept(redis.client, 'ncc:ratelimit:')).toEqual(keysBefore);
  });

  it('when /healthz and /readyz are called, then they answer 200 JSON', async () => {
    const health = await fetch(`${auth.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${auth.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });

  it('when an unknown route is requested, then 404 NOT_FOUND as JSON', async () => {
    const res = await fetch(`${auth.url}/no-such-route`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  });
});
