/**
 * Issue 8 items 1 and 2: Secure cookies behind a trusted proxy, no session stored for a cookie that
 * cannot be sent, the `__Host-` option, plain-HTTP development, secrets required in production, rotation.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEVELOPMENT_SECRET } from '@ncc/session';
import { type SpawnedRedis, spawnRedis } from '@ncc/testing';
import { checkin, createUsers, DEMO, spawnService, startAuth, startCheckin, type StartedService } from '../support/services.js';
import { checkinBody, errorCode, get, tryLogin } from './support.js';

const OLD = 'old-rotation-secret-old-rotation-secret-01';
const NEW = 'new-rotation-secret-new-rotation-secret-02';

let redis: SpawnedRedis;
const started: StartedService[] = [];
async function auth(env: Record<string, string>): Promise<StartedService> {
  const s = await startAuth(redis.url, env);
  started.push(s);
  return s;
}
async function checkinSvc(env: Record<string, string>): Promise<StartedService> {
  const s = await startCheckin(redis.url, env);
  started.push(s);
  return s;
}

beforeAll(async () => {
  redis = await spawnRedis();
  await createUsers(redis.url, [DEMO]);
});

afterAll(async () => {
  await Promise.all(started.map((s) => s.close()));
  await redis?.stop();
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
  it('when NODE_ENV=production starts without SESSION_SECRET or with a short entry, then auth and checkin exit 1 naming the problem', async () => {
    const base = { NODE_ENV: 'production', REDIS_URL: redis.url };
    const runs = await Promise.all([
      spawnService('auth', { ...base, SESSION_SECRET: undefined }, { waitFor: null }),
      spawnService('auth', { ...base, SESSION_SECRET: `${NEW},too-short` }, { waitFor: null }),
      spawnService('checkin', { ...base, SESSION_SECRET: '' }, { waitFor: null }),
    ]);
    const codes = await Promise.all(runs.map((r) => r.exited));
    expect(codes).toEqual([1, 1, 1]);
    expect(runs[0]!.output()).toMatch(/SESSION_SECRET is required when NODE_ENV=production/);
    expect(runs[1]!.output()).toMatch(/SESSION_SECRET entry 2 is shorter than 32 characters/);
    expect(runs[2]!.output()).toMatch(/SESSION_SECRET is required when NODE_ENV=production/);
    for (const r of runs) expect(r.output()).not.toMatch(/listening on port/);
  }, 60_000);

  it('when NODE_ENV=production is given the public development secret, then auth and checkin refuse to start naming it', async () => {
    const base = { NODE_ENV: 'production', REDIS_URL: redis.url, SESSION_SECRET: `${NEW},${DEVELOPMENT_SECRET}` };
    const runs = await Promise.all([spawnService('auth', base, { waitFor: null }), spawnService('checkin', base, { waitFor: null })]);
    expect(await Promise.all(runs.map((r) => r.exited))).toEqual([1, 1]);
    for (const r of runs) {
      expect(r.output()).toMatch(/SESSION_SECRET entry 2 is the public development secret/);
      expect(r.output()).not.toMatch(/listening on port/);
    }
  }, 60_000);

  it('when the secret comes from SESSION_SECRET_FILE (the compose set-up), then both services sign and verify with the file\'s content, trailing newline dropped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ncc-secret-file-'));
    try {
      const file = join(dir, 'session_secret');
      writeFileSync(file, `${NEW}\n`, { mode: 0o400 });
      const env = { NODE_ENV: 'production', COOKIE_SECURE: 'false', REDIS_URL: redis.url, SESSION_SECRET: undefined, SESSION_SECRET_FILE: file, HOST: '127.0.0.1' };
      const [a, c] = await Promise.all([spawnService('auth', env), spawnService('checkin', env)]);
      try {
        const { res, cookie } = await tryLogin(a.url);
        expect(res.status).toBe(200);
        expect((await checkin(c.url, checkinBody(DEMO.id), cookie)).status).toBe(202);
        // Signed with exactly the file's secret: a service given it directly accepts the cookie.
        const direct = await checkinSvc({ SESSION_SECRET: NEW });
        expect((await checkin(direct.url, checkinBody(DEMO.id), cookie)).status).toBe(202);
        for (const s of [a, c]) expect(s.output()).not.toContain(NEW);
      } finally {
        await Promise.all([a.stop(), c.stop()]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('when SESSION_SECRET_FILE is unreadable, empty, or set together with SESSION_SECRET, then the service exits 1 naming SESSION_SECRET_FILE and never prints a secret', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ncc-secret-file-'));
    try {
      writeFileSync(join(dir, 'empty'), '');
      const base = { NODE_ENV: 'production', REDIS_URL: redis.url, SESSION_SECRET: undefined };
      const runs = await Promise.all([
        spawnService('auth', { ...base, SESSION_SECRET_FILE: join(dir, 'missing') }, { waitFor: null }),
        spawnService('checkin', { ...base, SESSION_SECRET_FILE: join(dir, 'empty') }, { waitFor: null }),
        spawnService('auth', { ...base, SESSION_SECRET_FILE: join(dir, 'empty'), SESSION_SECRET: NEW }, { waitFor: null }),
      ]);
      expect(await Promise.all(runs.map((r) => r.exited))).toEqual([1, 1, 1]);
      expect(runs[0]!.output()).toMatch(/SESSION_SECRET_FILE: cannot read .*missing \(ENOENT\)/);
      expect(runs[1]!.output()).toMatch(/SESSION_SECRET_FILE: .*empty is empty/);
      expect(runs[2]!.output()).toMatch(/SESSION_SECRET_FILE: set either SESSION_SECRET or SESSION_SECRET_FILE, not both/);
      for (const r of runs) {
        expect(r.output()).not.toMatch(/listening on port/);
        expect(r.output()).not.toContain(NEW);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

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
