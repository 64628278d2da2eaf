import express from 'express';
import signature from 'cookie-signature';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBaseApp, errorHandler, requestId, type RunningServer, startServer } from '@ncc/service-kit';
import { captureLogs, cookiePair, sessionIdOf, type SpawnedRedis, spawnRedis } from '@ncc/testing';
import {
  createSerializer,
  createSessionMiddleware,
  requireUser,
  SessionReader,
  sessionSettings,
  type SessionSettings,
  UserSessionIndex,
} from '../src/index.js';

const OLD_SECRET = 'old-secret-old-secret-old-secret-0001';
const NEW_SECRET = 'new-secret-new-secret-new-secret-0002';

function settingsWith(secrets: string[]): SessionSettings {
  return sessionSettings({
    NODE_ENV: 'test',
    SESSION_SECRET: secrets,
    SESSION_TTL_S: 86_400,
    SESSION_ABSOLUTE_TIMEOUT_S: 7 * 86_400,
    MAX_SESSIONS_PER_USER: 50,
    SESSION_ANONYMOUS_TTL_S: 1800,
    SESSION_TOUCH_INTERVAL_S: 60,
    COOKIE_HOST_PREFIX: false,
  });
}

let redis: SpawnedRedis;
const logs = captureLogs();

/** A tiny app built on the contract: /login writes a session, /whoami reads it, /anon touches nothing. */
async function startApp(settings: SessionSettings): Promise<RunningServer> {
  const app = createBaseApp();
  app.use(requestId);
  const redis = redisClient();
  const serializer = createSerializer(logs.logger, settings.absoluteTimeoutSeconds);
  app.use(createSessionMiddleware({ settings, redis, logger: logs.logger, serializer, index: new UserSessionIndex(redis, settings, serializer) }));
  app.post('/login', express.json(), (req, res, next) => {
    req.session.regenerate((err) => {
      if (err) return next(err);
      req.session.userId = 77;
      req.session.email = 'al.appelhof@example.com';
      req.session.createdAt = Date.now();
      req.session.save((saveErr) => (saveErr ? next(saveErr) : res.json({ ok: true })));
    });
  });
  app.get('/whoami', requireUser, (req, res) => {
    res.json({ userId: req.session.userId });
  });
  app.get('/anon', (_req, res) => {
    res.json({ ok: true });
  });
  app.use(errorHandler(logs.logger));
  return startServer(app, 0);
}

// The services' own client settings, so the contract is tested the way it runs.
import { createRedisClient, closeRedis, type RedisClient, waitForRedis } from '@ncc/service-kit';
let client: RedisClient;
const redisClient = (): RedisClient => client;

let server: RunningServer;
let rotated: RunningServer;
let onlyNew: RunningServer;

beforeAll(async () => {
  redis = await spawnRedis();
  client = createRedisClient({ REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: 1000, REDIS_CONNECT_TIMEOUT_MS: 1000 }, logs.logger);
  // The client fails fast while not ready (no offline queue): wait, or the first test races the connect.
  await waitForRedis(client, 5000);
  server = await startApp(settingsWith([OLD_SECRET]));
  rotated = await startApp(settingsWith([NEW_SECRET, OLD_SECRET]));
  onlyNew = await startApp(settingsWith([NEW_SECRET]));
});

afterAll(async () => {
  await Promise.all([server?.close(), rotated?.close(), onlyNew?.close()]);
  await closeRedis(client);
  await redis?.stop();
});

