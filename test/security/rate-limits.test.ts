/**
 * Brute-force limits (docs/decisions/010-login-rate-limits.md) shared by every auth instance through Redis, identical for
 * unknown emails, reset by a success, keyed by the client IP as TRUST_PROXY defines it, failing closed.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { sessionIdOf, type SpawnedRedis, spawnRedis } from '@ncc/testing';
import { type Stack, startAuth, type StartedService, startStack } from '../support/services.js';
import { errorCode, from, tryLogin } from './support.js';

const ALICE = { id: 501, email: 'alice.rl@example.com', password: 'alice-password-1' };
const BOB = { id: 502, email: 'bob.rl@example.com', password: 'bob-password-1' };
const CAROL = { id: 503, email: 'carol.rl@example.com', password: 'carol-password-1' };
const DAVE = { id: 504, email: 'dave.rl@example.com', password: 'dave-password-1' };

let stack: Stack;
let redis: SpawnedRedis;
let a: StartedService;
let b: StartedService;

const LIMITS = { LOGIN_MAX_FAILS_PER_EMAIL_IP: '3', LOGIN_MAX_FAILS_PER_IP_DAY: '6', TRUST_PROXY: '1' };
const withoutRequestId = (body: unknown): unknown => {
  const copy = structuredClone(body) as { error?: { requestId?: string } };
  delete copy.error?.requestId;
  return copy;
};

beforeAll(async () => {
  // Two auth instances on one Redis: the counters must be shared.
  stack = await startStack({ users: [ALICE, BOB, CAROL, DAVE], auths: 2, checkins: 0, env: LIMITS });
  redis = stack.redis;
  [a, b] = stack.auths as [StartedService, StartedService];
});

afterAll(async () => {
  await stack?.close();
});

describe('login rate limits', () => {
  it('when an (email, IP) fails 3 times across two instances, then the 4th attempt on either gets 429 TOO_MANY_REQUESTS with Retry-After, even with the right password, and no session', async () => {
    const ip = '203.0.113.1';
    const wrong = { email: ALICE.email, password: 'wrong-password' };
    expect((await tryLogin(a.url, wrong, from(ip))).res.status).toBe(401);
    expect((await tryLogin(b.url, wrong, from(ip))).res.status).toBe(401);
    expect((await tryLogin(a.url, wrong, from(ip))).res.status).toBe(401);
    const key = `ncc:ratelimit:login:fails-email-ip:${ALICE.email}|${ip}`;
    expect(await redis.client.get(key)).toBe('3');
    const ttl = await redis.client.ttl(key);
    expect(ttl).toBeGreaterThan(890);
    expect(ttl).toBeLessThanOrEqual(900);

    for (const target of [b, a]) {
      const before = await redis.client.dbsize();
      const blocked = await tryLogin(target.url, ALICE, from(ip));
      expect(blocked.res.status).toBe(429);
      expect(blocked.body).toMatchObject({ error: { code: 'TOO_MANY_REQUESTS', message: 'Too many attempts. Try again later.' } });
      const retryAfter = Number(blocked.res.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(900);
      expect(blocked.cookie).toBeUndefined();
      expect(await redis.client.dbsize()).toBe(before);
    }
    // The same email from another client IP is not locked out.
    expect((await tryLogin(a.url, ALICE, from('203.0.113.2'))).res.status).toBe(200);
  });

  it('when the email is unknown, then the lock-out is identical: 401, 401, 401, then the same 429 body and Retry-After', async () => {
    const known = { email: BOB.email, password: 'nope' };
    const unknown = { email: 'nobody.rl@example.com', password: 'nope' };
    const results = { known: [] as Awaited<ReturnType<typeof tryLogin>>[], unknown: [] as Awaited<ReturnType<typeof tryLogin>>[] };
    for (let i = 0; i < 4; i++) {
      results.known.push(await tryLogin(i % 2 ? a.url : b.url, known, from('203.0.113.10')));
      results.unknown.push(await tryLogin(i % 2 ? a.url : b.url, unknown, from('203.0.113.11')));
    }
    expect(results.known.map((r) => r.res.status)).toEqual([401, 401, 401, 429]);
    expect(results.unknown.map((r) => r.res.status)).toEqual([401, 401, 401, 429]);
    for (let i = 0; i < 4; i++) expect(withoutRequestId(results.unknown[i]!.body)).toEqual(withoutRequestId(results.known[i]!.body));
    // Both windows started within a second of each other: the same Retry-After up to that second.
    const retry = (r: Awaited<ReturnType<typeof tryLogin>>): number => Number(r.res.headers.get('retry-after'));
    expect(Math.abs(retry(results.unknown[3]!) - retry(results.known[3]!))).toBeLessThanOrEqual(1);
    expect(retry(results.unknown[3]!)).toBeGreaterThan(0);
    const names = (r: Awaited<ReturnType<typeof tryLogin>>): string[] => [...r.res.headers.keys()].filter((h) => h !== 'date').sort();
    expect(names(results.unknown[3]!)).toEqual(names(results.known[3]!));
    expect(await redis.client.exists(`ncc:ratelimit:login:fails-email-ip:nobody.rl@example.com|203.0.113.11`)).toBe(1);
  });

  it('when a login succeeds, then the (email, IP) failure counter is reset', async () => {
    const ip = '203.0.113.20';
    const key = `ncc:ratelimit:login:fails-email-ip:${CAROL.email}|${ip}`;
    const wrong = { email: CAROL.email, password: 'wrong' };
    await tryLogin(a.url, wrong, from(ip));
    await tryLogin(b.url, wrong, from(ip));
    expect(await redis.client.get(key)).toBe('2');
    expect((await tryLogin(a.url, CAROL, from(ip))).res.status).toBe(200);
    expect(await redis.client.exists(key)).toBe(0);
    expect((await tryLogin(b.url, wrong, from(ip))).res.status).toBe(401);
    expect((await tryLogin(a.url, wrong, from(ip))).res.status).toBe(401);
    expect((await tryLogin(b.url, CAROL, from(ip))).res.status).toBe(200);
  });

  it('when one IP fails with many different emails, then the per-IP daily limit answers 429 for any email from that IP (Retry-After about a day) but not for other IPs', async () => {
    const ip = '198.51.100.7';
    for (let i = 0; i < 6; i++) {
      expect((await tryLogin(i % 2 ? a.url : b.url, { email: `spray${i}@example.com`, password: 'x' }, from(ip))).res.status).toBe(401);
    }
    const blocked = await tryLogin(a.url, CAROL, from(ip));
    expect(blocked.res.status).toBe(429);
    expect(errorCode(blocked.body)).toBe('TOO_MANY_REQUESTS');
    expect(Number(blocked.res.headers.get('retry-after'))).toBeGreaterThan(86_000);
    expect(await redis.client.get(`ncc:ratelimit:login:fails-ip:${ip}`)).toBe('6');
    expect((await tryLogin(b.url, CAROL, from('198.51.100.8'))).res.status).toBe(200);
  });

  it('when TRUST_PROXY=1 and the client prepends its own X-Forwarded-For entries, then only the address our proxy appended counts', async () => {
    const res = await tryLogin(a.url, { email: 'xff@example.com', password: 'x' }, from('10.9.9.9, 1.2.3.4, 203.0.113.50'));
    expect(res.res.status).toBe(401);
    expect(await redis.client.get('ncc:ratelimit:login:fails-ip:203.0.113.50')).toBe('1');
    expect(await redis.client.exists('ncc:ratelimit:login:fails-ip:10.9.9.9')).toBe(0);
    expect(await redis.client.exists('ncc:ratelimit:login:fails-ip:1.2.3.4')).toBe(0);
  });

  it('when TRUST_PROXY=0, then a spoofed X-Forwarded-For does not escape the per-IP limit (the socket address is the client)', async () => {
    const direct = await stack.start('auth', { LOGIN_MAX_FAILS_PER_EMAIL_IP: '100', LOGIN_MAX_FAILS_PER_IP_DAY: '2', TRUST_PROXY: '0' });
    await tryLogin(direct.url, { email: 'x1@example.com', password: 'x' }, from('192.0.2.1'));
    await tryLogin(direct.url, { email: 'x2@example.com', password: 'x' }, from('192.0.2.2'));
    expect(await redis.client.get('ncc:ratelimit:login:fails-ip:127.0.0.1')).toBe('2');
    expect((await tryLogin(direct.url, CAROL, from('192.0.2.3'))).res.status).toBe(429);
  });

  it('when the limiter cannot use Redis (no permission on ncc:ratelimit:*), then logins fail closed with 503 and no session, while the rest of Redis works', async () => {
    await redis.client.call(
      'ACL',
      'SETUSER',
      'nolimiter',
      'on',
      '>nolimiter-pass',
      '~ncc:session:*',
      '~ncc:user:*',
      '~ncc:user-sessions:*',
      '~ncc:visits:*',
      '+@all',
    );
    const url = redis.url.replace('redis://', 'redis://nolimiter:nolimiter-pass@');
    const svc = await startAuth(url, LIMITS);
    onTestFinished(() => svc.close());
    const before = await redis.client.dbsize();
    for (const creds of [CAROL, { email: CAROL.email, password: 'wrong' }, { email: 'ghost@example.com', password: 'x' }]) {
      const res = await tryLogin(svc.url, creds, from('203.0.113.99'));
      expect(res.res.status).toBe(503);
      expect(errorCode(res.body)).toBe('SERVICE_UNAVAILABLE');
      expect(res.cookie).toBeUndefined();
    }
    expect(await redis.client.dbsize()).toBe(before);
    // The same client can still read and write sessions: it is the limiter that failed, and the login closed.
    const { cookie } = await tryLogin(a.url, DAVE, from('203.0.113.97'));
    expect((await fetch(`${svc.url}/me`, { headers: { cookie: cookie! } })).status).toBe(200);
    const visits = await fetch(`${svc.url}/visits`, { headers: { cookie: cookie! } });
    expect(visits.status).toBe(200);
    expect(await redis.client.exists(`ncc:visits:${sessionIdOf(cookie!)}`)).toBe(1);
    // Only a new anonymous session needs the limiter, so that fails closed too.
    expect((await fetch(`${svc.url}/visits`)).status).toBe(503);
  });

  it('when Redis is down, then a login answers 503 within 1 s (no in-memory fallback)', async () => {
    const own = await spawnRedis();
    const svc = await startAuth(own.url, LIMITS);
    try {
      await own.kill();
      const started = Date.now();
      const res = await tryLogin(svc.url, CAROL, from('203.0.113.98'));
      expect(Date.now() - started).toBeLessThan(1000);
      expect(res.res.status).toBe(503);
      expect(errorCode(res.body)).toBe('SERVICE_UNAVAILABLE');
      expect(res.cookie).toBeUndefined();
    } finally {
      await svc.close();
      await own.stop();
    }
  });
});
