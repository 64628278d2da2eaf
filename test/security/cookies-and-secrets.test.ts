/**
 * Secure cookies behind a trusted proxy (docs/decisions/013-secure-cookie-transport.md), no session stored for a cookie that
 * cannot be sent, the `__Host-` option, plain-HTTP development, rotation. (Secrets required in
 * production, checked by the real processes at start-up: cookies-and-secrets.e2e.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SpawnedRedis } from '@ncc/testing';
import { checkin, DEMO, type Stack, type StartedService, startStack } from '../support/services.js';
import { checkinBody, errorCode, get, tryLogin } from './support.js';

const OLD = 'old-rotation-secret-old-rotation-secret-01';
const NEW = 'new-rotation-secret-new-rotation-secret-02';

let stack: Stack;
let redis: SpawnedRedis;
const auth = (env: Record<string, string>): Promise<StartedService> => stack.start('auth', env);
const checkinSvc = (env: Record<string, string>): Promise<StartedService> => stack.start('checkin', env);

beforeAll(async () => {
  stack = await startStack({ auths: 0, checkins: 0 });
  redis = stack.redis;
});

afterAll(async () => {
  await stack?.close();
});

const HTTPS = { 'x-forwarded-proto': 'https' };

describe('production cookies', () => {
  it('when NODE_ENV=production and the request arrives over HTTPS through one trusted proxy, then the cookie is Secure, HttpOnly, SameSite=Lax and both services accept it', async () => {
    const env = { NODE_ENV: 'production', TRUST_PROXY: '1' };
    const [a, c] = await Promise.all([auth(env), checkinSvc(env)]);
    const { res, cookie, sid } = await tryLogin(a.url, DEMO, HTTPS);
    expect(res.status).toBe(200);
    const header = res.headers.getSetCookie().find((h) => h.startsWith('checkinapp='));
    expect(header).toMatch(/; Secure/);
    expect(header).toMatch(/; HttpOnly/);
    expect(header).toMatch(/; SameSite=Lax/);
    expect(await redis.client.exists(`ncc:session:${sid}`)).toBe(1);
    expect((await get(`${a.url}/me`, cookie, HTTPS)).status).toBe(200);
    expect((await checkin(c.url, checkinBody(DEMO.id), cookie)).status).toBe(202);
  });

  it('when NODE_ENV=production and the login comes over plain HTTP, then it is refused with 403 INSECURE_TRANSPORT before any Redis write', async () => {
    const a = await auth({ NODE_ENV: 'production', TRUST_PROXY: '1' });
    const before = await redis.client.dbsize();
    const { res, body, cookie } = await tryLogin(a.url);
    expect(res.status).toBe(403);
    expect(errorCode(body)).toBe('INSECURE_TRANSPORT');
    expect(cookie).toBeUndefined();
    expect(res.headers.getSetCookie()).toEqual([]);
    expect(await redis.client.dbsize()).toBe(before);
  });

  it('when TRUST_PROXY=0, then X-Forwarded-Proto is ignored: a Secure-cookie login is refused and nothing is stored', async () => {
    const a = await auth({ COOKIE_SECURE: 'true', TRUST_PROXY: '0' });
    const before = await redis.client.dbsize();
    const { res, body } = await tryLogin(a.url, DEMO, HTTPS);
    expect(res.status).toBe(403);
    expect(errorCode(body)).toBe('INSECURE_TRANSPORT');
    expect(res.headers.getSetCookie()).toEqual([]);
    expect(await redis.client.dbsize()).toBe(before);
  });

  it('when COOKIE_SECURE=true outside production, then HTTPS via the trusted proxy gives a Secure cookie and GET /visits over plain HTTP is refused without a write', async () => {
    const a = await auth({ COOKIE_SECURE: 'true', TRUST_PROXY: '1' });
    const ok = await tryLogin(a.url, DEMO, HTTPS);
    expect(ok.res.status).toBe(200);
    expect(ok.res.headers.getSetCookie()[0]).toMatch(/; Secure/);
    const before = await redis.client.dbsize();
    const visits = await get(`${a.url}/visits`);
    expect(visits.status).toBe(403);
    expect(errorCode(await visits.json())).toBe('INSECURE_TRANSPORT');
    expect(visits.headers.getSetCookie()).toEqual([]);
    expect(await redis.client.dbsize()).toBe(before);
  });

  it('when COOKIE_HOST_PREFIX=true, then the cookie is __Host-checkinapp (Secure, Path=/, no Domain) and both services read only that name', async () => {
    const env = { COOKIE_SECURE: 'true', COOKIE_HOST_PREFIX: 'true', TRUST_PROXY: '1' };
    const [a, c] = await Promise.all([auth(env), checkinSvc(env)]);
    const { res, cookie } = await tryLogin(a.url, DEMO, HTTPS, '__Host-checkinapp');
    expect(res.status).toBe(200);
    const header = res.headers.getSetCookie().find((h) => h.startsWith('__Host-checkinapp='));
    expect(header).toMatch(/; Path=\/;/);
    expect(header).toMatch(/; Secure/);
    expect(header).not.toMatch(/Domain=/i);
    expect(cookie).toBeDefined();
    expect((await get(`${a.url}/me`, cookie, HTTPS)).status).toBe(200);
    expect((await checkin(c.url, checkinBody(DEMO.id), cookie)).status).toBe(202);
    // The same value under the unprefixed name is not a session here.
    const renamed = cookie!.replace('__Host-checkinapp=', 'checkinapp=');
    expect((await get(`${a.url}/me`, renamed, HTTPS)).status).toBe(401);
    expect((await checkin(c.url, checkinBody(DEMO.id), renamed)).status).toBe(401);
  });

  it('when running in development over http://localhost, then login works with a non-Secure cookie (Postman keeps working)', async () => {
    const a = await auth({ NODE_ENV: 'development' });
    const { res, cookie } = await tryLogin(a.url.replace('127.0.0.1', 'localhost'));
    expect(res.status).toBe(200);
    expect(res.headers.getSetCookie()[0]).not.toMatch(/Secure/);
    expect((await get(`${a.url}/me`, cookie)).status).toBe(200);
  });
});

describe('secrets', () => {
  it('when secrets rotate to "new,old", then an old cookie works on both services; with "new" alone it gets 401 on both', async () => {
    const oldAuth = await auth({ SESSION_SECRET: OLD });
    const { cookie } = await tryLogin(oldAuth.url);
    const [rotAuth, rotCheckin, newAuth, newCheckin] = await Promise.all([
      auth({ SESSION_SECRET: `${NEW},${OLD}` }),
      checkinSvc({ SESSION_SECRET: `${NEW},${OLD}` }),
      auth({ SESSION_SECRET: NEW }),
      checkinSvc({ SESSION_SECRET: NEW }),
    ]);
    expect((await get(`${rotAuth.url}/me`, cookie)).status).toBe(200);
    expect((await checkin(rotCheckin.url, checkinBody(DEMO.id), cookie)).status).toBe(202);
    const me = await get(`${newAuth.url}/me`, cookie);
    expect(me.status).toBe(401);
    expect(errorCode(await me.json())).toBe('UNAUTHENTICATED');
    expect((await checkin(newCheckin.url, checkinBody(DEMO.id), cookie)).status).toBe(401);
    // A login on the rotated instance is signed with the new secret: it works where only "new" is known.
    const fresh = await tryLogin(rotAuth.url);
    expect((await get(`${newAuth.url}/me`, fresh.cookie)).status).toBe(200);
    expect((await checkin(newCheckin.url, checkinBody(DEMO.id), fresh.cookie)).status).toBe(202);
  });
});