async function login(base: string): Promise<{ res: Response; cookie: string; sid: string }> {
  const res = await fetch(`${base}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  const cookie = cookiePair(res, 'checkinapp');
  if (!cookie) throw new Error('no session cookie');
  return { res, cookie, sid: sessionIdOf(cookie) };
}

describe('session contract', () => {
  it('when a session is saved, then it is stored as JSON under ncc:session:<id> with a one-day TTL', async () => {
    const { res, sid } = await login(server.url);
    expect(res.status).toBe(200);
    expect(await redis.client.exists(`ncc:session:${sid}`)).toBe(1);
    const stored = JSON.parse((await redis.client.get(`ncc:session:${sid}`)) ?? 'null') as Record<string, unknown>;
    expect(stored).toMatchObject({ userId: 77, email: 'al.appelhof@example.com', cookie: { httpOnly: true, path: '/' } });
    expect(typeof stored['createdAt']).toBe('number');
    const ttl = await redis.client.ttl(`ncc:session:${sid}`);
    expect(ttl).toBeGreaterThanOrEqual(86_390);
    expect(ttl).toBeLessThanOrEqual(86_400);
  });

  it('when a session is saved, then the cookie is checkinapp, HttpOnly, SameSite=Lax, Path=/, a session cookie (no Expires, no Max-Age) and not Secure in development', async () => {
    const { res } = await login(server.url);
    const header = res.headers.getSetCookie().find((c) => c.startsWith('checkinapp='));
    expect(header).toBeDefined();
    expect(header).toMatch(/; Path=\//);
    expect(header).toMatch(/; HttpOnly/);
    expect(header).toMatch(/; SameSite=Lax/);
    expect(header).not.toMatch(/Expires=|Max-Age=/i);
    expect(header).not.toMatch(/; Secure/);
  });

  it('when an anonymous request arrives, then no key is written and no cookie is set', async () => {
    const before = await redis.client.dbsize();
    const res = await fetch(`${server.url}/anon`);
    expect(res.status).toBe(200);
    expect(res.headers.getSetCookie()).toEqual([]);
    expect(await redis.client.dbsize()).toBe(before);
  });

  it('when the cookie is valid, then the session is recognised', async () => {
    const { cookie } = await login(server.url);
    const res = await fetch(`${server.url}/whoami`, { headers: { cookie } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ userId: 77 });
  });

  it('when there is no session, then requireUser answers 401 UNAUTHENTICATED as JSON', async () => {
    const res = await fetch(`${server.url}/whoami`);
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(await res.json()).toMatchObject({ error: { code: 'UNAUTHENTICATED', message: 'Authentication required.' } });
  });

  it('when secrets rotate to "new,old", then a cookie signed with the old secret still verifies; with "new" alone it does not', async () => {
    const { cookie } = await login(server.url);
    expect((await fetch(`${rotated.url}/whoami`, { headers: { cookie } })).status).toBe(200);
    expect((await fetch(`${onlyNew.url}/whoami`, { headers: { cookie } })).status).toBe(401);
    // New logins are signed with the first secret.
    const fresh = await login(rotated.url);
    expect((await fetch(`${onlyNew.url}/whoami`, { headers: { cookie: fresh.cookie } })).status).toBe(200);
  });

  it('when a cookie is forged (valid id, wrong signature), then it is treated as no session', async () => {
    const { sid } = await login(server.url);
    const forged = `checkinapp=${encodeURIComponent(`s:${signature.sign(sid, 'not-our-secret-not-our-secret-xx')}`)}`;
    const res = await fetch(`${server.url}/whoami`, { headers: { cookie: forged } });
    expect(res.status).toBe(401);
    expect(await redis.client.exists(`ncc:session:${sid}`)).toBe(1);
  });

  it('when the stored value is corrupt JSON or the wrong shape, then the request is anonymous (401), not a 500', async () => {
    const { cookie, sid } = await login(server.url);
    await redis.client.set(`ncc:session:${sid}`, '{not json', 'EX', 100);
    const res = await fetch(`${server.url}/whoami`, { headers: { cookie } });
    expect(res.status).toBe(401);
    expect(logs.find('Ignoring a stored session that is not valid JSON.').length).toBeGreaterThan(0);

    await redis.client.set(`ncc:session:${sid}`, JSON.stringify({ userId: 'seventy-seven' }), 'EX', 100);
    expect((await fetch(`${server.url}/whoami`, { headers: { cookie } })).status).toBe(401);
    expect(logs.find('Ignoring a stored session with an unexpected shape.').length).toBeGreaterThan(0);
  });

  it('when the read-only reader sees the same cookie, then it finds the same user in one round trip and never rewrites the value', async () => {
    const { cookie, sid } = await login(server.url);
    const reader = new SessionReader({ settings: settingsWith([OLD_SECRET]), redis: client, logger: logs.logger });
    const before = await redis.client.get(`ncc:session:${sid}`);
    const user = await reader.readUser({ headers: { cookie } } as never);
    expect(user).toMatchObject({ userId: 77, email: 'al.appelhof@example.com' });
    expect(await redis.client.get(`ncc:session:${sid}`)).toBe(before);
    expect(await reader.readUser({ headers: {} } as never)).toBeNull();
  });

  it('when the stored session changes, is corrupted or is deleted between two reads, then the reader sees exactly what Redis holds each time (its caches never answer for Redis)', async () => {
    const { cookie, sid } = await login(server.url);
    const key = `ncc:session:${sid}`;
    const reader = new SessionReader({ settings: settingsWith([OLD_SECRET]), redis: client, logger: logs.logger });
    const req = { headers: { cookie } } as never;
    expect(await reader.readUser(req)).toMatchObject({ userId: 77 });
    // The same id, another user: the decoded value is reused only for exactly the same text.
    const stored = JSON.parse((await redis.client.get(key))!) as Record<string, unknown>;
    await redis.client.set(key, JSON.stringify({ ...stored, userId: 78, email: 'other@example.com' }), 'KEEPTTL');
    expect(await reader.readUser(req)).toMatchObject({ userId: 78, email: 'other@example.com' });
    await redis.client.set(key, '{not json', 'KEEPTTL');
    expect(await reader.readUser(req)).toBeNull();
    await redis.client.set(key, JSON.stringify(stored), 'KEEPTTL');
    expect(await reader.readUser(req)).toMatchObject({ userId: 77 });
    await redis.client.del(key);
    expect(await reader.readUser(req)).toBeNull();
    expect(await redis.client.exists(key)).toBe(0);
  });

  it('when a verified cookie comes back with its signature altered, then the reader refuses it (only the exact signed value it verified is remembered)', async () => {
    const { cookie } = await login(server.url);
    const reader = new SessionReader({ settings: settingsWith([OLD_SECRET]), redis: client, logger: logs.logger });
    expect(reader.sessionId({ headers: { cookie } } as never)).toBe(sessionIdOf(cookie));
    const tampered = cookie.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
    expect(tampered).not.toBe(cookie);
    expect(reader.sessionId({ headers: { cookie: tampered } } as never)).toBeNull();
    expect(await reader.readUser({ headers: { cookie: tampered } } as never)).toBeNull();
    expect(await reader.readUser({ headers: { cookie } } as never)).toMatchObject({ userId: 77 });
  });
});

describe('session settings', () => {
  const production = {
    NODE_ENV: 'production',
    SESSION_TTL_S: 1,
    SESSION_ABSOLUTE_TIMEOUT_S: 1,
    MAX_SESSIONS_PER_USER: 50,
    SESSION_ANONYMOUS_TTL_S: 1800,
    SESSION_TOUCH_INTERVAL_S: 0,
    COOKIE_HOST_PREFIX: false,
  };

  it('when NODE_ENV=production and no SESSION_SECRET, then start-up is refused naming SESSION_SECRET', () => {
    expect(() => sessionSettings(production)).toThrow(/SESSION_SECRET is required/);
  });

  it('when NODE_ENV=production and a secret is short, then start-up is refused; long secrets give Secure cookies', () => {
    expect(() => sessionSettings({ ...production, SESSION_SECRET: [NEW_SECRET, 'short'] })).toThrow(/entry 2 is shorter than 32/);
    expect(sessionSettings({ ...production, SESSION_SECRET: [NEW_SECRET] })).toMatchObject({ secure: true, cookieName: 'checkinapp', prefix: 'ncc:session:' });
  });
});
