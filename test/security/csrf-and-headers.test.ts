/**
 * CSRF and CORS for a cookie-authenticated JSON API (docs/decisions/011-csrf.md: Origin allow-list,
 * Sec-Fetch-Site, JSON-only bodies, no `*`, preflights), and the security headers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SpawnedRedis } from '@ncc/testing';
import { checkin, type StartedService, startStack } from '../support/services.js';
import { checkinBody, errorCode, get, send, tryLogin } from './support.js';

const USER = { id: 901, email: 'csrf.user@example.com', password: 'csrf-password-1' };
const EVIL = 'https://evil.example';
const APP = 'https://app.example.com';

let redis: SpawnedRedis;
let auth: StartedService;
let chk: StartedService;

beforeAll(async () => {
  ({ redis, auth, checkin: chk } = await startStack({ users: [USER], env: { ALLOWED_ORIGINS: `${APP},https://admin.example.com` } }));
});

afterAll(async () => {
  await Promise.all([auth?.close(), chk?.close()]);
  await redis?.stop();
});

describe('CSRF: Origin and Sec-Fetch-Site', () => {
  it('when a login carries a foreign Origin, then 403 CROSS_SITE_REQUEST, no cookie, nothing written', async () => {
    const before = await redis.client.dbsize();
    const { res, body, cookie } = await tryLogin(auth.url, USER, { origin: EVIL });
    expect(res.status).toBe(403);
    expect(body).toMatchObject({ error: { code: 'CROSS_SITE_REQUEST', message: 'Cross-site requests are not allowed.' } });
    expect(cookie).toBeUndefined();
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    expect(await redis.client.dbsize()).toBe(before);
  });

  it('when Sec-Fetch-Site is cross-site (even without Origin), then state-changing requests get 403 on both services', async () => {
    const { cookie } = await tryLogin(auth.url, USER);
    const xlen = await redis.client.xlen('ncc:checkins');
    const res = await checkin(chk.url, checkinBody(USER.id), cookie);
    expect(res.status).toBe(202);
    const refused = await fetch(`${chk.url}/api/checkin`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie: cookie!, 'sec-fetch-site': 'cross-site' },
      body: JSON.stringify(checkinBody(USER.id)),
    });
    expect(refused.status).toBe(403);
    expect(errorCode(await refused.json())).toBe('CROSS_SITE_REQUEST');
    const foreign = await checkin(chk.url, checkinBody(USER.id), cookie).then(() =>
      fetch(`${chk.url}/api/checkin`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', cookie: cookie!, origin: EVIL },
        body: JSON.stringify(checkinBody(USER.id)),
      }),
    );
    expect(foreign.status).toBe(403);
    expect(await redis.client.xlen('ncc:checkins')).toBe(xlen + 2);
    const login = await tryLogin(auth.url, USER, { 'sec-fetch-site': 'cross-site' });
    expect(login.res.status).toBe(403);
  });

  it('when GET /logout or POST /logout comes cross-site, then 403 and the session survives; same-origin, same-site and no-Origin requests work', async () => {
    const { cookie, sid } = await tryLogin(auth.url, USER);
    expect((await get(`${auth.url}/logout`, cookie, { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect((await get(`${auth.url}/logout`, cookie, { origin: EVIL })).status).toBe(403);
    // Express matches /LOGOUT/ and HEAD to the GET /logout handler: guarded the same way.
    expect((await get(`${auth.url}/LOGOUT/`, cookie, { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect((await send(`${auth.url}/logout`, 'HEAD', { cookie: cookie!, 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect((await send(`${auth.url}/logout`, 'POST', { cookie: cookie!, origin: EVIL })).status).toBe(403);
    expect((await send(`${auth.url}/logout-all`, 'POST', { cookie: cookie!, 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect(await redis.client.exists(`ncc:session:${sid}`)).toBe(1);
    // A browser on our own origin, a same-site page, and Postman/curl (no Origin) may.
    expect((await tryLogin(auth.url, USER, { origin: auth.url, 'sec-fetch-site': 'same-origin' })).res.status).toBe(200);
    expect((await tryLogin(auth.url, USER, { 'sec-fetch-site': 'same-site' })).res.status).toBe(200);
    expect((await get(`${auth.url}/logout`, cookie, { 'sec-fetch-site': 'none' })).status).toBe(200);
    expect(await redis.client.exists(`ncc:session:${sid}`)).toBe(0);
  });

  it('when the Origin is in ALLOWED_ORIGINS, then the request passes and gets CORS headers for exactly that origin with credentials (never *)', async () => {
    const { res } = await tryLogin(auth.url, USER, { origin: APP, 'sec-fetch-site': 'cross-site' });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe(APP);
    expect(res.headers.get('access-control-allow-credentials')).toBe('true');
    expect(res.headers.get('vary')).toMatch(/Origin/);
  });

  it('when a preflight comes from a foreign origin, then 403 with no Access-Control-Allow-* headers; from an allowed origin, then 204 with exact allow headers', async () => {
    for (const url of [`${auth.url}/login`, `${chk.url}/api/checkin`, `${auth.url}/logout-all`]) {
      const foreign = await send(url, 'OPTIONS', { origin: EVIL, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' });
      expect(foreign.status).toBe(403);
      for (const name of foreign.headers.keys()) expect(name).not.toMatch(/^access-control-allow/);
      const allowed = await send(url, 'OPTIONS', { origin: APP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' });
      expect(allowed.status).toBe(204);
      expect(allowed.headers.get('access-control-allow-origin')).toBe(APP);
      expect(allowed.headers.get('access-control-allow-methods')).toBe('GET, POST, DELETE');
      expect(allowed.headers.get('access-control-allow-headers')).toBe('Content-Type, X-Request-Id');
    }
  });

  it('when any route answers any origin, then Access-Control-Allow-Origin is never *', async () => {
    const { cookie } = await tryLogin(auth.url, USER);
    const probes = [
      get(`${auth.url}/me`, cookie, { origin: EVIL }),
      get(`${auth.url}/sessions`, cookie, { origin: EVIL }),
      get(`${auth.url}/healthz`, undefined, { origin: EVIL }),
      get(`${chk.url}/healthz`, undefined, { origin: EVIL }),
      get(`${auth.url}/nope`, undefined, { origin: APP }),
      send(`${chk.url}/api/checkin`, 'POST', { origin: APP, 'content-type': 'application/json' }, '{}'),
    ];
    for (const res of await Promise.all(probes)) {
      expect(res.headers.get('access-control-allow-origin')).not.toBe('*');
    }
    // A foreign origin may receive a GET answer, but no CORS header lets its page read it.
    const me = await get(`${auth.url}/me`, cookie, { origin: EVIL });
    expect(me.status).toBe(200);
    expect(me.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('CSRF: content types and safe methods', () => {
  it('when a state-changing request has a non-JSON body, then 415 — also on the bodyless routes; without a body they work', async () => {
    const { cookie, sid } = await tryLogin(auth.url, USER);
    const form = { 'content-type': 'application/x-www-form-urlencoded', cookie: cookie! };
    const plain = { 'content-type': 'text/plain', cookie: cookie! };
    for (const [path, method] of [
      ['/logout', 'POST'],
      ['/logout-all', 'POST'],
      ['/sessions/AAAAAAAAAAAAAAAAAAAAAA', 'DELETE'],
      ['/login', 'POST'],
    ] as const) {
      for (const headers of [form, plain]) {
        const res = await send(`${auth.url}${path}`, method, headers, 'a=b');
        expect(res.status).toBe(415);
        expect(errorCode(await res.json())).toBe('UNSUPPORTED_MEDIA_TYPE');
      }
    }
    const chkRes = await send(`${chk.url}/api/checkin`, 'POST', plain, JSON.stringify(checkinBody(USER.id)));
    expect(chkRes.status).toBe(415);
    expect(await redis.client.exists(`ncc:session:${sid}`)).toBe(1);
    expect((await send(`${auth.url}/logout`, 'POST', { cookie: cookie! })).status).toBe(200);
    expect(await redis.client.exists(`ncc:session:${sid}`)).toBe(0);
  });

  it('when GET /me, /sessions, /healthz, /readyz are called, then nothing in Redis changes (only GET /logout and GET /visits write, by design)', async () => {
    const { cookie } = await tryLogin(auth.url, USER);
    const before = await redis.client.dbsize();
    for (const path of ['/me', '/sessions', '/healthz', '/readyz', '/nope']) expect((await get(`${auth.url}${path}`, cookie)).status).toBeLessThan(500);
    for (const path of ['/healthz', '/readyz', '/api/checkin']) expect((await get(`${chk.url}${path}`, cookie)).status).toBeLessThan(500);
    expect(await redis.client.dbsize()).toBe(before);
  });
});

describe('security headers', () => {
  it('when any response is sent, then helmet defaults are present, X-Powered-By is absent, and auth responses are Cache-Control: no-store', async () => {
    const { cookie } = await tryLogin(auth.url, USER);
    const responses = [
      { svc: 'auth', res: await get(`${auth.url}/me`, cookie) },
      { svc: 'auth', res: await get(`${auth.url}/me`) },
      { svc: 'auth', res: await get(`${auth.url}/healthz`) },
      { svc: 'auth', res: await get(`${auth.url}/does-not-exist`) },
      { svc: 'auth', res: (await tryLogin(auth.url, { email: USER.email, password: 'wrong' })).res },
      { svc: 'checkin', res: await get(`${chk.url}/healthz`) },
      { svc: 'checkin', res: await checkin(chk.url, checkinBody(USER.id)) },
    ];
    for (const { svc, res } of responses) {
      const h = res.headers;
      expect(h.get('x-powered-by')).toBeNull();
      expect(h.get('content-security-policy')).toMatch(/default-src 'self'/);
      expect(h.get('strict-transport-security')).toMatch(/max-age=\d+/);
      expect(h.get('x-content-type-options')).toBe('nosniff');
      expect(h.get('x-frame-options')).toBe('SAMEORIGIN');
      expect(h.get('referrer-policy')).toBe('no-referrer');
      expect(h.get('cross-origin-opener-policy')).toBe('same-origin');
      expect(h.get('cross-origin-resource-policy')).toBe('same-origin');
      expect(h.get('x-xss-protection')).toBe('0');
      expect(h.get('x-request-id')).toBeTruthy();
      if (svc === 'auth') expect(h.get('cache-control')).toBe('no-store');
    }
  });
});
